#!/usr/bin/env python3
"""Runs a program natively and under `vmashadow run`, and compares.

Usage:
  run_under.py --vmashadow PATH [--check=MODE] [--compare-stdout=yes|no]
               [--expect-divergences=N] [--min-events=N] [--env=NAME=VALUE]...
               [--in-tempdir] [--allow-killed-by=SIG]... [--timeout=SECONDS]
               -- PROGRAM ARGS...

The program runs twice with the same environment (plus the --env settings,
e.g. --env=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 for an
allocator preloaded beside ours; the launcher prepends libvmashadow.so to it):
once as it is, once as `vmashadow run --check=MODE --report-dir=TMP --
PROGRAM ARGS...`. With --in-tempdir each run starts in a fresh empty
directory (removed afterwards).

Fails unless
  - the exit status is the same (a death by signal included),
  - stdout is byte-identical (unless --compare-stdout=no),
  - TMP holds at least one report (*.json), each a JSON object with
    "complete": true (or "exit_reason": "execve": an image replaced by exec;
    or "exit_reason": "signal SIG" for a SIG given with --allow-killed-by),
    and the "check" mode asked for,
  - the divergences of all reports add up to 0 (or to --expect-divergences),
  - the root process (the one the launcher started, all its exec images)
    saw at least --min-events events.
Prints the launcher's "vmashadow:" summary paragraph and one line per report,
so `meson test -v` shows them; on failure names the report and its first
divergence sample, and keeps TMP for inspection.
"""
import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

CALLS = ['mmap', 'munmap', 'mprotect', 'pkey_mprotect', 'mremap', 'madvise', 'brk', 'mlock',
         'mlock2', 'munlock', 'mlockall', 'munlockall', 'mseal', 'process_madvise', 'shmat',
         'shmdt', 'remap_file_pages']


def run(cmd, env, cwd, timeout):
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        print(f'FAIL: {" ".join(cmd[:4])}... still running after {timeout} s; killed')
        print(err.decode(errors='replace')[-4000:])
        sys.exit(1)
    return p.pid, p.returncode, out, err, time.monotonic() - start


def describe_status(rc):
    return f'killed by signal {-rc}' if rc < 0 else f'exit status {rc}'


def first_difference(a, b):
    la = a.decode(errors='replace').splitlines()
    lb = b.decode(errors='replace').splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f'first difference at line {i + 1}:\n    native:    {x!r}\n    monitored: {y!r}'
    return f'{len(la)} lines native, {len(lb)} monitored (one is a prefix of the other)'


def report_line(name, r):
    by_call = r.get('events_by_call') or {}
    calls = ' '.join(f'{c}={by_call[c]}' for c in CALLS if by_call.get(c))
    argv = r.get('argv') or []
    shown = ' '.join(str(a) for a in argv[:4]).replace('\n', '\\n')
    if len(shown) > 60:
        shown = shown[:57] + '...'
    return (f'  {name}: pid={r.get("pid")} ppid={r.get("parent_pid")} [{shown}] '
            f'backend={r.get("backend")} check={r.get("check")} events={r.get("events")} '
            f'[{calls}] trapped={r.get("trapped")} checks={r.get("checks")} '
            f'range_checks={r.get("range_checks")} divergences={r.get("divergences")} '
            f'unexplained={r.get("unexplained")} '
            f'placement={r.get("placement_hit")}/{r.get("placement_predicted")} '
            f'errno={r.get("errno_hit")}/{r.get("errno_predicted")} '
            f'results={r.get("results_hit")}/{r.get("results")} '
            f'maps={r.get("final_map_count")} deferred={r.get("signals_deferred")} '
            f'pagetable={r.get("pagetable_hits")}/{r.get("pagetable_checks")} '
            f'counters={r.get("counter_hits")}/{r.get("counter_checks")} '
            f'vmflags={r.get("vmflags_hits")}/{r.get("vmflags_checks")} '
            f'exit={r.get("exit_reason")} '
            f'complete={str(r.get("complete")).lower()}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmashadow', required=True, help='the launcher binary')
    ap.add_argument('--check', default='every')
    ap.add_argument('--compare-stdout', choices=['yes', 'no'], default='yes')
    ap.add_argument('--expect-divergences', type=int, default=0)
    ap.add_argument('--min-events', type=int, default=0)
    ap.add_argument('--min-root', action='append', default=[], metavar='KEY=N',
                    help='require the root process\'s report key KEY to be at least N '
                    '(e.g. signals_deferred=1)')
    ap.add_argument('--env', action='append', default=[], metavar='NAME=VALUE')
    ap.add_argument('--in-tempdir', action='store_true')
    ap.add_argument('--allow-killed-by', type=int, action='append', default=[], metavar='SIG',
                    help='accept an incomplete report with exit_reason "signal SIG" (e.g. 13: '
                    'a pipeline stage killed by SIGPIPE, as natively)')
    ap.add_argument('--timeout', type=float, default=900)
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == '--' else args.cmd
    if not cmd:
        ap.error('no program given')

    env = {k: v for k, v in os.environ.items()
           if k != 'LD_PRELOAD' and not k.startswith('VMASHADOW_')}
    for setting in args.env:
        name, sep, value = setting.partition('=')
        if not sep or not name:
            ap.error(f'--env wants NAME=VALUE, got {setting!r}')
        env[name] = value

    work = tempfile.mkdtemp(prefix='vmashadow-run-under-')
    report_dir = os.path.join(work, 'reports')
    os.mkdir(report_dir)
    native_cwd = monitored_cwd = None
    if args.in_tempdir:
        native_cwd = os.path.join(work, 'native')
        monitored_cwd = os.path.join(work, 'monitored')
        os.mkdir(native_cwd)
        os.mkdir(monitored_cwd)

    _, n_rc, n_out, n_err, n_time = run(cmd, env, native_cwd, args.timeout)
    launcher = [os.path.abspath(args.vmashadow), 'run', f'--check={args.check}',
                f'--report-dir={report_dir}', '--'] + cmd
    l_pid, m_rc, m_out, m_err, m_time = run(launcher, env, monitored_cwd, args.timeout)
    err_text = m_err.decode(errors='replace')

    failures = []
    # The launcher's summary paragraph (and any divergence records).
    summary = [line for line in err_text.splitlines() if line.startswith('vmashadow')]
    print(f'$ {shlex.join(launcher)}')
    print(f'native: {describe_status(n_rc)} in {n_time:.2f} s; '
          f'monitored: {describe_status(m_rc)} in {m_time:.2f} s '
          f'({m_time / max(n_time, 1e-3):.1f}x)')
    print('\n'.join(summary[:60]) if summary else '(no "vmashadow:" lines on stderr)')
    if len(summary) > 60:
        print(f'... {len(summary) - 60} more "vmashadow" lines')

    if n_rc != m_rc:
        failures.append(f'{describe_status(m_rc)} under vmashadow, {describe_status(n_rc)} '
                        f'natively')
    if args.compare_stdout == 'yes' and n_out != m_out:
        failures.append('stdout differs under vmashadow: ' + first_difference(n_out, m_out))

    reports = {}
    for path in sorted(glob.glob(os.path.join(report_dir, '*.json'))):
        name = os.path.basename(path)
        try:
            with open(path, encoding='utf-8') as f:
                r = json.load(f)
            if not isinstance(r, dict):
                raise ValueError('not a JSON object')
        except (OSError, ValueError) as e:
            failures.append(f'report {name} is not a readable JSON object: {e}')
            continue
        reports[name] = r
    print(f'{len(reports)} report(s) in {report_dir}:')
    for name, r in reports.items():
        print(report_line(name, r))
    if not reports:
        failures.append(f'no report (*.json) in {report_dir}')

    total_div = 0
    complete = 0
    root_events = 0
    root_reports = 0
    root_keys = {}
    first_sample = None
    for name, r in reports.items():
        div = r.get('divergences')
        if not isinstance(div, int):
            failures.append(f'report {name}: "divergences" missing or not a number')
            div = 0
        total_div += div
        if div and first_sample is None:
            samples = r.get('divergence_samples') or []
            first_sample = (name, samples[0] if samples else '(no divergence_samples)')
        complete += r.get('complete') is True
        allowed = {f'signal {s}' for s in args.allow_killed_by}
        if (r.get('complete') is not True and r.get('exit_reason') != 'execve' and
                r.get('exit_reason') not in allowed):
            failures.append(f'report {name} (pid {r.get("pid")}, argv {r.get("argv")}) is '
                            f'incomplete: complete={r.get("complete")}, exit_reason='
                            f'{r.get("exit_reason")}')
        if str(r.get('check')) != args.check:
            failures.append(f'report {name}: check={r.get("check")}, expected {args.check}')
        # The root: the launcher's child (or the launcher itself, if it
        # execs the program in place).
        if r.get('pid') == l_pid or r.get('parent_pid') == l_pid:
            root_reports += 1
            root_events += r.get('events') or 0
            for want in args.min_root:
                key = want.partition('=')[0]
                root_keys[key] = root_keys.get(key, 0) + (r.get(key) or 0)
    if total_div != args.expect_divergences:
        msg = f'{total_div} divergence(s) in all reports, expected {args.expect_divergences}'
        if first_sample is not None:
            msg += f'; first in {first_sample[0]}: {json.dumps(first_sample[1])}'
        failures.append(msg)
    if args.min_events:
        if root_reports == 0:
            failures.append(f'no report from the root process (pid {l_pid} or its child)')
        elif root_events < args.min_events:
            failures.append(f'root process saw {root_events} events, expected at least '
                            f'{args.min_events}')

    for want in args.min_root:
        key, _, n = want.partition('=')
        if root_keys.get(key, 0) < int(n):
            failures.append(f'root process has {key}={root_keys.get(key, 0)}, expected at '
                            f'least {n}')
    if failures:
        for f in failures:
            print(f'FAIL: {f}')
        tail = err_text[-6000:]
        if tail:
            print('--- stderr under vmashadow (last 6000 characters) ---')
            print(tail)
        if n_err:
            print('--- stderr natively (last 2000 characters) ---')
            print(n_err.decode(errors='replace')[-2000:])
        print(f'(reports kept in {report_dir})')
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f'ok: same exit status and {"stdout, " if args.compare_stdout == "yes" else ""}'
          f'{len(reports)} report(s) ({complete} complete), {total_div} divergence(s), '
          f'{root_events} events in the root process')
    return 0


if __name__ == '__main__':
    sys.exit(main())

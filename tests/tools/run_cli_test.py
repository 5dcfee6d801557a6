#!/usr/bin/env python3
"""Runs `vmashadow` as a user would and checks what it says and how it exits.

Usage: run_cli_test.py --vmashadow EXE --lib LIB --static EXE --target EXE CASE

Each CASE (see CASES at the end) is one meson test in suite 'tools'. A case
checks messages, exit statuses, signals, the environment the program sees,
the report directory and the summary paragraph. Exit status 0 = pass, 1 =
fail (every failed expectation is printed), 77 = skipped (with the reason).

The cases marked NEEDS_REPORTS rely on libvmashadow.so writing its JSON
reports (the contract's "<pid>.json"); the others hold whatever the preload
does.
"""
import argparse
import json
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

CONTRACT_KEYS = [
    'pid', 'parent_pid', 'argv', 'kernel', 'kernel_profile', 'backend', 'check', 'events',
    'events_by_call', 'trapped', 'checks', 'range_checks', 'divergences', 'divergence_samples',
    'resyncs', 'unexplained', 'unexplained_samples', 'placement_predicted', 'placement_hit',
    'errno_predicted', 'errno_hit', 'results', 'results_hit', 'passthrough', 'final_map_count',
    'exit_reason', 'complete',
]
CALLS = ['mmap', 'munmap', 'mprotect', 'pkey_mprotect', 'mremap', 'madvise', 'brk', 'mlock',
         'mlock2', 'munlock', 'mlockall', 'munlockall', 'mseal', 'process_madvise', 'shmat',
         'shmdt', 'remap_file_pages']

FIRST_LINE = re.compile(r'^vmashadow: (\d+) process(?:es)? monitored \((\d+) reports?, '
                        r'(\d+) incomplete\); backend (\S+); check (\S+)$', re.M)
EVENTS_LINE = re.compile(r'^vmashadow: (\d+) events?: (.*)$', re.M)
COUNTS_LINE = re.compile(r'^vmashadow: (\d+) trapped; (\d+) checks? \((\d+) range\); '
                         r'(\d+) divergences? \((\d+) resyncs\); (\d+) unexplained$', re.M)
HITS_LINE = re.compile(r'^vmashadow: placement hit (\d+)/(\d+) predicted; errno hit (\d+)/(\d+); '
                       r'results hit (\d+)/(\d+); (\d+) passthrough$', re.M)
ROOT_LINE = re.compile(r'^vmashadow: root process (\d+) ([^;\n]*)(?:; final map count (\S+))?',
                       re.M)
NO_REPORT = re.compile(r'^vmashadow: no process was monitored', re.M)

ARGS = None
FAILURES = []


def expect(cond, what, detail=''):
    if not cond:
        FAILURES.append(what + (f'\n    {detail}' if detail else ''))
    return cond


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k != 'LD_PRELOAD' and not k.startswith('VMASHADOW_')}
    env['VMASHADOW_LIB'] = ARGS.lib
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run(args, env=None, cwd=None, timeout=120):
    r = subprocess.run([ARGS.vmashadow] + args, env=env or base_env(), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    r.out = r.stdout.decode(errors='replace')
    r.err = r.stderr.decode(errors='replace')
    print(f'$ vmashadow {" ".join(args)}\n  -> exit {r.returncode}')
    for line in r.err.splitlines():
        print(f'  stderr: {line}')
    return r


def no_crash(r, what):
    expect(r.returncode >= 0 or r.returncode in (-signal.SIGTERM, -signal.SIGSEGV,
                                                 -signal.SIGKILL, -signal.SIGHUP),
           f'{what}: the launcher died of signal {-r.returncode}')
    for bad in ('terminate called', 'Aborted', 'core dumped', 'Traceback'):
        expect(bad not in r.err, f'{what}: stderr mentions "{bad}"', r.err)


def usage_case(args, code, *needles, env=None, cwd=None):
    """A run that must fail before starting anything: exit `code`, a
    "vmashadow: " message containing every needle, no summary."""
    r = run(args, env=env, cwd=cwd)
    what = 'vmashadow ' + ' '.join(args)
    expect(r.returncode == code, f'{what}: exit {r.returncode}, want {code}')
    expect(r.err.startswith('vmashadow: ') or '\nvmashadow: ' in r.err,
           f'{what}: no "vmashadow: " message', r.err)
    for n in needles:
        expect(n in r.err, f'{what}: message lacks "{n}"', r.err)
    expect(not FIRST_LINE.search(r.err) and not NO_REPORT.search(r.err),
           f'{what}: printed a run summary although nothing ran', r.err)
    no_crash(r, what)
    return r


def summary_root(r, what):
    """The root pid and the text after it from the summary's root line."""
    m = ROOT_LINE.search(r.err)
    expect(m is not None, f'{what}: no "vmashadow: root process" line', r.err)
    return (int(m.group(1)), m.group(2), m.group(3)) if m else (None, None, None)


def has_summary(r, what):
    first = [l for l in r.err.splitlines() if l.startswith('vmashadow: ')]
    ok = bool(FIRST_LINE.search(r.err) or NO_REPORT.search(r.err))
    expect(ok and first and (FIRST_LINE.match(first[0]) or NO_REPORT.match(first[0])),
           f'{what}: no summary paragraph starting "vmashadow: "', r.err)


def load_reports(d):
    reports = {}
    for name in sorted(os.listdir(d)):
        if name.endswith('.json'):
            with open(os.path.join(d, name)) as f:
                reports[name] = json.load(f)
    return reports


# --- bad usage --------------------------------------------------------------

def case_no_command(tmp):
    r = usage_case([], 2, 'no command given')
    expect('run' in r.err, 'no command: the usage text does not list "run"', r.err)


def case_help(tmp):
    for args in (['help'], ['--help'], ['-h']):
        r = run(args)
        expect(r.returncode == 0, f'{args}: exit {r.returncode}')
        expect(re.search(r'^\s+run\s', r.out, re.M), f'{args}: "run" not listed', r.out)
    for args in (['run', '--help'], ['help', 'run'], ['run', '-h', '--', 'true']):
        r = run(args)
        expect(r.returncode == 0, f'{args}: exit {r.returncode}')
        for opt in ('--check=', '--strict', '--report-dir=', '--follow-children='):
            expect(opt in r.out, f'{args}: help lacks {opt}', r.out)
        expect('--backend' not in r.out, f'{args}: the hidden --backend is listed')
    usage_case(['help', 'nosuchcommand'], 2, "unknown command 'nosuchcommand'")


def case_unknown_command(tmp):
    usage_case(['frobnicate', '--', 'true'], 2, "unknown command 'frobnicate'")
    usage_case(['--check=every', '--', 'true'], 2, "'--check=every' before a command")


def case_unknown_flag(tmp):
    usage_case(['run', '--bogus', '--', 'true'], 2, "unknown option '--bogus'")
    usage_case(['run', '--bogus=1', 'true'], 2, "unknown option '--bogus=1'")
    usage_case(['run', '-x', 'true'], 2, "unknown option '-x'")
    # abseil's own flags are not options of `run`.
    usage_case(['run', '--helpfull', '--', 'true'], 2, "unknown option '--helpfull'")
    usage_case(['run', '--flagfile=/dev/null', '--', 'true'], 2, "unknown option")
    # --nostrict is the negation of a boolean; --nocheck is not a thing.
    usage_case(['run', '--nocheck', '--', 'true'], 2, "unknown option '--nocheck'")


def case_missing_program(tmp):
    for args in (['run'], ['run', '--'], ['run', '--check=every'], ['run', '--strict', '--'],
                 ['run', '--report-dir', os.path.join(tmp, 'r')]):
        usage_case(args, 2, 'no program given')
    expect(not os.path.exists(os.path.join(tmp, 'r')),
           'a usage error still created the report directory')


def case_nonexistent_program(tmp):
    usage_case(['run', '--', 'vmashadow-no-such-program'], 127,
               'vmashadow-no-such-program: command not found')
    usage_case(['run', '--', '/nonexistent/dir/prog'], 127,
               '/nonexistent/dir/prog: No such file or directory')
    script = os.path.join(tmp, 'bad-interp.sh')
    with open(script, 'w') as f:
        f.write('#!/nonexistent/interpreter\necho hi\n')
    os.chmod(script, 0o755)
    usage_case(['run', '--', script], 127, 'interpreter /nonexistent/interpreter',
               'No such file or directory')


def case_not_executable(tmp):
    usage_case(['run', '--', tmp], 126, f'{tmp}: Is a directory')
    plain = os.path.join(tmp, 'plain')
    with open(plain, 'w') as f:
        f.write('echo should not run\n')
    os.chmod(plain, 0o644)
    usage_case(['run', '--', plain], 126, f'{plain}: Permission denied')
    # PATH search: the only match is not executable (execvp gives EACCES).
    usage_case(['run', '--', 'plain'], 126, 'plain: Permission denied',
               env=base_env(PATH=tmp))
    usage_case(['run', '--', '/dev/null'], 126, '/dev/null: not a regular file')


def case_bad_check(tmp):
    for value in ('sometimes', '0', '-3', '7x', '', ' 7', '+7'):
        usage_case(['run', f'--check={value}', '--', ARGS.target], 2,
                   f"bad value '{value}' for '--check'", 'every, exit, off')
    usage_case(['run', '--check'], 2, "option '--check' needs a value")
    usage_case(['run', '--follow-children=maybe', '--', 'true'], 2,
               "bad value 'maybe' for '--follow-children'", 'yes or no')
    usage_case(['run', '--strict=perhaps', '--', 'true'], 2, "bad value 'perhaps' for '--strict'")
    usage_case(['run', '--backend=ptrace', '--', 'true'], 2, "bad value 'ptrace' for '--backend'")
    # Good values in every accepted spelling still run the program.
    for args in (['--check', '7'], ['--check=every'], ['--check=off'], ['--check=exit'],
                 ['--follow_children', 'no'], ['--nostrict'], ['--strict=false']):
        r = run(['run'] + args + ['--', ARGS.target, '9'])
        expect(r.returncode == 9, f'run {args}: exit {r.returncode}, want 9', r.err)


def case_static_binary(tmp):
    usage_case(['run', '--', ARGS.static], 2,
               f'{ARGS.static} is statically linked; LD_PRELOAD cannot monitor it')
    script = os.path.join(tmp, 'static-interp')
    with open(script, 'w') as f:
        f.write(f'#!{ARGS.static}\n')
    os.chmod(script, 0o755)
    usage_case(['run', '--', script], 2, f'interpreter {ARGS.static} is statically linked')
    # A dynamic interpreter is fine.
    script2 = os.path.join(tmp, 'sh-script')
    with open(script2, 'w') as f:
        f.write('#!/bin/sh\nexit 6\n')
    os.chmod(script2, 0o755)
    r = run(['run', '--', script2])
    expect(r.returncode == 6, f'#!/bin/sh script: exit {r.returncode}, want 6', r.err)


def case_unwritable_report_dir(tmp):
    regular = os.path.join(tmp, 'a-file')
    with open(regular, 'w') as f:
        f.write('x')
    usage_case(['run', '--report-dir', os.path.join(regular, 'sub'), '--', ARGS.target], 2,
               'cannot create report directory', os.path.join(regular, 'sub'))
    usage_case(['run', f'--report-dir={regular}', '--', ARGS.target], 2, regular)
    usage_case(['run', '--report-dir=/proc/self/vmashadow-reports', '--', ARGS.target], 2,
               'cannot create report directory')
    usage_case(['run', '--', ARGS.target], 2, 'cannot create a temporary report directory',
               env=base_env(TMPDIR=os.path.join(regular, 'tmp')))


def case_missing_library(tmp):
    usage_case(['run', '--', ARGS.target], 2, 'VMASHADOW_LIB=/nonexistent/libvmashadow.so',
               env=base_env(VMASHADOW_LIB='/nonexistent/libvmashadow.so'))
    odd = os.path.join(tmp, 'a:b.so')
    os.symlink(ARGS.lib, odd)
    usage_case(['run', '--', ARGS.target], 2, "contains ':' or white space",
               env=base_env(VMASHADOW_LIB=odd))


# --- running ------------------------------------------------------------------

def case_exit_status(tmp):
    for prog, code in ((['sh', '-c', 'exit 7'], 7), ([ARGS.target, '3'], 3),
                       ([ARGS.target], 0), (['false'], 1)):
        r = run(['run', '--'] + prog)
        what = f'run {prog}'
        expect(r.returncode == code, f'{what}: exit {r.returncode}, want {code}', r.err)
        has_summary(r, what)
        pid, end, _ = summary_root(r, what)
        expect(end is not None and end.startswith(f'exited with status {code}'),
               f'{what}: root line says "{end}"')
        no_crash(r, what)


def case_signal(tmp):
    for sig in (signal.SIGTERM, signal.SIGSEGV, signal.SIGKILL):
        name = signal.Signals(sig).name
        r = run(['run', '--', 'sh', '-c', f'kill -{name[3:]} $$'], cwd=tmp)
        what = f'run sh -c "kill -{name[3:]} $$"'
        expect(r.returncode == -sig, f'{what}: launcher exit {r.returncode}, want {-sig}', r.err)
        has_summary(r, what)
        _, end, _ = summary_root(r, what)
        expect(end is not None and end.startswith(f'killed by {name}'),
               f'{what}: root line says "{end}"')
    expect(not any(n.startswith('core') for n in os.listdir(tmp)),
           'the launcher left a core file', str(os.listdir(tmp)))


def wait_for_exec(launcher_pid, comm, timeout=20):
    """The launcher's child pid once it has exec'd `comm`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f'/proc/{launcher_pid}/task/{launcher_pid}/children') as f:
                kids = f.read().split()
            for k in kids:
                with open(f'/proc/{k}/comm') as f:
                    if f.read().strip() == comm:
                        return int(k)
        except OSError:
            pass
        time.sleep(0.02)
    return None


def case_signal_forward(tmp):
    sleep = shutil.which('sleep')
    for sig in (signal.SIGTERM, signal.SIGHUP):
        log = open(os.path.join(tmp, f'stderr-{int(sig)}'), 'w+b')
        p = subprocess.Popen([ARGS.vmashadow, 'run', '--', sleep, '60'], env=base_env(),
                             stdout=subprocess.DEVNULL, stderr=log)
        child = wait_for_exec(p.pid, 'sleep')
        expect(child is not None, 'the launcher\'s child never became "sleep"')
        # SIGINT/SIGQUIT sent to the launcher alone are ignored (a terminal
        # sends them to the whole group, so the program gets its own).
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGQUIT)
        time.sleep(0.3)
        expect(p.poll() is None, f'the launcher died of SIGINT/SIGQUIT (exit {p.returncode})')
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            expect(False, f'{signal.Signals(sig).name} was not forwarded: launcher still waiting')
        expect(rc == -sig, f'{signal.Signals(sig).name} forwarded: launcher exit {rc}, want {-sig}')
        log.seek(0)
        err = log.read().decode(errors='replace')
        expect(f'killed by {signal.Signals(sig).name}' in err,
               f'{signal.Signals(sig).name}: summary does not say the program was killed', err)
        if child is not None:
            expect(not os.path.exists(f'/proc/{child}/comm') or
                   open(f'/proc/{child}/comm').read().strip() != 'sleep',
                   'the program outlived the launcher')


def case_environment(tmp):
    """The environment of the contract, as the program sees it."""
    env = base_env(LD_PRELOAD='/nonexistent/earlier.so', VMASHADOW_STRICT='1',
                   VMASHADOW_ROOT_PID='1')
    r = run(['run', '--check=7', '--follow-children=no', '--report-dir', 'rel', '--', 'env'],
            env=env, cwd=tmp)
    expect(r.returncode == 0, f'run env: exit {r.returncode}', r.err)
    seen = dict(line.split('=', 1) for line in r.out.splitlines() if '=' in line)
    lib = os.path.abspath(ARGS.lib)
    expect(seen.get('LD_PRELOAD') == f'{lib}:/nonexistent/earlier.so',
           f'LD_PRELOAD={seen.get("LD_PRELOAD")!r}, want the library first, then the old value')
    expect(seen.get('VMASHADOW_CHECK') == '7', f'VMASHADOW_CHECK={seen.get("VMASHADOW_CHECK")!r}')
    expect('VMASHADOW_STRICT' not in seen, 'VMASHADOW_STRICT set without --strict')
    expect(seen.get('VMASHADOW_FOLLOW_CHILDREN') == 'no',
           f'VMASHADOW_FOLLOW_CHILDREN={seen.get("VMASHADOW_FOLLOW_CHILDREN")!r}')
    expect(seen.get('VMASHADOW_QUIET') == '1', f'VMASHADOW_QUIET={seen.get("VMASHADOW_QUIET")!r}')
    expect(seen.get('VMASHADOW_REPORT_DIR') == os.path.join(tmp, 'rel'),
           f'VMASHADOW_REPORT_DIR={seen.get("VMASHADOW_REPORT_DIR")!r}, want the absolute '
           f'{os.path.join(tmp, "rel")}')
    pid, _, _ = summary_root(r, 'run env')
    expect(seen.get('VMASHADOW_ROOT_PID') == str(pid),
           f'VMASHADOW_ROOT_PID={seen.get("VMASHADOW_ROOT_PID")!r}, root process {pid}')

    r = run(['run', '--strict', '--check', 'every', '--', 'env'], env=base_env(), cwd=tmp)
    seen = dict(line.split('=', 1) for line in r.out.splitlines() if '=' in line)
    expect(seen.get('LD_PRELOAD') == lib, f'LD_PRELOAD={seen.get("LD_PRELOAD")!r}, want {lib}')
    expect(seen.get('VMASHADOW_STRICT') == '1', '--strict: VMASHADOW_STRICT not 1')
    expect(seen.get('VMASHADOW_CHECK') == 'every', '--check every: VMASHADOW_CHECK not every')
    expect(seen.get('VMASHADOW_FOLLOW_CHILDREN') == 'yes', 'default follow-children is not yes')


def case_library_lookup(tmp):
    """Without VMASHADOW_LIB the build tree's library is found from /proc/self/exe."""
    r = run(['run', '--', 'sh', '-c', 'echo "$LD_PRELOAD"'], env=base_env(VMASHADOW_LIB=None))
    expect(r.returncode == 0, f'exit {r.returncode}', r.err)
    got = r.out.strip()
    expect(os.path.isabs(got) and os.path.realpath(got) == os.path.realpath(ARGS.lib),
           f'LD_PRELOAD={got!r}, want the build tree\'s {ARGS.lib}')
    expect('/../' not in got, f'LD_PRELOAD={got!r} is not normalised')


def case_temp_dir_removed(tmp):
    tmpdir = os.path.join(tmp, 't')
    os.mkdir(tmpdir)
    r = run(['run', '--', 'sh', '-c', 'echo "$VMASHADOW_REPORT_DIR"; test -d "$VMASHADOW_REPORT_DIR"'],
            env=base_env(TMPDIR=tmpdir))
    expect(r.returncode == 0, f'the report dir did not exist while the program ran ({r.returncode})')
    d = r.out.strip()
    expect(os.path.dirname(d) == tmpdir and os.path.basename(d).startswith('vmashadow.'),
           f'VMASHADOW_REPORT_DIR={d!r}, want {tmpdir}/vmashadow.XXXXXX')
    expect(os.listdir(tmpdir) == [], f'temporary report dir left behind: {os.listdir(tmpdir)}')


def case_reports(tmp):
    """NEEDS_REPORTS: the root's <pid>.json with the contract's keys, and a
    summary whose totals are the sums over the report files."""
    d = os.path.join(tmp, 'reports')
    r = run(['run', '--report-dir', d, '--check=every', '--', ARGS.target, '5'])
    expect(r.returncode == 5, f'exit {r.returncode}, want 5', r.err)
    pid, end, maps = summary_root(r, 'run target')
    reports = load_reports(d)
    root = reports.get(f'{pid}.json')
    if not expect(root is not None, f'no {pid}.json in {d}: {sorted(reports)}'):
        return
    for k in CONTRACT_KEYS:
        expect(k in root, f'{pid}.json lacks "{k}"')
    for c in CALLS:
        expect(c in root.get('events_by_call', {}), f'{pid}.json events_by_call lacks "{c}"')
    expect(root.get('complete') is True, f'{pid}.json: complete={root.get("complete")!r}')
    expect(root.get('pid') == pid, f'{pid}.json: pid={root.get("pid")!r}')
    expect(root.get('parent_pid') not in (None, pid), 'parent_pid missing or equal to pid')
    expect(root.get('check') == 'every', f'{pid}.json: check={root.get("check")!r}')
    expect(root.get('exit_reason') in ('exit', 'exit_group'),
           f'{pid}.json: exit_reason={root.get("exit_reason")!r}')
    expect(root.get('argv', [None])[0] in (ARGS.target, os.path.basename(ARGS.target)) and
           root.get('argv')[1:] == ['5'], f'{pid}.json: argv={root.get("argv")!r}')
    by_call = root.get('events_by_call', {})
    for c in ('mmap', 'mprotect', 'munmap'):
        expect(by_call.get(c, 0) >= 8, f'{pid}.json: {c}={by_call.get(c)}, the target makes 8')
    expect(root.get('events') == sum(by_call.values()),
           f'{pid}.json: events={root.get("events")} but events_by_call sums to '
           f'{sum(by_call.values())}')

    m = FIRST_LINE.search(r.err)
    if expect(m is not None, 'no "N processes monitored" line', r.err):
        expect(m.group(1, 2, 3) == ('1', str(len(reports)), '0'),
               f'first line counts {m.group(1, 2, 3)}, want 1 process, {len(reports)} reports, '
               f'0 incomplete')
        expect(m.group(5) == 'every', f'first line check {m.group(5)}')
        expect(m.group(4) == root.get('backend'), f'first line backend {m.group(4)}')
    total = lambda k: sum(rep.get(k, 0) for rep in reports.values())
    m = EVENTS_LINE.search(r.err)
    if expect(m is not None, 'no events line', r.err):
        expect(int(m.group(1)) == total('events'), f'events {m.group(1)} != {total("events")}')
        for c in CALLS:
            n = sum(rep['events_by_call'].get(c, 0) for rep in reports.values())
            shown = re.search(rf'\b{c} (\d+)', m.group(2))
            if n:
                expect(shown and int(shown.group(1)) == n, f'events line: {c} should be {n}',
                       m.group(0))
            else:
                expect(not shown, f'events line shows zero call {c}', m.group(0))
    m = COUNTS_LINE.search(r.err)
    if expect(m is not None, 'no trapped/checks/divergences line', r.err):
        want = tuple(str(total(k)) for k in ('trapped', 'checks', 'range_checks', 'divergences',
                                             'resyncs', 'unexplained'))
        expect(m.groups() == want, f'counts line {m.groups()}, want {want}')
    m = HITS_LINE.search(r.err)
    if expect(m is not None, 'no placement/errno line', r.err):
        want = tuple(str(total(k)) for k in ('placement_hit', 'placement_predicted', 'errno_hit',
                                             'errno_predicted', 'results_hit', 'results',
                                             'passthrough'))
        expect(m.groups() == want, f'hits line {m.groups()}, want {want}')
    expect(maps == str(root.get('final_map_count')),
           f'summary final map count {maps}, report {root.get("final_map_count")}')
    expect(f'vmashadow: reports in {d}' in r.err, 'summary does not say where the reports are')


def case_follow_children(tmp):
    """NEEDS_REPORTS: children are followed by default, not with =no."""
    d1 = os.path.join(tmp, 'yes')
    r = run(['run', '--report-dir', d1, '--', 'sh', '-c', f'{ARGS.target} 0; exit 4'])
    expect(r.returncode == 4, f'exit {r.returncode}, want 4', r.err)
    pid, _, _ = summary_root(r, 'follow yes')
    reports = load_reports(d1)
    pids = {rep['pid'] for rep in reports.values()}
    expect(pid in pids and len(pids) >= 2, f'followed: pids {pids}, root {pid}')
    expect(any(rep['pid'] != pid and rep['argv'][:1] == [ARGS.target] for rep in reports.values()),
           'no report from the child running the target', str(list(reports)))
    for name, rep in reports.items():
        expect(re.fullmatch(rf'{rep["pid"]}(\.exec\d+)?\.json', name),
               f'report file {name} does not match its pid {rep["pid"]}')
        if '.exec' in name:
            expect(rep['exit_reason'] == 'execve', f'{name}: exit_reason {rep["exit_reason"]}')
    m = FIRST_LINE.search(r.err)
    expect(m is not None and int(m.group(1)) == len(pids) and int(m.group(2)) == len(reports),
           f'first line should count {len(pids)} processes, {len(reports)} reports', r.err)

    d2 = os.path.join(tmp, 'no')
    r = run(['run', '--report-dir', d2, '--follow-children=no', '--', 'sh', '-c',
             f'{ARGS.target} 0; exit 4'])
    expect(r.returncode == 4, f'exit {r.returncode}, want 4', r.err)
    pid, _, _ = summary_root(r, 'follow no')
    names = sorted(os.listdir(d2))
    expect(names == [f'{pid}.json'], f'--follow-children=no: reports {names}, want [{pid}.json]')
    expect(re.search(r'^vmashadow: 1 process monitored \(1 report, 0 incomplete\)', r.err, re.M),
           'first line should count 1 process, 1 report', r.err)


def case_malformed_report(tmp):
    """Reports that appear during the run but cannot be read are named and
    counted as incomplete; older files in the directory are not counted."""
    d = os.path.join(tmp, 'reports')
    os.mkdir(d)
    with open(os.path.join(d, '11.json'), 'w') as f:
        f.write('{ this was left by an earlier run')
    script = ('printf \'{"pid": 424242, "events": \' > "$VMASHADOW_REPORT_DIR/424242.json"; '
              'printf \'[1, 2\' > "$VMASHADOW_REPORT_DIR/424243.json"; '
              'printf \'{"pid": -5}\' > "$VMASHADOW_REPORT_DIR/424244.json"; exit 0')
    r = run(['run', '--report-dir', d, '--', 'sh', '-c', script])
    expect(r.returncode == 0, f'exit {r.returncode}', r.err)
    no_crash(r, 'malformed reports')
    for n in ('424242', '424243', '424244'):
        expect(re.search(rf'^vmashadow: {re.escape(d)}/{n}\.json: malformed report.*'
                         r'\(counted as incomplete\)$', r.err, re.M),
               f'{n}.json is not named as malformed', r.err)
    expect(re.search(r'424242\.json: malformed report: line 1: .*truncated\?', r.err),
           'a truncated report is not called truncated', r.err)
    expect('11.json' not in r.err, 'a report from an earlier run was read', r.err)
    m = FIRST_LINE.search(r.err)
    if expect(m is not None, 'no first summary line', r.err):
        expect(int(m.group(3)) >= 3, f'incomplete count {m.group(3)} < 3')


def case_kill_placeholder(tmp):
    """NEEDS_REPORTS: a process killed by SIGKILL leaves its start-up
    placeholder ("complete": false), counted as incomplete."""
    d = os.path.join(tmp, 'reports')
    r = run(['run', '--report-dir', d, '--', 'sh', '-c', 'kill -KILL $$'])
    expect(r.returncode == -signal.SIGKILL, f'exit {r.returncode}, want -9', r.err)
    pid, _, maps = summary_root(r, 'kill -KILL')
    rep = load_reports(d).get(f'{pid}.json')
    if expect(rep is not None, f'no {pid}.json placeholder'):
        expect(rep.get('complete') is False, f'placeholder complete={rep.get("complete")!r}')
    expect(re.search(r'^vmashadow: 1 process monitored \(1 report, 1 incomplete\)', r.err, re.M),
           'the killed process is not counted as incomplete', r.err)
    expect(re.search(rf'^vmashadow: pid {pid} .*report incomplete', r.err, re.M),
           'no line about the incomplete report', r.err)


def case_no_report_setuid(tmp):
    """A set-user-ID program runs unmonitored: a warning first, then "no
    process was monitored"."""
    if os.geteuid() != 0:
        return 'needs root to make a set-user-ID file owned by someone else'
    if os.statvfs(tmp).f_flag & os.ST_NOSUID:
        return f'{tmp} is mounted nosuid'
    prog = os.path.join(tmp, 'setuid-target')
    shutil.copy(ARGS.target, prog)
    os.chown(prog, 65534, 65534)
    os.chmod(prog, 0o4755)
    os.chmod(tmp, 0o755)
    r = run(['run', '--', prog, '4'])
    expect(r.returncode == 4, f'exit {r.returncode}, want 4', r.err)
    expect(re.search(r'^vmashadow: warning: .*set-user-ID.*unmonitored', r.err, re.M),
           'no set-user-ID warning', r.err)
    expect(NO_REPORT.search(r.err), 'no "no process was monitored" line', r.err)
    expect('likely reason:' in r.err and 'set-user-ID' in r.err.split('no process was')[1],
           'the no-report paragraph does not name the set-user-ID bit', r.err)


def case_exec_children(tmp):
    """NEEDS_REPORTS: a monitored shell that execs a static program, a
    set-user-ID program and a program with a scrubbed environment: none is
    harmed (exit statuses as natively), none leaves a report, the shell's
    monitored processes report 0 divergences."""
    if os.geteuid() != 0:
        return 'needs root to make a set-user-ID file owned by someone else'
    if os.statvfs(tmp).f_flag & os.ST_NOSUID:
        return f'{tmp} is mounted nosuid'
    prog = os.path.join(tmp, 'setuid-target')
    shutil.copy(ARGS.target, prog)
    os.chown(prog, 65534, 65534)
    os.chmod(prog, 0o4755)
    os.chmod(tmp, 0o755)
    d = os.path.join(tmp, 'reports')
    script = (f'{shlex.quote(ARGS.static)}; echo static=$?; {shlex.quote(prog)} 4; echo setuid=$?; '
              f'env -i {shlex.quote(ARGS.target)} 6; echo scrubbed=$?; '
              f'exec {shlex.quote(ARGS.static)}')
    r = run(['run', '--check=every', '--report-dir', d, '--', 'sh', '-c', script])
    no_crash(r, 'exec children')
    expect(r.returncode == 0, f'exit {r.returncode}, want 0', r.err)
    expect(r.out == 'static=0\nsetuid=4\nscrubbed=6\n', f'stdout {r.out!r}', r.err)
    reports = load_reports(d)
    expect(len(reports) >= 1, 'no report from the shell', r.err)
    for name, rep in reports.items():
        argv0 = (rep.get('argv') or [''])[0]
        expect(rep.get('divergences') == 0, f'{name}: {rep.get("divergences")} divergences')
        expect(argv0 not in (ARGS.static, prog) and 'run_target' not in argv0,
               f'{name}: a report from an unmonitored program {argv0!r}')


def case_tight_rlimit_as(tmp):
    """A program under a small RLIMIT_AS is not monitored (the model's buffers
    would eat into its address space): a note, the program's own exit."""
    limit = 400 << 20
    cmd = [ARGS.vmashadow, 'run', '--', ARGS.target, '5']
    r = subprocess.run(cmd, env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    err = r.stderr.decode(errors='replace')
    print(f'$ (RLIMIT_AS {limit >> 20} MiB) vmashadow run -- target 5\n  -> exit {r.returncode}')
    expect(r.returncode == 5, f'exit {r.returncode}, want 5', err)
    expect('RLIMIT_AS is 400 MiB' in err and 'not monitoring' in err,
           'no note about RLIMIT_AS', err)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith('case_')}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmashadow', required=True)
    ap.add_argument('--lib', required=True)
    ap.add_argument('--static', required=True)
    ap.add_argument('--target', required=True)
    ap.add_argument('case', choices=sorted(CASES))
    ARGS = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='vmashadow-cli-')
    try:
        skipped = CASES[ARGS.case](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if skipped:
        print(f'SKIP: {skipped}')
        return 77
    for f in FAILURES:
        print(f'FAIL: {f}')
    print(f'{ARGS.case}: {"FAILED" if FAILURES else "ok"}')
    return 1 if FAILURES else 0


if __name__ == '__main__':
    sys.exit(main())

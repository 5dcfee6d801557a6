#!/usr/bin/env python3
"""Issue 10: vmashadow is safe with the user's files and honest when it fails.

Usage: safety_test.py --vmashadow EXE --lib LIB --target EXE CASE

Each CASE is one meson test in suite 'tools' (tests/tools/meson.build). Every
case reproduces a way the launcher or the preload used to clobber, delete,
corrupt or lose something, as a user would meet it, and checks what happens
now. Exit status 0 = pass, 1 = fail (every failed expectation is printed),
77 = skipped (with the reason).
"""
import argparse
import glob
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

PY = '/usr/bin/python3'
NOBODY = 65534
ARGS = None
FAILURES = []

FIRST_LINE = re.compile(r'^vmashadow: (\d+) process(?:es)? monitored \((\d+) reports?, '
                        r'(\d+) incomplete\)', re.M)


def expect(cond, what, detail=''):
    if not cond:
        FAILURES.append(what + (f'\n    {detail}' if detail else ''))
    return cond


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k != 'LD_PRELOAD' and not k.startswith('VMASHADOW_')}
    env['VMASHADOW_LIB'] = ARGS.lib
    env.update(extra)
    return env


def run(args, env=None, timeout=120, **kw):
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.PIPE)
    r = subprocess.run([ARGS.vmashadow] + args, env=env or base_env(), timeout=timeout, **kw)
    r.out = (r.stdout or b'').decode(errors='replace')
    r.err = (r.stderr or b'').decode(errors='replace')
    print(f'$ vmashadow {" ".join(args)}\n  -> exit {r.returncode}')
    for line in r.err.splitlines():
        print(f'  stderr: {line}')
    return r


def load_reports(d):
    out = {}
    for path in sorted(glob.glob(os.path.join(d, '*.json'))):
        with open(path) as f:
            out[os.path.basename(path)] = json.load(f)
    return out


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def no_lines_without_prefix(err, what):
    bad = [l for l in err.splitlines() if l and not l.startswith('vmashadow: ')]
    expect(not bad, f'{what}: stderr lines without "vmashadow: "', '\n'.join(bad[:5]))


# --- 1. symlinks planted in a shared report directory -------------------------

def case_symlink_planted(tmp):
    """Another user plants DIR/<pid>.json and DIR/<pid>.json.tmp as links to a
    root-only file for the pids the run will use: the file stays intact, every
    process still gets a report (under another name) and only this run's."""
    if os.geteuid() != 0:
        return 'needs root (to plant links as nobody)'
    secret = os.path.join(tmp, 'secret')
    with open(secret, 'w') as f:
        f.write('root only\n')
    os.chmod(secret, 0o600)
    os.chmod(tmp, 0o755)
    shared = os.path.join(tmp, 'shared')
    os.mkdir(shared)
    os.chmod(shared, 0o777)  # writable by anybody, no sticky bit
    with open('/proc/sys/kernel/ns_last_pid') as f:
        last = int(f.read())
    lo, hi = last + 1, last + 3000
    planter = ('import os, sys\n'
               'd, s, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n'
               'for p in range(lo, hi):\n'
               '    for n in (f"{p}.json", f"{p}.json.tmp", f"t.{p}"):\n'
               '        os.symlink(s, os.path.join(d, n))\n')
    subprocess.run([PY, '-c', planter, shared, secret, str(lo), str(hi)], check=True,
                   preexec_fn=as_nobody, timeout=60)
    trace = os.path.join(shared, 't')
    script = f'{ARGS.target} 0; {ARGS.target} 0; exit 3'
    r = run(['run', f'--report-dir={shared}', f'--trace={trace}', '--', 'sh', '-c', script])
    expect(r.returncode == 3, f'exit {r.returncode}, want 3', r.err)
    with open(secret) as f:
        expect(f.read() == 'root only\n', 'the root-only file was overwritten through a link')
    expect(os.stat(secret).st_mode & 0o777 == 0o600, 'the root-only file changed mode')
    ours = [p for p in os.listdir(shared) if not os.path.islink(os.path.join(shared, p))]
    reports = [p for p in ours if p.endswith('.json')]
    expect(len(reports) >= 3, f'{len(reports)} reports, want the shell and two targets', ours)
    for p in ours:
        st = os.lstat(os.path.join(shared, p))
        expect(stat.S_IMODE(st.st_mode) == 0o600, f'{p}: mode {oct(st.st_mode)}, want 0600')
    renamed = [p for p in reports if re.match(r'^\d+-[0-9a-f]+\.', p)]
    expect(renamed, 'no report had to avoid a planted name (the pids were not reached?)', ours)
    m = FIRST_LINE.search(r.err)
    if expect(m is not None, 'no summary', r.err):
        expect(m.group(1) == '3' and m.group(3) == '0',
               f'summary counts {m.group(1)} processes, {m.group(3)} incomplete; want 3, 0')
    links = [p for p in os.listdir(shared) if os.path.islink(os.path.join(shared, p))]
    expect(len(links) == 3 * (hi - lo), f'{3 * (hi - lo) - len(links)} planted links removed')


# --- 2. files that look like traces -------------------------------------------

def case_lookalikes(tmp):
    """--trace=logs/app.log never deletes app.log.1, app.log.2,
    app.log.20241201 or a user's app.log.123; an existing app.log that is not
    an earlier run's trace is refused; a second run replaces the first run's
    traces (named in its manifest) and nothing else."""
    logs = os.path.join(tmp, 'logs')
    os.mkdir(logs)
    user = {n: f'user data {n}\n' for n in
            ('app.log.1', 'app.log.2', 'app.log.20241201', 'app.log.123', 'app.log.exec1',
             'app.log.99.exec2')}
    for n, text in user.items():
        with open(os.path.join(logs, n), 'w') as f:
            f.write(text)
    with open(os.path.join(logs, 'app.log'), 'w') as f:
        f.write('the application log\n')
    r = run(['run', '--trace=logs/app.log', '--', ARGS.target, '4'], cwd=tmp)
    expect(r.returncode == 2, f'existing app.log: exit {r.returncode}, want 2', r.err)
    expect('exists and is not a trace' in r.err, 'no message about the existing file', r.err)
    with open(os.path.join(logs, 'app.log')) as f:
        expect(f.read() == 'the application log\n', 'app.log was changed')
    os.rename(os.path.join(logs, 'app.log'), os.path.join(tmp, 'app.log.saved'))

    script = f'{ARGS.target} 0; exit 4'
    for attempt in (1, 2):
        r = run(['run', '--trace=logs/app.log', '--', 'sh', '-c', script], cwd=tmp)
        expect(r.returncode == 4, f'run {attempt}: exit {r.returncode}, want 4', r.err)
        for n, text in user.items():
            path = os.path.join(logs, n)
            if expect(os.path.exists(path), f'run {attempt}: {n} was deleted'):
                with open(path) as f:
                    expect(f.read() == text, f'run {attempt}: {n} was changed')
        traces = sorted(set(os.listdir(logs)) - set(user) - {'.app.log.vmashadow-manifest'})
        expect('app.log' in traces, f'run {attempt}: no app.log', traces)
        expect(len(traces) >= 2, f'run {attempt}: traces {traces}, want the shell and a child')
        for t in traces:
            st = os.stat(os.path.join(logs, t))
            expect(stat.S_IMODE(st.st_mode) == 0o600, f'{t}: mode {oct(st.st_mode)}, want 0600')
            with open(os.path.join(logs, t), 'rb') as f:
                expect(f.read(8) == b'VMASHTRC', f'run {attempt}: {t} is not a trace')
        manifest = os.path.join(logs, '.app.log.vmashadow-manifest')
        if expect(os.path.exists(manifest), 'no manifest'):
            with open(manifest) as f:
                named = [l.split(' ', 2)[2] for l in f.read().splitlines()[2:]]
            expect(sorted(named) == traces, f'manifest names {named}, traces {traces}')
        if attempt == 1:
            first = traces
    expect(len(traces) == len(first), f'the first run\'s traces were not replaced: {traces}')


# --- 3. our messages, our descriptor ------------------------------------------

def case_fd2_reuse(tmp):
    """A program that closes fd 2 and opens a data file (which gets 2) never
    finds our messages in its data; they still reach the real stderr."""
    data = os.path.join(tmp, 'data.bin')
    prog = ('import os, mmap\n'
            'os.close(2)\n'
            f'fd = os.open({data!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n'
            'assert fd == 2, fd\n'
            'os.write(fd, b"DATA\\n")\n'
            'for i in range(5):\n'
            '    m = mmap.mmap(-1, 4096 * (i + 1)); m.close()\n'
            'os.write(fd, b"END\\n")\n')
    r = run(['run', '--', PY, '-c', prog], env=base_env(VMASHADOW_LOG_EVENTS='1'))
    expect(r.returncode == 0, f'exit {r.returncode}', r.err)
    with open(data, 'rb') as f:
        content = f.read()
    expect(content == b'DATA\nEND\n', f'the data file holds {content[:200]!r}')
    expect(re.search(r'^vmashadow: event \d+ mmap', r.err, re.M),
           'the event lines did not reach the real stderr', r.err)
    no_lines_without_prefix(r.err, 'fd 2 reuse')


def case_sigpipe(tmp):
    """Our messages on a pipe nobody reads (`2>&1 | head -2`) never kill the
    program with SIGPIPE, nor the launcher: the exit status is the program's."""
    for attempt in range(3):
        rfd, wfd = os.pipe()
        os.close(rfd)  # the reader is gone before anything is written
        out = open(os.path.join(tmp, f'out{attempt}'), 'w+b')
        p = subprocess.run([ARGS.vmashadow, 'run', '--', ARGS.target, '6'],
                           env=base_env(VMASHADOW_LOG_EVENTS='1'), stdout=out, stderr=wfd,
                           timeout=120)
        os.close(wfd)
        print(f'$ VMASHADOW_LOG_EVENTS=1 vmashadow run -- target 6 2>closed-pipe -> {p.returncode}')
        expect(p.returncode == 6, f'exit {p.returncode}, want 6 (the program\'s)')
    # As `2>&1 | head -2`: the reader goes away after two lines.
    sh = (f'VMASHADOW_LOG_EVENTS=1 {ARGS.vmashadow} run -- {PY} -c '
          '"import mmap\nfor i in range(3000): mmap.mmap(-1, 4096).close()\nprint(7)" '
          '2>&1 >/dev/null | head -2; echo "status=${PIPESTATUS[0]}"')
    p = subprocess.run(['bash', '-c', sh], env=base_env(), stdout=subprocess.PIPE, timeout=180)
    text = p.stdout.decode(errors='replace')
    print(text)
    lines = text.splitlines()
    expect(len(lines) == 3 and all(l.startswith('vmashadow: ') for l in lines[:2]),
           'head -2 did not get two of our lines', text)
    expect(lines and lines[-1] == 'status=0', f'program or launcher killed: {lines[-1:]}', text)


# --- 4. reports that survive --------------------------------------------------

def wait_ready(p, timeout=30):
    """Reads the program's "ready" line (printed once the preload is in)."""
    deadline = time.time() + timeout
    line = b''
    while time.time() < deadline and not line.endswith(b'\n'):
        ch = p.stdout.read(1)
        if not ch:
            break
        line += ch
    return line.strip() == b'ready'


DELAYS = [0, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3]


def case_group_signals(tmp):
    """SIGHUP or SIGTERM sent to the whole process group (as a terminal or
    `kill -- -PGID` does), 10 times each: the launcher passes nothing on a
    second time and the program's report is always the one written while dying
    of the signal, never the start-up placeholder."""
    for sig in (signal.SIGHUP, signal.SIGTERM):
        for i in range(10):
            d = os.path.join(tmp, f'r-{int(sig)}-{i}')
            err = open(os.path.join(tmp, f'err-{int(sig)}-{i}'), 'w+b')
            p = subprocess.Popen([ARGS.vmashadow, 'run', f'--report-dir={d}', '--', 'sh', '-c',
                                  'echo ready; read x'], env=base_env(),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 start_new_session=True)
            ok = wait_ready(p)
            expect(ok, f'{sig.name} #{i}: the program never said ready')
            with open(f'/proc/{p.pid}/task/{p.pid}/children') as f:
                child = int(f.read().split()[0])
            os.killpg(p.pid, sig)
            # A second copy behind the first, as the launcher used to send
            # (sooner or later, to land while the report is being written):
            # it must wait until the report is written.
            deadline = time.perf_counter() + DELAYS[i]
            while time.perf_counter() < deadline:
                pass
            try:
                os.kill(child, sig)
            except ProcessLookupError:
                pass
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                rc = p.wait()
            err.seek(0)
            text = err.read().decode(errors='replace')
            expect(rc == -sig, f'{sig.name} #{i}: launcher exit {rc}, want {-sig}', text)
            reports = load_reports(d) if os.path.isdir(d) else {}
            expect(len(reports) == 1, f'{sig.name} #{i}: {len(reports)} reports', text)
            for name, rep in reports.items():
                expect(rep.get('exit_reason') == f'signal {int(sig)}',
                       f'{sig.name} #{i}: {name} exit_reason {rep.get("exit_reason")!r} '
                       '(the report written while dying was lost)', text)
            expect('placeholder' not in text, f'{sig.name} #{i}: summary blames a placeholder',
                   text)
            p.stdin.close()
            p.stdout.close()


def case_signal_once(tmp):
    """The program sees SIGTERM/SIGHUP sent to the launcher alone once
    (passed on), and one sent to the whole process group at least once (its
    own copy; the launcher's may follow). The program counts the copies its
    handler gets for a second after saying ready."""
    prog = ('import signal, sys, time\n'
            'n = 0\n'
            'def h(s, f):\n'
            '    global n\n'
            '    n += 1\n'
            'signal.signal(signal.SIGTERM, h)\n'
            'signal.signal(signal.SIGHUP, h)\n'
            'print("ready", flush=True)\n'
            'end = time.time() + 1.0\n'
            'while time.time() < end: time.sleep(0.05)\n'
            'print(n, flush=True)\n')
    for sig in (signal.SIGTERM, signal.SIGHUP):
        for group in (True, False):
            p = subprocess.Popen([ARGS.vmashadow, 'run', '--', PY, '-c', prog], env=base_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
            expect(wait_ready(p), f'{sig.name}: the program never said ready')
            if group:
                os.killpg(p.pid, sig)
            else:
                os.kill(p.pid, sig)
            out, err = p.communicate(timeout=60)
            what = f'{sig.name} to the {"group" if group else "launcher"}'
            print(f'{what}: exit {p.returncode}, program counted {out.strip()!r}')
            expect(p.returncode == 0, f'{what}: exit {p.returncode}', err.decode())
            if group:
                # The program shares the launcher's process group (so that
                # killing the group kills it too): a group signal reaches it
                # directly, and the launcher's copy may arrive after the
                # program handled the first (README, known limits).
                expect(out.strip() in (b'1', b'2'),
                       f'{what}: the program got {out.strip()!r} copies, want 1 or 2')
            else:
                expect(out.strip() == b'1', f'{what}: the program got {out.strip()!r} copies, want 1')


def case_full_disk(tmp):
    """The program fills the file system the reports are on: its report is
    still complete (room was reserved when the file was created)."""
    mnt = os.path.join(tmp, 'small')
    os.mkdir(mnt)
    m = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt],
                       stderr=subprocess.PIPE)
    if m.returncode != 0:
        return f'cannot mount a tmpfs: {m.stderr.decode().strip()}'
    try:
        d = os.path.join(mnt, 'reports')
        fill = os.path.join(mnt, 'fill')
        prog = ('import errno, mmap, sys\n'
                f'f = open({fill!r}, "wb", buffering=0)\n'
                'try:\n'
                '    while True: f.write(b"x" * 65536)\n'
                'except OSError as e:\n'
                '    assert e.errno == errno.ENOSPC, e\n'
                'for i in range(20): mmap.mmap(-1, 4096 * (i + 1)).close()\n'
                'print("full")\n')
        r = run(['run', f'--report-dir={d}', '--check=every', '--', PY, '-c', prog])
        expect(r.returncode == 0 and r.out == 'full\n', f'exit {r.returncode}, out {r.out!r}',
               r.err)
        st = os.statvfs(mnt)
        expect(st.f_bavail == 0 or st.f_bavail * st.f_bsize < 65536,
               f'the file system was not full ({st.f_bavail} blocks free)')
        reports = load_reports(d)
        expect(len(reports) == 1, f'{len(reports)} reports', r.err)
        for name, rep in reports.items():
            expect(rep.get('complete') is True, f'{name}: complete={rep.get("complete")!r}')
            expect(rep.get('events', 0) >= 40, f'{name}: {rep.get("events")} events')
        m = FIRST_LINE.search(r.err)
        expect(m is not None and m.group(3) == '0', 'summary: incomplete reports', r.err)
    finally:
        subprocess.run(['umount', mnt])


def case_low_nofile(tmp):
    """A program that lowers RLIMIT_NOFILE to 4: its report is complete."""
    d = os.path.join(tmp, 'r')
    prog = ('import mmap, resource\n'
            'resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))\n'
            'for i in range(10): mmap.mmap(-1, 4096).close()\n')
    r = run(['run', f'--report-dir={d}', '--error-exitcode=9', '--', PY, '-c', prog])
    expect(r.returncode == 0, f'RLIMIT_NOFILE 4: exit {r.returncode}, want 0', r.err)
    reps = load_reports(d)
    expect(len(reps) == 1 and all(x.get('complete') is True for x in reps.values()),
           'RLIMIT_NOFILE 4: report not complete', json.dumps(reps)[:500])
    # A fork child made after the limit was lowered cannot open a report
    # file: the loss is in the summary (an empty <pid>-<runid>.lost24.json,
    # made without a descriptor) and --error-exitcode counts it.
    d2 = os.path.join(tmp, 'r2')
    prog2 = ('import mmap, os, resource\n'
             'resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))\n'
             'pid = os.fork()\n'
             'if pid == 0:\n'
             '    mmap.mmap(-1, 4096).close()\n'
             '    os._exit(0)\n'
             'os.waitpid(pid, 0)\n')
    r = run(['run', f'--report-dir={d2}', '--error-exitcode=9', '--', PY, '-c', prog2])
    expect(r.returncode == 9, f'a child that lost its report: exit {r.returncode}, want 9', r.err)
    expect(re.search(r'^vmashadow: pid \d+: its report could not be created: EMFILE '
                     r'\(Too many open files\) \(counted as incomplete\)$', r.err, re.M),
           'the summary does not name the lost report', r.err)
    m = FIRST_LINE.search(r.err)
    expect(m is not None and m.group(1) == '2' and m.group(3) == '1',
           'summary: want 2 processes, 1 incomplete', r.err)
    lost = glob.glob(os.path.join(d2, '*.lost24.json'))
    expect(len(lost) == 1 and os.path.getsize(lost[0]) == 0, f'lost marker: {lost}')


def case_privilege_drop(tmp):
    """A fork child that becomes nobody (as nginx workers do) cannot create or
    rename anything in the root-owned report directory: its report, created
    at the fork, is still complete."""
    if os.geteuid() != 0:
        return 'needs root'
    d = os.path.join(tmp, 'r')
    prog = ('import mmap, os\n'
            'pid = os.fork()\n'
            'if pid == 0:\n'
            f'    os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n'
            '    for i in range(10): mmap.mmap(-1, 4096).close()\n'
            '    os._exit(0)\n'
            '_, st = os.waitpid(pid, 0)\n'
            'raise SystemExit(os.waitstatus_to_exitcode(st))\n')
    r = run(['run', f'--report-dir={d}', '--', PY, '-c', prog])
    expect(r.returncode == 0, f'exit {r.returncode}', r.err)
    reps = load_reports(d)
    expect(len(reps) == 2, f'{len(reps)} reports, want 2', r.err)
    for name, rep in reps.items():
        expect(rep.get('complete') is True, f'{name}: complete={rep.get("complete")!r}', r.err)
    m = FIRST_LINE.search(r.err)
    expect(m is not None and m.groups() == ('2', '2', '0'), 'summary counts', r.err)


def case_fds_closed(tmp):
    """A program that closes every descriptor above 2 mid-run: its report is
    still written (reopened by name, same file); its trace stops, and the
    summary, --error-exitcode and replay all say so."""
    d = os.path.join(tmp, 'r')
    trace = os.path.join(tmp, 'closed.trace')
    prog = ('import mmap, os\n'
            'for i in range(5): mmap.mmap(-1, 4096).close()\n'
            'os.closerange(3, 4096)\n'
            'for i in range(5): mmap.mmap(-1, 4096).close()\n')
    r = run(['run', f'--report-dir={d}', f'--trace={trace}', '--', PY, '-c', prog])
    expect(r.returncode == 0, f'exit {r.returncode}', r.err)
    expect(re.search(r'^vmashadow: pid \d+ .*: its trace stopped early', r.err, re.M),
           'the summary does not say the trace stopped', r.err)
    reps = load_reports(d)
    expect(len(reps) == 1 and all(x.get('complete') is True for x in reps.values()),
           'report not complete', json.dumps(reps)[:500])
    r = run(['run', f'--report-dir={d}2', f'--trace={trace}2', '--error-exitcode=9', '--', PY,
             '-c', prog])
    expect(r.returncode == 9, f'--error-exitcode=9: exit {r.returncode}', r.err)
    p = subprocess.run([ARGS.vmashadow, 'replay', trace], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    print(out)
    expect(': OK' not in out and 'INCOMPLETE' in out and 'stops before' in out,
           'replay does not say the trace stopped early', out)


def case_error_exitcode(tmp):
    """--error-exitcode=N: the program's status when all is well; N when a
    report is lost (SIGKILL of a child); bad values are usage errors."""
    r = run(['run', '--error-exitcode=9', '--', ARGS.target, '5'])
    expect(r.returncode == 5, f'clean run: exit {r.returncode}, want 5', r.err)
    r = run(['run', '--error-exitcode=9', '--', 'sh', '-c', 'sh -c "kill -KILL \\$\\$"; exit 5'])
    expect(r.returncode == 9, f'a child killed by SIGKILL: exit {r.returncode}, want 9', r.err)
    expect('--error-exitcode' in r.err, 'no line saying why the status changed', r.err)
    for bad in ('256', '-1', 'x', ''):
        r = run(['run', f'--error-exitcode={bad}', '--', ARGS.target])
        expect(r.returncode == 2, f'--error-exitcode={bad}: exit {r.returncode}, want 2', r.err)


# --- 5. special paths, empty values, profiles, FIFOs, concurrent runs --------

def case_special_paths(tmp):
    """Devices, /proc, FIFOs and empty values are refused before the program
    starts (exit 2); nothing is created in /dev."""
    marker = os.path.join(tmp, 'ran')
    prog = ['sh', '-c', f'touch {marker}']
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    link = os.path.join(tmp, 'link')
    os.symlink(os.path.join(tmp, 'elsewhere'), link)
    cases = [
        ['--trace=/dev/full'], ['--trace=/dev/stdout'], ['--trace=/dev/null'],
        ['--trace=/proc/x'], ['--trace=/proc/self/fd/1'], ['--trace=/sys/kernel/x'],
        [f'--trace={fifo}'], [f'--trace={link}'], ['--trace='], ['--report-dir='],
        ['--report-dir=/proc/self'], ['--report-dir=/dev/null'], ['--report-dir', ''],
    ]
    for extra in cases:
        r = run(['run'] + extra + ['--'] + prog)
        expect(r.returncode == 2, f'{extra}: exit {r.returncode}, want 2', r.err)
        expect(r.err.startswith('vmashadow: '), f'{extra}: no message', r.err)
        expect(not os.path.exists(marker), f'{extra}: the program ran')
    for n in ('full', 'stdout', 'null'):
        expect(not glob.glob(f'/dev/{n}.*'), f'/dev/{n}.* created')
    expect(not os.path.exists(os.path.join(tmp, 'elsewhere')), 'a file created through a link')


def case_trace_commands(tmp):
    """replay & co. refuse a FIFO (no hang) and a device; an unknown or empty
    --kernel-profile is a usage error listing the names; report, export and
    plot never write through a link planted at -o OUT."""
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    for cmd in (['replay'], ['maps', '--at', '0'], ['report'], ['export']):
        for path in (fifo, '/dev/zero'):
            p = subprocess.run([ARGS.vmashadow] + cmd + [path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            err = p.stderr.decode()
            print(f'$ vmashadow {" ".join(cmd)} {path} -> {p.returncode}\n  {err.strip()}')
            expect(p.returncode == 2 and 'not a regular file' in err,
                   f'{cmd[0]} {path}: exit {p.returncode}', err)
    trace = os.path.join(tmp, 't')
    r = run(['run', f'--trace={trace}', '--', ARGS.target])
    expect(r.returncode == 0, f'record: exit {r.returncode}', r.err)
    # -o OUT: never through a link; a new file is 0600; a regular file is
    # replaced; a device the user names is written to.
    secret = os.path.join(tmp, 'secret')
    with open(secret, 'w') as f:
        f.write('keep\n')
    link = os.path.join(tmp, 'planted')
    os.symlink(secret, link)
    for cmd in (['report'], ['export'], ['plot']):
        p = subprocess.run([ARGS.vmashadow] + cmd + [trace, '-o', link], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        expect(p.returncode == 2 and b'symbolic link' in p.stderr,
               f'{cmd[0]} -o LINK: exit {p.returncode}', p.stderr.decode())
        with open(secret) as f:
            expect(f.read() == 'keep\n', f'{cmd[0]} -o LINK wrote through the link')
        out = os.path.join(tmp, f'out-{cmd[0]}')
        for attempt in (1, 2):
            p = subprocess.run([ARGS.vmashadow] + cmd + [trace, '-o', out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            expect(p.returncode == 0 and os.path.getsize(out) > 0,
                   f'{cmd[0]} -o OUT (#{attempt}): exit {p.returncode}', p.stderr.decode())
            expect(stat.S_IMODE(os.stat(out).st_mode) == 0o600, f'{cmd[0]} -o OUT: mode')
    p = subprocess.run([ARGS.vmashadow, 'report', trace, '-o', '/dev/stdout'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    expect(p.returncode == 0 and len(p.stdout) > 0, 'report -o /dev/stdout', p.stderr.decode())
    expect(not [n for n in os.listdir(tmp) if n.endswith('.tmp')], 'temporary files left')
    for value in ('5.15', ''):
        p = subprocess.run([ARGS.vmashadow, 'replay', f'--kernel-profile={value}', trace],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode()
        print(f'$ vmashadow replay --kernel-profile={value} -> {p.returncode}\n  {err.strip()}')
        expect(p.returncode == 2, f'--kernel-profile={value!r}: exit {p.returncode}, want 2', err)
        if value:
            expect('6.12, 6.15, 6.17, 6.18, 6.18-fc' in err, 'the valid names are not listed',
                   err)


def case_concurrent_runs(tmp):
    """Two runs sharing one report directory at the same time each count only
    their own processes (run B's report appears while run A runs)."""
    d = os.path.join(tmp, 'shared')
    a = subprocess.Popen([ARGS.vmashadow, 'run', f'--report-dir={d}', '--', 'sh', '-c',
                          f'{ARGS.target}; sleep 1; {ARGS.target}'],
                         env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    b = run(['run', f'--report-dir={d}', '--', ARGS.target, '0'])
    a_out, a_err = a.communicate(timeout=120)
    a_err = a_err.decode(errors='replace')
    print('run A stderr:\n' + a_err)
    m = FIRST_LINE.search(b.err)
    expect(m is not None and m.group(1) == '1', 'run B does not count 1 process', b.err)
    m = FIRST_LINE.search(a_err)
    # sh, the two targets and sleep.
    expect(m is not None and m.group(1) == '4', 'run A does not count 4 processes', a_err)
    expect(len(load_reports(d)) >= 5, 'reports missing from the shared directory')


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith('case_')}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmashadow', required=True)
    ap.add_argument('--lib', required=True)
    ap.add_argument('--target', required=True)
    ap.add_argument('case', choices=sorted(CASES))
    ARGS = ap.parse_args()
    for k in ('vmashadow', 'lib', 'target'):
        setattr(ARGS, k, os.path.abspath(getattr(ARGS, k)))
    tmp = tempfile.mkdtemp(prefix='vmashadow-safety-')
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

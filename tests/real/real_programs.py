#!/usr/bin/env python3
"""Real programs that once broke under vmashadow, natively and monitored.

Usage: real_programs.py --vmashadow PATH --gdb-target PATH [--repeat N] CASE...

Cases (issue 12's matrix, the part this machine can run from Debian's
packages): chromium (headless, --no-sandbox, as root), chromium_sandbox (its
seccomp sandbox on, which needs an unprivileged user: run as `nobody`), gdb
(gdb -batch: break, run, bt of a small program), valgrind (--tool=none), go (a
dynamically linked Go program: goroutines, forced GCs, SIGURG preemption).
Each runs natively and under `vmashadow run --check=every --report-dir=DIR`
(and --check=off for chromium), REPEAT times, each with a timeout: the exit
status and the output (normalised: pids, addresses gdb prints) must be the
same, every report must have 0 divergences, and a process that could not be
monitored must say why (stepped aside). Prints one line per run with the
report counts, and fails on the first difference.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM_FLAGS = ['--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update',
                  '--disable-sync']
PAGE = ('<html><body><p id="x">hello</p>'
        '<script>document.getElementById("x").textContent = "dom " + (6 * 7);</script>'
        '</body></html>\n')


def fail(msg):
    print(f'FAIL: {msg}')
    sys.exit(1)


def run(cmd, timeout, env=None):
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        fail(f'{" ".join(cmd[:6])}... still running after {timeout} s (a hang)\n'
             f'{(e.stderr or b"").decode(errors="replace")[-3000:]}')
    return p.returncode, p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace'), \
        time.monotonic() - start


def reports(d):
    out = []
    for path in sorted(glob.glob(os.path.join(d, '*.json'))):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass  # an empty lost-report marker: counted by the summary
    return out


def as_user(cmd, user):
    return ['runuser', '-u', user, '--'] + cmd if user else cmd


def one(name, cmd, normalise, args, tmp, check, user=None, env=None):
    native = run(as_user(cmd, user), args.timeout, env)
    rep = os.path.join(tmp, f'{name}-{check}-reports')
    os.mkdir(rep)
    if user:
        os.chmod(rep, 0o777)
    mon = run(as_user([args.vmashadow, 'run', f'--check={check}', f'--report-dir={rep}', '--']
                      + cmd, user), args.timeout, env)
    if native[0] != mon[0]:
        fail(f'{name}: exit status {mon[0]} under vmashadow, {native[0]} natively\n'
             f'{mon[2][-3000:]}')
    a, b = normalise(native[1]), normalise(mon[1])
    if a != b:
        fail(f'{name}: output differs\n--- native\n{a[-2000:]}\n--- vmashadow\n{b[-2000:]}')
    rs = reports(rep)
    if not rs:
        fail(f'{name}: no report in {rep}')
    div = sum(r.get('divergences', 0) for r in rs)
    events = sum(r.get('events', 0) for r in rs)
    unexplained = sum(r.get('unexplained', 0) for r in rs)
    aside = [r for r in rs if str(r.get('monitoring', 'monitored')).startswith('stepped aside')]
    said = len(re.findall(r'^vmashadow: pid \d+: (?:stepped aside|not monitored)', mon[2], re.M))
    print(f'{name} check={check}: status {mon[0]}, {len(rs)} reports, {events} events, '
          f'{div} divergences, {unexplained} unexplained, {len(aside)} reports stepped aside, '
          f'{said} "not monitored/stepped aside" lines, {mon[3] / max(native[3], 0.01):.1f}x native')
    if div != 0:
        first = next(r for r in rs if r.get('divergences', 0))
        fail(f'{name}: {div} divergences; first: {json.dumps(first.get("divergence_samples", [])[:1])}')
    return said


def chromium_case(args, tmp, sandbox):
    exe = shutil.which('chromium')
    if exe is None:
        print('skip: chromium is not installed')
        return
    home = os.path.join(tmp, 'home')
    os.makedirs(home, exist_ok=True)
    os.chmod(tmp, 0o755)
    os.chmod(home, 0o777)
    page = os.path.join(home, 'page.html')
    with open(page, 'w') as f:
        f.write(PAGE)
    os.chmod(page, 0o644)
    env = dict(os.environ, HOME=home)
    norm = lambda s: s  # --dump-dom prints the document: byte for byte
    checks = ['every', 'off'] if not sandbox else ['every']
    for i in range(args.repeat):
        for check in checks:
            ud = tempfile.mkdtemp(dir=home)
            os.chmod(ud, 0o777)
            cmd = [exe] + CHROMIUM_FLAGS + [f'--user-data-dir={ud}', '--dump-dom', f'file://{page}']
            if not sandbox:
                cmd.insert(1, '--no-sandbox')
            name = f'chromium{"_sandbox" if sandbox else ""}#{i + 1}'
            said = one(name, cmd, norm, args, tmp, check, user='nobody' if sandbox else None,
                       env=env)
            if sandbox and said == 0:
                fail(f'{name}: the sandboxed renderers did not say they stepped aside')


def gdb_case(args, tmp):
    gdb = shutil.which('gdb')
    if gdb is None:
        print('skip: gdb is not installed')
        return
    cmd = [gdb, '-batch', '-nx', '-ex', 'break work', '-ex', 'run', '-ex', 'bt', '-ex', 'continue',
           args.gdb_target]

    def norm(s):
        s = re.sub(r'process \d+', 'process N', s)
        s = re.sub(r'0x[0-9a-f]+', '0xADDR', s)
        return '\n'.join(l for l in s.splitlines() if not l.startswith('[Thread debugging') and
                         not l.startswith('Using host libthread_db'))
    for i in range(args.repeat):
        one(f'gdb#{i + 1}', cmd, norm, args, tmp, 'every')


def valgrind_case(args, tmp):
    vg = shutil.which('valgrind')
    if vg is None:
        print('skip: valgrind is not installed')
        return
    cmd = [vg, '--tool=none', '-q', args.gdb_target]
    for i in range(args.repeat):
        said = one(f'valgrind#{i + 1}', cmd, lambda s: s, args, tmp, 'every')
        if said == 0:
            fail('valgrind: the program under Valgrind did not say it was not monitored')


def go_case(args, tmp):
    go = shutil.which('go')
    if go is None:
        print('skip: go is not installed (golang-go)')
        return
    src = os.path.join(tmp, 'gosrc')
    os.makedirs(src, exist_ok=True)
    shutil.copy(args.go_source, os.path.join(src, 'main.go'))
    with open(os.path.join(src, 'go.mod'), 'w') as f:
        f.write('module realgo\n\ngo 1.19\n')
    exe = os.path.join(tmp, 'realgo')
    env = dict(os.environ, GOCACHE=os.path.join(tmp, 'gocache'), GOPATH=os.path.join(tmp, 'gopath'),
               GOFLAGS='-mod=mod', CGO_ENABLED='1')
    b = subprocess.run([go, 'build', '-o', exe, '.'], cwd=src, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600)
    if b.returncode != 0:
        fail(f'go build failed:\n{b.stdout.decode(errors="replace")[-3000:]}')
    for i in range(args.repeat):
        for check in ('every', 'off'):
            one(f'go#{i + 1}', [exe], lambda s: s, args, tmp, check)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmashadow', required=True)
    ap.add_argument('--gdb-target', required=True)
    ap.add_argument('--go-source', default=os.path.join(os.path.dirname(__file__), 'go', 'main.go'))
    ap.add_argument('--repeat', type=int, default=1)
    ap.add_argument('--timeout', type=float, default=120)
    ap.add_argument('cases', nargs='+')
    args = ap.parse_args()
    args.vmashadow = os.path.abspath(args.vmashadow)
    tmp = tempfile.mkdtemp(prefix='vmashadow-real-')
    try:
        for case in args.cases:
            if case == 'chromium':
                chromium_case(args, tmp, sandbox=False)
            elif case == 'chromium_sandbox':
                if os.getuid() != 0:
                    print('skip: chromium_sandbox runs chromium as nobody, which needs root')
                    continue
                chromium_case(args, tmp, sandbox=True)
            elif case == 'gdb':
                gdb_case(args, tmp)
            elif case == 'valgrind':
                valgrind_case(args, tmp)
            elif case == 'go':
                go_case(args, tmp)
            else:
                fail(f'unknown case {case!r}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('real programs: ok')


if __name__ == '__main__':
    main()

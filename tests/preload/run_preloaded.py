#!/usr/bin/env python3
"""Runs a program with and without libvmashadow.so preloaded and compares.

Usage: run_preloaded.py --lib LIB [--check MODE] [--zero-divergences]
                        [--expect-divergences N] [--exact-results]
                        [--min-events N] [--backend sud|wrappers]
                        -- PROGRAM ARGS...

Fails unless the exit status and stdout are identical in both runs and every
monitored process printed its "vmashadow:" summary on stderr. With
--zero-divergences every summary must report divergences=0; with
--exact-results every predicted return value, placement and errno must have
matched the kernel's; with --expect-divergences the summaries must add up to
exactly N divergences, each with its record. PROGRAM "@python" is the Python
interpreter running this script (not a pyenv shim, which would run several
shell processes). Prints the summaries, so `meson test -v` shows them.
"""
import argparse
import os
import re
import subprocess
import sys

SUMMARY = re.compile(r'^vmashadow: pid=(\d+) events=(\d+) \[[^\]]*\] checks=(\d+) '
                     r'divergences=(\d+) resyncs=(\d+) placement_hit=(\d+)/(\d+) '
                     r'errno_hit=(\d+)/(\d+) results_hit=(\d+)/(\d+) .*final_map_count=(\d+)',
                     re.M)


def run(cmd, env):
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lib', required=True)
    ap.add_argument('--check', default='exit')
    ap.add_argument('--zero-divergences', action='store_true')
    ap.add_argument('--expect-divergences', type=int, default=None)
    ap.add_argument('--exact-results', action='store_true')
    ap.add_argument('--min-events', type=int, default=0)
    ap.add_argument('--expect-record', action='append', default=[], metavar='REGEX',
                    help='stderr must match REGEX (a divergence record, say)')
    ap.add_argument('--backend', default=None, help='VMASHADOW_BACKEND (sud, wrappers)')
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == '--' else args.cmd
    if not cmd:
        ap.error('no program given')
    if cmd[0] == '@python':
        cmd[0] = sys.executable

    base_env = {k: v for k, v in os.environ.items()
                if k != 'LD_PRELOAD' and not k.startswith('VMASHADOW_')}
    plain = run(cmd, base_env)
    env = dict(base_env, LD_PRELOAD=os.path.abspath(args.lib), VMASHADOW_CHECK=args.check)
    if args.backend:
        env['VMASHADOW_BACKEND'] = args.backend
    shadowed = run(cmd, env)
    err = shadowed.stderr.decode(errors='replace')
    sys.stdout.write(err)

    ok = True
    if plain.returncode != shadowed.returncode:
        print(f'FAIL: exit status {shadowed.returncode} under the preload, '
              f'{plain.returncode} without')
        ok = False
    if plain.stdout != shadowed.stdout:
        print('FAIL: stdout differs under the preload')
        a = plain.stdout.decode(errors='replace').splitlines()
        b = shadowed.stdout.decode(errors='replace').splitlines()
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                print(f'  first difference at line {i + 1}:\n    without: {x}\n    with:    {y}')
                break
        else:
            print(f'  {len(a)} lines without, {len(b)} with')
        ok = False
    sums = SUMMARY.findall(err)
    if not sums:
        print('FAIL: no "vmashadow: pid=... divergences=..." summary on stderr')
        ok = False
    total_events = 0
    total_div = 0
    for s in sums:
        (pid, events, checks, div, resyncs, ph, pp, eh, ep, rh, rt, maps) = map(int, s)
        total_events += events
        total_div += div
        if args.zero_divergences and div != 0:
            print(f'FAIL: pid {pid}: {div} divergences')
            ok = False
        if args.exact_results and (ph != pp or eh != ep or rh != rt):
            print(f'FAIL: pid {pid}: placement {ph}/{pp}, errno {eh}/{ep}, results {rh}/{rt}')
            ok = False
        if args.check == 'every' and checks < events:
            print(f'FAIL: pid {pid}: {checks} checks for {events} events with check=every')
            ok = False
    for pattern in args.expect_record:
        if not re.search(pattern, err, re.M):
            print(f'FAIL: no stderr line matches {pattern!r}')
            ok = False
    if args.expect_divergences is not None:
        records = len(re.findall(r'^vmashadow: divergence #', err, re.M))
        if total_div != args.expect_divergences or records != total_div:
            print(f'FAIL: {total_div} divergences ({records} records), expected '
                  f'{args.expect_divergences}')
            ok = False
    if total_events < args.min_events:
        print(f'FAIL: {total_events} events seen, expected at least {args.min_events}')
        ok = False
    print(f'{len(sums)} summaries, {total_events} events: {"ok" if ok else "FAILED"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

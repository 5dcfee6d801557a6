#!/usr/bin/env python3
"""Prints the preload's overhead table (README "Preload overhead").

Usage: preload_bench.py --bench BIN --lib LIB [--iters N] [--rounds R]

Runs preload_bench for each operation natively and under libvmashadow.so in
several configurations, interleaved round by round (the machine drifts), and
prints the median ns/op and the ratio to native measured in the same round:
  wrappers, check=off    exported wrappers only (VMASHADOW_BACKEND=wrappers)
  sud, check=off         Syscall User Dispatch (the default backend)
  sud, check=every       + a PROCMAP_QUERY range check after every event, and
                         page tables learnt before calls that zap pages
  every, no page tables  the same with VMASHADOW_PAGETABLES=0
The wrapper path is mmap_libc (glibc's exported mmap reaches our wrapper;
a page of its own between PROT_NONE neighbours) and mmap_libc_merge (a page
that merges into the read-write VMA below it); the trapped path is mmap_raw
and every plain syscall such as getppid.
"""
import argparse
import os
import statistics
import subprocess
import sys

OPS = ['mmap_libc', 'mmap_libc_merge', 'mmap_raw', 'mmap_raw_merge', 'getppid_libc',
       'getppid_raw']
CONFIGS = [
    ('native', None),
    ('wrappers, check=off', {'VMASHADOW_BACKEND': 'wrappers', 'VMASHADOW_CHECK': 'off'}),
    ('sud, check=off', {'VMASHADOW_CHECK': 'off'}),
    ('sud, check=every', {'VMASHADOW_CHECK': 'every'}),
    ('every, no page tables', {'VMASHADOW_CHECK': 'every', 'VMASHADOW_PAGETABLES': '0'}),
]


def measure(bench, lib, op, iters, extra):
    env = {k: v for k, v in os.environ.items()
           if k != 'LD_PRELOAD' and not k.startswith('VMASHADOW_')}
    if extra is not None:
        env.update(extra, LD_PRELOAD=lib, VMASHADOW_QUIET='1')
    out = subprocess.run([bench, op, str(iters)], env=env, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    return float(out.stdout.decode().strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bench', required=True)
    ap.add_argument('--lib', required=True)
    ap.add_argument('--iters', type=int, default=20000)
    ap.add_argument('--rounds', type=int, default=3)
    args = ap.parse_args()
    ratios = {(op, c): [] for op in OPS for c, _ in CONFIGS}
    times = {(op, c): [] for op in OPS for c, _ in CONFIGS}
    for _ in range(args.rounds):
        for op in OPS:
            native = None
            for name, extra in CONFIGS:
                t = measure(args.bench, os.path.abspath(args.lib), op, args.iters, extra)
                native = t if extra is None else native
                times[(op, name)].append(t)
                ratios[(op, name)].append(t / native)
    print(f'{"operation":16} ' + ' '.join(f'{c:>24}' for c, _ in CONFIGS))
    for op in OPS:
        cells = []
        for name, _ in CONFIGS:
            t = statistics.median(times[(op, name)])
            r = statistics.median(ratios[(op, name)])
            cells.append(f'{t:9.0f} ns {r:6.2f}x'.rjust(24))
        print(f'{op:16} ' + ' '.join(cells))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Replay speed (README "Traces"): records a 1,000,000-event trace of
trace_workload's churn (mmap, mprotect, munmap) under `vmashadow run --trace`
with --check=off and with --check=every (whose range checks replay re-renders
and re-hashes), then replays each 3 times and prints the median events/s."""
import argparse
import os
import re
import statistics
import subprocess
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--vmashadow", required=True)
ap.add_argument("--workload", required=True)
ap.add_argument("--rounds", type=int, default=333334)  # 3 events each
args = ap.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    for check in ("off", "every"):
        trace = os.path.join(tmp, f"churn-{check}")
        subprocess.run([args.vmashadow, "run", f"--check={check}", f"--trace={trace}", "--",
                        args.workload, "churn", str(args.rounds)],
                       check=True, capture_output=True)
        speeds = []
        for _ in range(3):
            out = subprocess.run([args.vmashadow, "replay", "--quiet", trace], check=True,
                                 capture_output=True, text=True).stdout
            m = re.search(r"replay: ([\d,]+) events in ([\d.]+) s \((\d+) events/s", out)
            events = int(m.group(1).replace(",", ""))
            speeds.append(int(m.group(3)))
        size = os.path.getsize(trace)
        print(f"trace_replay_bench: check={check}: {events:,} events, {size / 1e6:.1f} MB "
              f"({size / events:.0f} B/event), replay median {statistics.median(speeds):,.0f} events/s "
              f"(runs: {', '.join(f'{s:,}' for s in speeds)})")

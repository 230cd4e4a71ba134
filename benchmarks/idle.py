"""What an idle pipeline costs: CPU time a second of a started pipeline that gets no items.

A threaded pipeline of 4 stages is started, given one item, then left idle;
the process's CPU time (user + system) over ``--seconds`` is divided by the
wall time. Debugging off and on alternate, ``--rounds`` each, in fresh
interpreters; the verdict is the median per setting.

    python benchmarks/idle.py --rounds 5 --seconds 10

Exits 1 when the debugging-on median is above the target (2 ms a second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGET_MS_PER_S = 2.0

IDLE = r"""
import json, resource, sys, time
from framescope import Pipeline

def ident(x):
    return x

pipeline = Pipeline(debug=sys.argv[1] == "on")
for index in range(4):
    pipeline.add(ident, f"S{index}")
pipeline.parallelize()
pipeline.forward(1)
time.sleep(1.0)  # the item is through; the pipeline idles from here
before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
time.sleep(float(sys.argv[2]))
after, end = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
print(json.dumps(cpu / (end - start) * 1000))
pipeline.cleanup()
"""


def idle_cpu_ms(debug: bool, seconds: float) -> float:
    """CPU milliseconds a second of one idle pipeline, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", IDLE, "on" if debug else "off", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    """Measure, print the medians and ranges, and judge the debugging-on figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    figures: dict[bool, list[float]] = {False: [], True: []}
    for round_index in range(args.rounds):
        for debug in (round_index % 2 == 0, round_index % 2 == 1):
            figures[debug].append(idle_cpu_ms(debug, args.seconds))
    for debug, values in figures.items():
        print(
            f"idle pipeline, debugging {'on ' if debug else 'off'}: "
            f"{statistics.median(values):.2f} ms CPU a second "
            f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} runs of {args.seconds} s)"
        )
    on = statistics.median(figures[True])
    met = on <= TARGET_MS_PER_S
    print(f"target: debugging on <= {TARGET_MS_PER_S} ms a second: {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

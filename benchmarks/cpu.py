"""Cost of the CPU accounting: one sampling pass over 10 stage threads, and its share of a snapshot.

Run: python benchmarks/cpu.py [--passes 2000] [--snapshots 1000] [--rounds 5]

A pipeline of 10 threaded stages (real threads, started, waiting for input),
read through the kernel's accounting (``/proc/self/task/<tid>/schedstat`` per
thread and ``/proc/stat``, or the thread CPU clocks where there is no
``/proc``):

1. ``CpuAccounting.sample(force=True)``: one pass over the 10 threads and the
   machine, median of ``--passes`` in microseconds. Target: < 200 us (a
   snapshot samples at most every 0.25 s: under 0.1% of one core).
2. Per snapshot: ``Pipeline.snapshot()`` with the accounting as it is in
   steady use (20 readings per thread: a 5 s window at one pass per 0.25 s)
   and the pass itself skipped (the 0.25 s gap not yet passed), median of
   ``--snapshots``; the part of it that reads the CPU splits and the
   machine's load; and a pass as a share of a snapshot that makes one
   (snapshot + pass). Passes and snapshots alternate by round; the figures
   are the medians of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from framescope import Pipeline
from framescope.pipeline.runtime.cpu import ProcCpuSource, default_cpu_source

STAGES = 10
READINGS = 20  # a 5 s window at one pass per 0.25 s


def identity(item: Any) -> Any:
    return item


def ten_stages() -> Pipeline:
    """A started pipeline of 10 threaded stages, idle (waiting for input)."""
    pipeline = Pipeline()
    for index in range(STAGES):
        pipeline.add(identity, f"S{index}")
    pipeline.parallelize(queue_size=4).start()
    return pipeline


def median_us(call: Any, count: int) -> float:
    """Median microseconds per ``call()`` over ``count`` calls (after 50 warm ones)."""
    for _ in range(50):
        call()
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def steady(accounting: Any) -> None:
    """Fill the window as steady use does: 20 readings per thread, then no pass in a snapshot."""
    window = accounting._window_ns
    accounting._window_ns = 1 << 62
    for _ in range(READINGS):
        accounting.sample(force=True)
    for track in accounting._tracks.values():
        while len(track.points) > READINGS:
            track.points.popleft()
    accounting._window_ns = window
    accounting._gap_ns = 1 << 62  # no snapshot of the figures makes a pass


def read_us(pipeline: Pipeline, accounting: Any, count: int) -> tuple[float, float]:
    """Median microseconds of a snapshot (no pass in it), and of reading the CPU part alone."""
    keys = [[stage.key] for stage in pipeline.snapshot().stages]

    def cpu_part() -> None:
        for key in keys:
            accounting.split(key)
        accounting.machine()

    return median_us(pipeline.snapshot, count), median_us(cpu_part, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=2000)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pipeline = ten_stages()
    try:
        accounting = pipeline._runtime.cpu
        source = type(accounting.source).__name__
        tracked = len(accounting._tracks)
        if tracked != STAGES:
            raise SystemExit(f"expected {STAGES} tracked stage threads, found {tracked}")
        real = isinstance(default_cpu_source(), ProcCpuSource)
        print(f"{tracked} tracked stage threads, read through {source} (/proc: {real})")
        passes, snapshots, cpu_parts = [], [], []
        for _ in range(args.rounds):
            passes.append(median_us(lambda: accounting.sample(force=True), args.passes))
            gap = accounting._gap_ns
            steady(accounting)
            snapshot, cpu_part = read_us(pipeline, accounting, args.snapshots)
            accounting._gap_ns = gap
            snapshots.append(snapshot)
            cpu_parts.append(cpu_part)
    finally:
        pipeline.cleanup()
    one = statistics.median(passes)
    ok = one < 200
    print(
        f"1. one sampling pass (sample(force=True)), median of {args.passes} x {args.rounds} "
        f"rounds: {one:.1f} us (rounds {min(passes):.1f}-{max(passes):.1f})  "
        f"< 200 us {'ok' if ok else 'MISSED'}"
    )
    snapshot, cpu_part = statistics.median(snapshots), statistics.median(cpu_parts)
    print(
        f"2. Pipeline.snapshot() of the 10 stages, {READINGS} readings per thread, no pass in "
        f"it: {snapshot:.1f} us (median of {args.snapshots} x {args.rounds} rounds)"
    )
    print(f"   of which reading the CPU splits and the machine's load: {cpu_part:.1f} us")
    print(
        f"   a snapshot that makes a pass: {snapshot + one:.1f} us, the pass "
        f"{one / (snapshot + one):.0%} of it"
    )
    print(f"   at most 4 passes a second: {4 * one / 1e6:.3%} of one core")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

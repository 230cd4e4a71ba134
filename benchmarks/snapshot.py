"""Cost of one Pipeline.snapshot(), the reading every renderer uses.

Run: python benchmarks/snapshot.py [--calls N]

A 10-stage threaded pipeline with debugging on (live state, frame traces of
every frame) has processed 5,000 items, so every window, event ring and
trace ring is full. Then snapshot() is called N times, alternating with
a bare read of the same numbers' source, the stage timers' statistics() (the
floor: what any reading must at least do). Target: median snapshot() < 1 ms.
Also shown: the first access to the snapshot's frame traces (joined lazily)
and to_dict() (JSON-ready, traces included).
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice
from typing import Any

from framescope import Pipeline


def identity(data: Any) -> Any:
    return data


def build(items: int) -> Pipeline:
    pipeline = Pipeline(name="Bench", debug=True, results_size=items + 1)
    for index in range(10):
        pipeline.add(identity, f"S{index}")
    pipeline.parallelize(queue_size=8, input_timeout=None).start()
    for i in range(items):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=30), items))) == items
    return pipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--items", type=int, default=5_000)
    args = parser.parse_args()
    pipeline = build(args.items)
    timers = list(pipeline.timers().values())
    snapshot_ms, floor_ms = [], []
    for _ in range(args.calls):
        start = time.perf_counter()
        snapshot = pipeline.snapshot()
        snapshot_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        for timer in timers:
            timer.statistics()
        floor_ms.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    traces = snapshot.traces
    join_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    snapshot.to_dict()
    dict_ms = (time.perf_counter() - start) * 1e3
    pipeline.cleanup()
    median = statistics.median(snapshot_ms)
    ok = median < 1.0
    print(f"10-stage threaded pipeline, debugging on, {args.items:,} items, {args.calls} calls")
    p90 = statistics.quantiles(snapshot_ms, n=10)[-1]
    verdict = "ok" if ok else "MISSED"
    print(f"  snapshot():              median {median:.3f} ms, p90 {p90:.3f} ms  < 1 ms {verdict}")
    print(f"  11 timers' statistics():   median {statistics.median(floor_ms):.3f} ms (floor)")
    print(f"  first .traces ({len(traces)} frames): {join_ms:.1f} ms (joined on first use)")
    print(f"  to_dict() with the traces: {dict_ms:.1f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

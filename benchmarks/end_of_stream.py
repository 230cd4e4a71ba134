"""How soon a finite stream ends: from the last result to the end of ``run()``'s iteration.

Run: python benchmarks/end_of_stream.py [--items 10000] [--runs 20]

A 3-stage threaded pipeline runs ``pipeline.run(range(N))``; each run checks
that exactly N results came, in order, and measures the time between the
last result and the end of the iteration (no results() timeout to wait out).
Target: every run ends within 100 ms of its last result.
"""

from __future__ import annotations

import argparse
import statistics
import time

from framescope import Pipeline


def one_run(items: int) -> float:
    """Seconds from the last result to the end of iteration, after checking the results."""
    pipeline = Pipeline().add(lambda x: x + 1, "A").add(lambda x: x * 2, "B")
    pipeline.add(lambda x: x - 2, "C").parallelize(queue_size=8)
    expected = 0
    last = time.perf_counter()
    for result in pipeline.run(range(items)):
        if result != expected * 2:
            raise AssertionError(f"result {result} out of order (expected {expected * 2})")
        expected += 1
        last = time.perf_counter()
    ended = time.perf_counter()
    pipeline.cleanup()
    if expected != items:
        raise AssertionError(f"{expected} results for {items} items")
    return ended - last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    gaps = [one_run(args.items) for _ in range(args.runs)]
    worst = max(gaps)
    ok = worst <= 0.100
    print(
        f"run(range({args.items:,})) through 3 threaded stages, {args.runs} runs: "
        f"{args.items:,} results in order each time"
    )
    print(
        f"last result -> end of iteration: median {statistics.median(gaps) * 1e3:.2f} ms, "
        f"max {worst * 1e3:.2f} ms  (<= 100 ms {'ok' if ok else 'MISSED'})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

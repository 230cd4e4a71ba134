"""Soak: memory and threads of a busy pipeline over a long run must stay flat.

Run: python benchmarks/soak.py [--duration 300] [--every 10]

A 4-stage threaded pipeline with debugging on and frame-trace sampling, fed
as fast as it accepts (``start_loop(0)``) with 64 KiB items. One stage fails
on 1 item in 50 (``raise`` policy: the errors travel with the results), one
names a custom block per item (``track-<id>``, far past the block-name
bound), and a consumer reads every result. Every ``--every`` seconds it
prints the resident memory (RSS), the number of threads and the items
completed, and reads a snapshot and a diagnosis as a live view would.

``--rate N`` feeds N items a second instead (``start_loop(1 / N)``), as a
camera would.

Verdict: after a warm-up (the first fifth of the run, at least one sample),
RSS grows by at most 10% and the thread count does not change. The slope of
RSS after the warm-up (least squares, MiB an hour) is printed too; with
``--max-slope`` it is judged (e.g. ``--rate 1000 --duration 3600
--max-slope 1``: flat within 1 MiB an hour).
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from framescope import Pipeline, Stage
from framescope.pipeline import StageError


def rss_mib() -> float:
    """This process's resident memory in MiB (from /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Decode(Stage):
    """Makes a 64 KiB frame from the item number."""

    def __call__(self, item: int) -> tuple[int, bytes]:
        return item, bytes(65_536)


class Detect(Stage):
    """Fails on one item in 50."""

    def __call__(self, frame: tuple[int, bytes]) -> tuple[int, bytes]:
        if frame[0] % 50 == 49:
            raise ValueError(f"no detections in frame {frame[0]}")
        return frame


class Track(Stage):
    """Times its work under a block name of its own for every item."""

    def __call__(self, frame: tuple[int, bytes]) -> tuple[int, int]:
        with self.events.block(f"track-{frame[0]}"):
            size = len(frame[1])
        return frame[0], size


def build() -> Pipeline:
    counter = iter(range(10**12))
    pipeline = Pipeline(
        input_generator=lambda: next(counter),
        name="Soak",
        debug=True,
        trace_every=10,
        trace_frames=1000,
        results_size=256,
    )
    pipeline.add(Decode()).add(Detect()).add(Track()).add(lambda f: f[0], "Publish")
    return pipeline.parallelize(input_timeout=None, queue_size=8)


def consume(pipeline: Pipeline, tally: dict[str, int], stop: threading.Event) -> None:
    results = pipeline.results(timeout=0.5)
    while not stop.is_set():
        try:
            for _ in results:
                tally["results"] += 1
            results = pipeline.results(timeout=0.5)
        except StageError:
            tally["errors"] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds to run")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=0.0, help="items a second (0: as accepted)")
    parser.add_argument("--max-slope", type=float, default=None, help="MiB an hour, judged")
    args = parser.parse_args()
    pipeline = build()
    tally = {"results": 0, "errors": 0}
    stop = threading.Event()
    consumer = threading.Thread(target=consume, args=(pipeline, tally, stop), name="consumer")
    consumer.start()
    pipeline.start_loop(1 / args.rate if args.rate > 0 else 0)
    print(f"{'t (s)':>6} {'RSS (MiB)':>10} {'threads':>8} {'completed':>10} {'items/s':>9}")
    samples: list[tuple[float, float, int]] = []
    started = time.monotonic()
    last_done, last_t = 0, started
    while (now := time.monotonic()) - started < args.duration:
        time.sleep(min(args.every, args.duration - (now - started)))
        snapshot: Any = pipeline.snapshot()
        pipeline.diagnose()
        done = snapshot.counters["completed"]
        t = time.monotonic()
        rate = (done - last_done) / (t - last_t)
        last_done, last_t = done, t
        sample = (t - started, rss_mib(), threading.active_count())
        samples.append(sample)
        print(f"{sample[0]:>6.0f} {sample[1]:>10.1f} {sample[2]:>8} {done:>10,} {rate:>9,.0f}")
    pipeline.stop_loop()
    pipeline.close()
    pipeline.join(30)
    stop.set()
    consumer.join(30)
    counts = pipeline.counters()
    pipeline.cleanup()

    warm = max(1, len(samples) // 5)
    base, end = samples[warm - 1], samples[-1]
    growth = end[1] / base[1] - 1
    steady_threads = all(s[2] == base[2] for s in samples[warm - 1 :])
    print(
        f"\nforwarded {counts['forwarded']:,}, completed {counts['completed']:,}, "
        f"failed {counts['failed']:,}, blocks folded {counts['blocks_folded']:,}, "
        f"errors read {tally['errors']:,}, results read {tally['results']:,}"
    )
    accounted = counts["completed"] + counts["failed"] + counts["dropped_oldest"]
    balanced = counts["forwarded"] == accounted + counts["discarded"]
    flat = growth <= 0.10
    slope = rss_slope_mib_per_hour(samples[warm - 1 :])
    slope_ok = args.max_slope is None or slope <= args.max_slope
    judged = (
        "" if args.max_slope is None else f" (<= {args.max_slope} {'ok' if slope_ok else 'MISSED'})"
    )
    print(f"RSS slope after the warm-up: {slope:+.2f} MiB an hour{judged}")
    print(
        f"RSS {base[1]:.1f} MiB at {base[0]:.0f} s -> {end[1]:.1f} MiB at {end[0]:.0f} s "
        f"({growth:+.1%}; <= +10% {'ok' if flat else 'MISSED'}); threads "
        f"{'steady' if steady_threads else 'CHANGED'}; accounting "
        f"{'balanced' if balanced else 'UNBALANCED'}"
    )
    return 0 if flat and steady_threads and balanced and slope_ok else 1


def rss_slope_mib_per_hour(samples: list[tuple[float, float, int]]) -> float:
    """The least-squares slope of RSS against time, in MiB an hour (0 with one sample)."""
    if len(samples) < 2:
        return 0.0
    times = [t for t, _, _ in samples]
    sizes = [rss for _, rss, _ in samples]
    mean_t, mean_s = sum(times) / len(times), sum(sizes) / len(sizes)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    slope = sum((t - mean_t) * (s - mean_s) for t, s in zip(times, sizes, strict=True)) / spread
    return slope * 3600


if __name__ == "__main__":
    raise SystemExit(main())

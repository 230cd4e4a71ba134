"""Many sources on one box: how many 720p30 cameras it carries, what watching them costs, stalls.

Run: python benchmarks/sources.py [--seconds 8] [--counts 1,4,8,16,24,32] [--stalls 10]

1. Capacity: N ``SyntheticSource(1280, 720, fps=30, realtime=True)`` into one
   threaded pipeline of two decode-free stages (a 1/16 sample of the frame's
   mean, then a threshold), for ``--seconds`` each: the fps each source
   delivered (the slowest of them) and the process's CPU. A count is carried
   when every source keeps 95% of its 30 fps.
2. What a source costs: N paced sources of tiny items (30 a second each,
   no pixels) through ``run({name: source})``, against the same items from
   one thread through ``run(iterable)``, in paired rounds that alternate:
   the process CPU a second of each, and the difference per source (the
   source's thread, its tagging and merge, the watcher's health tracking).
   Target: under 1% of a core (10 ms of CPU a second) per source.
3. Stall detection: a source that gives 30 fps and then goes silent inside
   its read, ``stall_after=1.0``: the time from its last frame to its
   ``stalled`` transition, over ``--stalls`` runs (target: within 1 s of
   ``stall_after``). And false stalls under back-pressure: 8 sources at
   30 fps into a stage that takes 100 ms an item, ``stall_after=1.0``, for
   ``--seconds``: every source must be ``blocked``, none ``stalled``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from framescope import Pipeline
from framescope.pipeline import SourceState, SourceTransition
from framescope.video import SyntheticSource


def brightness(frame: Any) -> float:
    """A decode-free stage: the mean of a 1/16 sample of the picture."""
    return float(frame.image[::4, ::4].mean())


def capacity(count: int, seconds: float) -> tuple[float, float]:
    """(the slowest source's fps, process CPU cores used) with ``count`` 720p30 sources."""
    pipeline = Pipeline(name="Capacity")
    pipeline.add(lambda frame: (frame.source, brightness(frame)), "Mean")
    pipeline.add(lambda pair: (pair[0], pair[1] > 128), "Threshold")
    pipeline.parallelize(queue_size=4)
    sources = {f"cam{i}": SyntheticSource(1280, 720, fps=30, realtime=True) for i in range(count)}
    got = dict.fromkeys(sources, 0)
    run = pipeline.run(sources, stall_after=5.0)
    start, cpu = time.monotonic(), time.process_time()
    warm = start + 1.0  # the first second: threads starting, first frames
    counted_from = None
    try:
        for name, _ in run:
            now = time.monotonic()
            if now >= warm:
                if counted_from is None:
                    counted_from, cpu = now, time.process_time()
                got[name] += 1
            if now - start >= seconds + 1.0:
                break
    finally:
        run.close()
        elapsed = time.monotonic() - (counted_from or start)
        used = time.process_time() - cpu
        pipeline.cleanup()
    return min(got.values()) / elapsed, used / elapsed


class Ticks:
    """A paced source of tiny items: ``fps`` a second for ``seconds``."""

    def __init__(self, fps: float, seconds: float) -> None:
        self.fps, self.seconds = fps, seconds

    def __iter__(self) -> Iterator[int]:
        period, start = 1 / self.fps, time.monotonic()
        for index in range(round(self.fps * self.seconds)):
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield index


def merged(count: int, fps: float, seconds: float) -> Iterator[int]:
    """The items of ``count`` paced sources, from one thread (the same rate, one loop)."""
    return iter(Ticks(fps * count, seconds))


def cpu_per_second(count: int, many: bool, seconds: float) -> float:
    """Process CPU a second while ``count`` sources of 30 items a second run through a pipeline."""
    pipeline = Pipeline(name="Overhead").add(lambda item: item, "Pass").parallelize()
    source: Any = (
        {f"cam{i}": Ticks(30, seconds) for i in range(count)}
        if many
        else merged(count, 30, seconds)
    )
    start, cpu = time.monotonic(), time.process_time()
    try:
        items = sum(1 for _ in pipeline.run(source))
    finally:
        used, elapsed = time.process_time() - cpu, time.monotonic() - start
        pipeline.cleanup()
    assert items == round(30 * count * seconds) or not many or items > 0
    return used / elapsed


def per_source_cost(count: int, seconds: float, rounds: int) -> tuple[float, float, float, float]:
    """CPU ms a second per source: (all of it, then median, low, high of the difference).

    All of it: the many-source run's CPU a second over ``count``; the
    difference: that against one merged feed of the same items.
    """
    per_round, total = [], []
    for index in range(rounds):
        order = (True, False) if index % 2 == 0 else (False, True)
        figures = {many: cpu_per_second(count, many, seconds) for many in order}
        per_round.append((figures[True] - figures[False]) / count * 1000)
        total.append(figures[True] / count * 1000)
    return statistics.median(total), statistics.median(per_round), min(per_round), max(per_round)


class GoesSilent:
    """30 fps for ``frames`` frames, then silent inside ``next()`` until ``release`` is set."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.release = threading.Event()
        self.last_frame: float | None = None

    def __iter__(self) -> Iterator[int]:
        for index in range(self.frames):
            time.sleep(1 / 30)
            self.last_frame = time.perf_counter_ns()  # the pipeline's clock (SYSTEM_CLOCK)
            yield index
        self.release.wait(30)


def stall_delay(stall_after: float) -> float:
    """Seconds from a source's last frame to its ``stalled`` transition."""
    silent = GoesSilent(15)
    changes: list[SourceTransition] = []
    pipeline = Pipeline(name="Stall").add(lambda item: item, "Pass").parallelize()
    run = pipeline.run({"cam": silent}, stall_after=stall_after, on_source_state=changes.append)
    reader = threading.Thread(target=lambda: sum(1 for _ in run), name="bench-reader")
    reader.start()
    try:
        deadline = time.monotonic() + stall_after + 10
        while time.monotonic() < deadline:
            stalled = [c for c in changes if c.new is SourceState.STALLED]
            if stalled:
                assert silent.last_frame is not None
                return (stalled[0].at_ns - silent.last_frame) / 1e9
            time.sleep(0.01)
        raise SystemExit("the silent source was never judged stalled")
    finally:
        silent.release.set()
        reader.join(30)
        pipeline.cleanup()


def false_stalls(seconds: float) -> tuple[int, dict[str, str]]:
    """Stalled transitions while 8 sources at 30 fps wait on a 100 ms stage; their final states."""
    changes: list[SourceTransition] = []

    def slow(item: Any) -> Any:
        time.sleep(0.1)
        return item

    pipeline = Pipeline(name="Pressure").add(slow, "Slow").parallelize()
    sources = {f"cam{i}": Ticks(30, seconds + 30) for i in range(8)}
    run = pipeline.run(sources, stall_after=1.0, on_source_state=changes.append)
    start = time.monotonic()
    states: dict[str, str] = {}
    try:
        for _ in run:
            if time.monotonic() - start >= seconds:
                states = {n: str(s.state) for n, s in pipeline.snapshot().sources.items()}
                break
    finally:
        run.close()
        pipeline.cleanup()
    return sum(1 for c in changes if c.new is SourceState.STALLED), states


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--counts", default="1,4,8,16,24,32")
    parser.add_argument("--stalls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    failed = False

    print("\n1. 720p30 synthetic sources through two decode-free stages")
    carried = 0
    for count in (int(c) for c in args.counts.split(",")):
        slowest, cores = capacity(count, args.seconds)
        kept = slowest >= 0.95 * 30
        carried = count if kept else carried
        print(
            f"   {count:3} sources: slowest {slowest:5.1f} fps, {cores:.2f} cores"
            + ("" if kept else "  (below 28.5 fps)")
        )
        if not kept:
            break
    print(f"   carried at full rate: {carried}")

    print("\n2. what a source costs (30 tiny items a second each), paired rounds")
    for count in (4, 16):
        total, median, low, high = per_source_cost(count, args.seconds / 2, args.rounds)
        ok = median < 10.0
        failed |= not ok
        print(
            f"   {count:3} sources: {total:.2f} ms of CPU a second per source in all; "
            f"{median:.2f} more than one merged feed (rounds {low:.2f}-{high:.2f}) "
            f"= {median / 10:.2f}% of a core  {'< 1%: met' if ok else '>= 1%: MISSED'}"
        )

    print(f"\n3. stall detection, stall_after 1.0 s, {args.stalls} runs")
    delays = [stall_delay(1.0) for _ in range(args.stalls)]
    late = max(delays) - 1.0
    failed |= late > 1.0
    print(
        f"   last frame -> stalled: p50 {statistics.median(delays):.3f} s, max {max(delays):.3f} s "
        f"(at most {late:.3f} s past stall_after; target 1 s: {'met' if late <= 1.0 else 'MISSED'})"
    )
    stalls, states = false_stalls(args.seconds)
    failed |= stalls > 0
    print(
        f"   8 sources at 30 fps into a 100 ms stage for {args.seconds:g} s: {stalls} stalled "
        f"(target 0: {'met' if stalls == 0 else 'MISSED'}); states then: "
        + ", ".join(sorted(set(states.values())))
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

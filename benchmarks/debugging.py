"""Cost of pipeline debugging, as ratios measured in one run.

Run: python benchmarks/debugging.py [--items N]

1. Throughput of 4 empty threaded stages (the runtime benchmark's set-up) with
   debugging on, as a share of the same with debugging off, at queue sizes 1
   and 8. Off and on runs alternate; the verdict is the median of the per-pair
   ratios. Target: >= 85%. With debugging on, the aggregator also samples
   the stage threads' CPU accounting after its drains (at most every 0.25 s,
   ``framescope.pipeline.cpu``): the script counts those passes and fails
   when a run with debugging on made none, so the cost measured includes it.
2. Aggregator speed: events folded per second by one drain on one core.
   Each runtime iteration record stands for 9 events (LOOP, INPUT_BLOCK and
   INPUT start/end, OUTPUT_BLOCK and OUTPUT start/end); custom events count
   one each. Target: >= 500,000 events/s.

NumPy is loaded first, as in any application that handles frames: the
aggregator then folds its records with it. ``--without-numpy`` measures the
pure-Python fold a process without NumPy uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from framescope import Pipeline
from framescope.clock import SYSTEM_CLOCK
from framescope.pipeline.debug.aggregation import Aggregator, NodeLink
from framescope.pipeline.debug.nodestate import EVENTS_PER_ITERATION
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.events import pack_iteration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import LastStage, identity


def throughput(n: int, queue_size: int, debug: bool, samples: list[int] | None = None) -> float:
    """Steady items/s through 4 empty stages; the CPU sampling passes made go to ``samples``."""
    last = LastStage(n)
    pipeline = Pipeline(results_size=n + 1, debug=debug)
    pipeline.add(identity).add(identity, "B").add(identity, "C").add(last)
    pipeline.parallelize(input_timeout=None, queue_size=queue_size)
    accounting = pipeline._runtime.cpu  # counts the passes the aggregator makes
    sample, passes = accounting.sample, [0]

    def counted(*, force: bool = False) -> bool:
        made = sample(force=force)
        passes[0] += made
        return made

    accounting.sample = counted  # type: ignore[method-assign]
    pipeline.start()
    for i in range(n):
        pipeline.forward(i)
    last.done.wait()
    pipeline.cleanup()
    if samples is not None:
        samples.append(passes[0])
    return last.steady_rate()


def aggregator_rate(records: int, custom: int, nodes: int = 4) -> tuple[float, float]:
    """(events/s, seconds) for one drain of ``records`` iterations + ``custom`` events per node."""
    links = []
    for index in range(nodes):
        recorder = EventRecorder(f"P__S{index}", SYSTEM_CLOCK)
        for sequence in range(records):
            t = sequence * 1_000_000
            recorder.extend_iterations(
                pack_iteration(
                    sequence, sequence, t, 1, t + 1_000, t + 50_000, 0, t + 51_000, True, t - 9
                )
            )
        for _ in range(custom // 2):
            with recorder.block("nms"):
                pass
        links.append(NodeLink(recorder.node_id, recorder, out_capacity=4))
    aggregator = Aggregator("P", links, SYSTEM_CLOCK)
    start = time.perf_counter()
    aggregator.drain()
    elapsed = time.perf_counter() - start
    events = nodes * (records * EVENTS_PER_ITERATION + (custom // 2) * 2)
    return events / elapsed, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--without-numpy", action="store_true", help="leave NumPy unloaded (pure-Python folds)"
    )
    args = parser.parse_args()
    if not args.without_numpy:
        import numpy  # noqa: F401 - loaded as in a frame-handling application
    elif "numpy" in sys.modules:
        raise SystemExit("--without-numpy: NumPy was loaded by an import anyway")
    print(f"NumPy {'not loaded' if args.without_numpy else 'loaded'}: the folds use it if loaded")
    failed = False
    print(f"1. 4 empty threaded stages, {args.items:,} items, median of {args.runs} pairs")
    print(
        f"{'queue size':>10} {'debug off/s':>12} {'debug on/s':>11} {'on/off':>7} "
        f"{'pairs min-max':>14}  target"
    )
    for size in (1, 8):
        # Alternate the two so that a slow spell of the machine hits both alike;
        # the verdict is the median of the per-pair ratios.
        offs, ons, ratios, passes = [], [], [], []
        for _ in range(args.runs):
            offs.append(throughput(args.items, size, False))
            ons.append(throughput(args.items, size, True, passes))
            ratios.append(ons[-1] / offs[-1])
        off, on, ratio = statistics.median(offs), statistics.median(ons), statistics.median(ratios)
        ok = ratio >= 0.85
        failed |= not ok
        verdict = "ok" if ok else "MISSED"
        spread = f"{min(ratios):.0%}-{max(ratios):.0%}"
        print(f"{size:>10} {off:>12,.0f} {on:>11,.0f} {ratio:>7.1%} {spread:>14}  >= 85% {verdict}")
        sampled = min(passes) > 0
        failed |= not sampled
        print(
            f"{'':>10} CPU sampling passes per debugging-on run: {min(passes)}-{max(passes)}"
            f"{'' if sampled else '  (NONE in a run: the sampling was not active)'}"
        )
    print("\n2. aggregator: one drain of 4 nodes x 25,000 iterations + 5,000 custom events")
    rate, seconds = aggregator_rate(25_000, 5_000)
    ok = rate >= 500_000
    failed |= not ok
    print(
        f"   {rate:,.0f} events/s ({seconds * 1000:.0f} ms)  >= 500,000 {'ok' if ok else 'MISSED'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

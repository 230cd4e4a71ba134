"""Stage replicas: throughput gains, transport cost and the price of keeping order.

Run: python benchmarks/replicas.py [--rounds 3] [--no-ray]

1. Thread replicas of a stage that releases the GIL for 10 ms (``time.sleep``):
   items/s with 2 and 4 replicas against 1. Targets: >= 1.9x and >= 3.6x.
2. Process replicas of a pure-Python, CPU-bound 10 ms stage: 2 replicas
   against the stage in one thread. Target (2 cores): >= 1.6x.
3. Transport of one 640x480x3 uint8 frame to a worker process and back
   (the stage returns it): shared memory against pickling the pixels through
   the pipe, median of 300 round trips each. Target: < 0.5 ms with shared memory.
4. Ray (unless --no-ray): the same frame's round trip to an actor, and 2 actors
   against 1 on the CPU-bound stage, on a local 2-CPU instance.
5. Order: 4 thread replicas of a stage taking a random 1-20 ms, ordered
   against ``ordered=False``. Target: ordered costs < 5%.

Throughput is measured from the 10th result to the last, so starting the
workers is not counted. Configurations alternate within each round; each
verdict is the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from framescope import Pipeline
from framescope.clock import SYSTEM_CLOCK
from framescope.pipeline.replicas import shared_items
from framescope.pipeline.replicas.process import ProcessReplica


class Sleep:
    """Releases the GIL for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, item: Any) -> Any:
        time.sleep(self.seconds)
        return item


class Spin:
    """Holds the interpreter for ``seconds`` of pure-Python work."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, item: Any) -> Any:
        end = time.perf_counter() + self.seconds
        count = 0
        while time.perf_counter() < end:
            count += 1
        return item


class Variable:
    """Sleeps 1-20 ms, drawn from the item."""

    def __call__(self, item: int) -> int:
        time.sleep(random.Random(item).uniform(0.001, 0.020))
        return item


def identity(item: Any) -> Any:
    return item


def rate(pipeline: Pipeline, items: int, skip: int = 10) -> float:
    """Items/s from the ``skip``-th result to the last of ``run(range(items))``."""
    started = 0.0
    for count, _ in enumerate(pipeline.run(range(items)), 1):
        if count == skip:
            started = time.perf_counter()
    return (items - skip) / (time.perf_counter() - started)


def throughput(make: Callable[[], Any], items: int, **add: Any) -> float:
    with Pipeline() as pipeline:
        pipeline.add(make(), "Stage", **add).parallelize(queue_size=4)
        return rate(pipeline, items)


def rounds_of(count: int, configs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each config once per round, in alternating order; their results by name."""
    results: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for round_ in range(count):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(configs[name]())
    return results


def ratio(results: dict[str, list[float]], top: str, bottom: str) -> float:
    return statistics.median(a / b for a, b in zip(results[top], results[bottom], strict=True))


def report(title: str, results: dict[str, list[float]], unit: str) -> None:
    print(title)
    for name, values in results.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<22} {statistics.median(values):8.1f} {unit}  ({shown})")


def round_trips(call: Callable[[Any], Any], frame: np.ndarray, count: int) -> float:
    """Median seconds per call of ``call(frame)`` over ``count`` calls (after 20 warm ones)."""
    for _ in range(20):
        call(frame)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call(frame)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def transport(frame: np.ndarray) -> tuple[float, float]:
    """Round trip of ``frame`` through a process replica: (shared memory, pickled) seconds."""
    stage = shared_items.pickle.dumps(identity)
    replica = ProcessReplica(stage, "Transport#0", SYSTEM_CLOCK)
    try:
        shared = round_trips(replica.call, frame, 300)
        minimum = shared_items.SHARED_MIN_BYTES
        shared_items.SHARED_MIN_BYTES = 1 << 62  # everything inline: the pixels are pickled
        try:
            pickled = round_trips(replica.call, frame, 300)
        finally:
            shared_items.SHARED_MIN_BYTES = minimum
    finally:
        replica.close(5)
    return shared, pickled


def ray_figures(frame: np.ndarray, rounds: int) -> None:
    import ray

    from framescope.pipeline.replicas.ray import RayExecutor

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        (replica,) = RayExecutor().replicas(identity, 1, "Ray", SYSTEM_CLOCK)
        try:
            trip = round_trips(replica.call, frame, 200)
        finally:
            replica.close(5)
        print(f"4. Ray actor round trip, one 640x480x3 frame: {trip * 1e3:.2f} ms (median of 200)")
        results = rounds_of(
            rounds,
            {
                "1 actor": lambda: throughput(lambda: Spin(0.01), 150, executor="ray"),
                "2 actors": lambda: throughput(lambda: Spin(0.01), 150, replicas=2, executor="ray"),
            },
        )
        report("   Ray actors, CPU-bound 10 ms stage", results, "items/s")
        print(f"   2 actors / 1: {ratio(results, '2 actors', '1 actor'):.2f}x")
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds
    print(f"{os.cpu_count()} CPUs; {rounds} rounds; medians of the rounds' ratios\n")

    sleep = rounds_of(
        rounds,
        {
            "1 thread": lambda: throughput(lambda: Sleep(0.01), 200),
            "2 thread replicas": lambda: throughput(lambda: Sleep(0.01), 300, replicas=2),
            "4 thread replicas": lambda: throughput(lambda: Sleep(0.01), 500, replicas=4),
        },
    )
    report("1. Stage releasing the GIL for 10 ms", sleep, "items/s")
    print(f"   2 replicas / 1: {ratio(sleep, '2 thread replicas', '1 thread'):.2f}x (>= 1.9x)")
    print(f"   4 replicas / 1: {ratio(sleep, '4 thread replicas', '1 thread'):.2f}x (>= 3.6x)\n")

    spin = rounds_of(
        rounds,
        {
            "1 thread": lambda: throughput(lambda: Spin(0.01), 150),
            "2 process replicas": lambda: throughput(
                lambda: Spin(0.01), 250, replicas=2, executor="process"
            ),
        },
    )
    report("2. Pure-Python CPU-bound 10 ms stage", spin, "items/s")
    print(
        f"   2 processes / 1 thread: {ratio(spin, '2 process replicas', '1 thread'):.2f}x"
        " (>= 1.6x)\n"
    )

    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    shared, pickled = transport(frame)
    print("3. Round trip of one 640x480x3 uint8 frame to a worker process and back")
    print(f"   shared memory: {shared * 1e3:.3f} ms (< 0.5 ms)")
    print(f"   pickled through the pipe: {pickled * 1e3:.3f} ms ({pickled / shared:.2f}x)\n")

    if not args.no_ray:
        ray_figures(frame, rounds)
        print()

    order = rounds_of(
        rounds,
        {
            "ordered": lambda: throughput(Variable, 400, replicas=4),
            "ordered=False": lambda: throughput(Variable, 400, replicas=4, ordered=False),
        },
    )
    report("5. 4 thread replicas, 1-20 ms per item", order, "items/s")
    cost = 1 - ratio(order, "ordered", "ordered=False")
    print(f"   keeping the order costs {cost:.1%} (< 5%)")


if __name__ == "__main__":
    main()

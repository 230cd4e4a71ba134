"""Process replicas from a cold start: first result and throughput, against multiprocessing.Pool.

Run: python benchmarks/process_start.py [--rounds 7] [--items 600]

Each run is a fresh interpreter (this script with ``--one KIND``), so every
start is cold, as an application's first one is: nothing imported in a
worker yet, no worker server running. Two workers run a pure-Python,
CPU-bound stage of 5 ms (``benchmarks/start_stage.py``) on ``--items`` items:

- ``framescope``: ``Pipeline().add(spin, replicas=2, executor="process")``,
  ``parallelize()``, ``run(range(items))``; the stage in a module;
- ``framescope-main``: the same with the stage defined in this script, so its
  workers need the script run (in their server) first;
- ``framescope-fork``: the stage in a module, ``ProcessExecutor(start_method="fork")``
  (the worker server forked from this process at ``parallelize()``);
- ``framescope-spawn``: ``start_method="spawn"``, a fresh interpreter per
  worker that runs this script again (how workers started before the worker
  server);
- ``pool-fork`` / ``pool-spawn``: ``multiprocessing.Pool(2)`` with that start
  method, ``imap(spin, range(items))`` (ordered, one item a task, like the
  pipeline).

Measured from just before the pipeline's ``add()`` (or ``Pool()``): the time
to the first result; the items a second over the whole run, start-up
included; and the items a second once running (from the 100th result to the
last). The script imports NumPy and framescope first, as an application
does (``spawn`` workers import them again). The kinds run in a different
order each round (paired rounds); each ratio is the median of the rounds'
ratios, shown with its range. Exits 1 when the default's (``framescope``)
median time to the first result is over the 300 ms target.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy  # noqa: F401 - an application's usual import: spawned workers load it again

from framescope import Pipeline
from framescope.pipeline import ProcessExecutor
from start_stage import SPIN_S, spin

TARGET_S = 0.300
KINDS = (
    "framescope",
    "framescope-main",
    "framescope-fork",
    "framescope-spawn",
    "pool-fork",
    "pool-spawn",
)
RUNNING_FROM = 100
"""The result after which the pool or pipeline counts as running."""


def spin_here(item: int) -> int:
    """:func:`start_stage.spin`, defined in this script."""
    end = time.perf_counter() + SPIN_S
    count = 0
    while time.perf_counter() < end:
        count += 1
    return item


def one(kind: str, items: int) -> dict[str, float]:
    """Run ``kind`` once in this interpreter: first result (s), rates (items/s)."""
    started = time.perf_counter()
    first = running_from = 0.0
    results: Iterator[Any]
    if kind.startswith("framescope"):
        stage = spin_here if kind == "framescope-main" else spin
        method = {"framescope-fork": "fork", "framescope-spawn": "spawn"}.get(kind, "forkserver")
        executor = ProcessExecutor(start_method=method)
        pipeline = Pipeline().add(stage, "Spin", replicas=2, executor=executor)
        pipeline.parallelize(queue_size=4)
        parallelized = time.perf_counter()
        results, done = pipeline.run(range(items)), pipeline.cleanup
    else:
        method = kind.removeprefix("pool-")
        pool = multiprocessing.get_context(method).Pool(2)
        parallelized = time.perf_counter()
        results, done = pool.imap(spin, range(items), chunksize=1), pool.terminate
    try:
        for count, _ in enumerate(results, 1):
            if count == 1:
                first = time.perf_counter() - started
            if count == RUNNING_FROM:
                running_from = time.perf_counter()
        ended = time.perf_counter()
    finally:
        done()
    return {
        "first_s": first,
        "setup_s": parallelized - started,
        "rate": items / (ended - started),
        "running_rate": (items - RUNNING_FROM) / (ended - running_from),
    }


def fresh(kind: str, items: int) -> dict[str, float]:
    """:func:`one` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--one", kind, "--items", str(items)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def spread(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    low, mid, high = (
        round(v * scale, digits) for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid:g} ({low:g}-{high:g})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.items)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for round_ in range(args.rounds):
        order = KINDS[round_ % len(KINDS) :] + KINDS[: round_ % len(KINDS)]
        for kind in order:
            runs[kind].append(fresh(kind, args.items))
    print(f"{args.rounds} rounds of {args.items} items, 2 workers, {SPIN_S * 1e3:g} ms stage")
    print("median (min-max) over the rounds\n")
    print(f"{'':16} {'first result ms':>18} {'items/s with start-up':>24} {'items/s running':>20}")
    for kind, figures in runs.items():
        first = spread([f["first_s"] for f in figures], 1e3)
        rate = spread([f["rate"] for f in figures], digits=1)
        running = spread([f["running_rate"] for f in figures], digits=1)
        print(f"{kind:16} {first:>18} {rate:>24} {running:>20}")
    print("\nframescope / pool, paired by round (median (min-max) of the rounds' ratios)")
    for ours in ("framescope", "framescope-main", "framescope-fork", "framescope-spawn"):
        for pool in ("pool-fork", "pool-spawn"):
            pairs = list(zip(runs[ours], runs[pool], strict=True))
            first = spread([a["first_s"] / b["first_s"] for a, b in pairs], digits=3)
            rate = spread([a["rate"] / b["rate"] for a, b in pairs], digits=3)
            running = spread([a["running_rate"] / b["running_rate"] for a, b in pairs], digits=3)
            print(
                f"  {ours} / {pool}: first result {first}x, "
                f"with start-up {rate}x, running {running}x"
            )
    median_first = statistics.median(f["first_s"] for f in runs["framescope"])
    met = median_first <= TARGET_S
    print(
        f"\nframescope's first result: {median_first * 1e3:.0f} ms "
        f"(target <= {TARGET_S * 1e3:.0f} ms): {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

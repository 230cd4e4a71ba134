"""This tree against another revision: pipeline throughput and serial cost, paired rounds.

Each round runs every workload once with the other revision's ``src`` and
once with this tree's, each in a fresh interpreter, in alternating order; the
verdict per workload is the median of the per-round ratios (this tree /
the other), with their range. Throughput is items per second where they
leave the last stage; the serial figure is nanoseconds per item, so a ratio
above 1 there means this tree is slower.

    python benchmarks/revisions.py --before 240f805 --rounds 7

The other revision is checked out into a temporary git worktree (removed at
the end). Exits 1 when a workload is worse than ``--tolerance`` (default 5%)
in the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = r"""
import json, sys, time
from framescope import Pipeline

def ident(x):
    return x

def threaded(queue_size, debug, items):
    pipeline = Pipeline(debug=debug, results_size=0)
    for index in range(4):
        pipeline.add(ident, f"S{index}")
    pipeline.parallelize(queue_size=queue_size)
    start = time.perf_counter()
    for item in range(items):
        pipeline.forward(item)
    pipeline.close()
    pipeline.join(120)
    elapsed = time.perf_counter() - start
    pipeline.cleanup()
    return items / elapsed

def serial(items, stages=10):
    pipeline = Pipeline()
    for index in range(stages):
        pipeline.add(ident, f"S{index}")
    pipeline.serialize()
    forward = pipeline.forward
    start = time.perf_counter_ns()
    for item in range(items):
        forward(item)
    elapsed = time.perf_counter_ns() - start
    pipeline.cleanup()
    return elapsed / items

kind, items = sys.argv[1], int(sys.argv[2])
if kind == "serial":
    print(json.dumps(serial(items)))
else:
    queue_size, debug = kind.split(":")
    print(json.dumps(threaded(int(queue_size), debug == "on", items)))
"""

#: name -> (workload argument, unit, whether higher is better)
WORKLOADS = {
    "threaded, queue size 1": ("1:off", "items/s", True),
    "threaded, queue size 8": ("8:off", "items/s", True),
    "threaded, queue size 8, debugging on": ("8:on", "items/s", True),
    "serial, 10 stages": ("serial", "ns/item", False),
}


def run_once(src: Path, kind: str, items: int) -> float:
    """One workload in a fresh interpreter importing framescope from ``src``."""
    result = subprocess.run(
        [sys.executable, "-c", WORKLOAD, kind, str(items)],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1]))


def compare(before: Path, after: Path, rounds: int, items: int) -> dict[str, list[float]]:
    """Per workload, the per-round ratios of this tree to the other (interleaved)."""
    ratios: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    for round_index in range(rounds):
        for name, (kind, _, _) in WORKLOADS.items():
            order = [(before, "before"), (after, "after")]
            if round_index % 2:
                order.reverse()
            figures = {label: run_once(src, kind, items) for src, label in order}
            ratios[name].append(figures["after"] / figures["before"])
    return ratios


def main() -> int:
    """Run the comparison and print one line per workload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the revision to compare against")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before],
            check=True,
            capture_output=True,
        )
        try:
            ratios = compare(tree / "src", ROOT / "src", args.rounds, args.items)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
    worse = False
    print(f"this tree against {args.before}, {args.rounds} paired rounds, {args.items} items")
    for name, values in ratios.items():
        _, unit, higher_better = WORKLOADS[name]
        median = statistics.median(values)
        change = median - 1 if higher_better else 1 - median
        worse |= change < -args.tolerance
        print(
            f"  {name} ({unit}): after/before median {median:.3f} "
            f"(range {min(values):.3f}-{max(values):.3f})"
        )
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())

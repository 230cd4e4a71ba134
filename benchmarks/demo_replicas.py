"""The demo's replica claim against the gain measured, on a quiet machine and beside a CPU hog.

Run: python benchmarks/demo_replicas.py [--rounds 3] [--seconds 8]

Each round runs the demo with ``--replicas 2`` (``run_demo``: Infer on 1
replica for half of ``--seconds``, then on 2 for the other half, on the same
input) once in each condition, the order alternating from round to round:

- quiet: nothing started beside it (how busy the machine was, from
  ``/proc/stat`` over the run, is printed with it);
- hog: two ``python -c "while True: pass"`` started by this script just
  before the run, killed and reaped right after it (none is left).

Per run: the throughput each phase measured and their ratio (the fact), the
gain the diagnosis of the 2-replica phase claims (the first ``<number>x`` in
its line about the replicas, as printed; 1.0 where it says one replica could
do about as much), and whether it says any cores are idle. Targets: quiet,
the claim within 15% of the measured ratio (median of the rounds); hog, in
every round no claim above the measured ratio + 15% and no idle cores claimed.
"""

from __future__ import annotations

import os

# The demo's stand-in model takes one core per call (as the command sets it up):
# NumPy reads these once, when it first loads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from framescope.demo import DemoReport, run_demo  # noqa: E402

HOGS = 2
TOLERANCE = 0.15
_IDLE = re.compile(r"\bidle\b")
_PARTS = re.compile(r"[;()\n]|\.\s")  # the clauses of the diagnosis's text


@dataclass(frozen=True)
class Run:
    """One demo run: the phases' rates, the claimed gain, any idle cores claimed."""

    one_fps: float
    many_fps: float
    claimed: float | None
    claim_line: str
    idle_claim: str | None
    machine_busy: float | None

    @property
    def measured(self) -> float:
        return self.many_fps / self.one_fps if self.one_fps > 0 else float("nan")


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (None without /proc/stat)."""
    try:
        with open("/proc/stat", "rb") as file:
            values = [int(value) for value in file.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_between(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def claimed_gain(report: DemoReport) -> tuple[float | None, str]:
    """The gain the diagnosis claims for the replicas, and the line it is in."""
    for line in report.claims:
        if "runs on" in line and "replicas" in line:
            found = re.search(r"(\d+(?:\.\d+)?)x", line)
            if found:
                return float(found.group(1)), line
            if "one replica could do about as much" in line:
                return 1.0, line  # the input, not the replicas, sets the pace: no gain
            return None, line
    return None, "(no line about the replicas)"


def idle_claim(report: DemoReport) -> str | None:
    """The diagnosis's words that call cores idle, if any."""
    text = report.diagnosis.report() if report.diagnosis is not None else ""
    for part in _PARTS.split(text):
        if _IDLE.search(part) and "core" in part:
            return " ".join(part.split())
    return None


def demo_run(seconds: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="framescope-bench-") as folder:
        before = machine_ticks()
        report = run_demo(io.StringIO(), seconds, live=False, replicas=2, out_dir=folder)
        busy = busy_between(before, machine_ticks())
    if len(report.phases) != 2:
        raise SystemExit(f"expected two phases, the run had {len(report.phases)}")
    claimed, line = claimed_gain(report)
    one, many = report.phases
    return Run(one.fps, many.fps, claimed, line, idle_claim(report), busy)


def beside_hogs(seconds: float) -> Run:
    """A demo run with ``HOGS`` CPU-bound processes beside it; none is left afterwards."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS)]
    try:
        return demo_run(seconds)
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(10)
        left = [hog.pid for hog in hogs if hog.poll() is None]
        if left:
            raise SystemExit(f"CPU hogs still running: {left}")


def show(name: str, run: Run) -> None:
    claimed = "none" if run.claimed is None else f"{run.claimed:.2f}x"
    busy = "?" if run.machine_busy is None else f"{run.machine_busy:.0%}"
    idle = run.idle_claim or "no"
    print(
        f"  {name:<6} 1 replica {run.one_fps:6.1f}/s, 2 replicas {run.many_fps:6.1f}/s: "
        f"measured {run.measured:.2f}x, claimed {claimed}; machine busy {busy}; "
        f"idle cores claimed: {idle}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs; {args.rounds} rounds of the demo with --replicas 2, "
        f"--seconds {args.seconds:g} ({args.seconds / 2:g} s a phase), conditions alternating\n"
    )
    runs: dict[str, list[Run]] = {"quiet": [], "hog": []}
    conditions = {"quiet": lambda: demo_run(args.seconds), "hog": lambda: beside_hogs(args.seconds)}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}")
        for name in list(conditions) if round_ % 2 == 0 else reversed(list(conditions)):
            runs[name].append(conditions[name]())
            show(name, runs[name][-1])
    print("\nthe diagnosis's line about the replicas, last run of each condition:")
    for name, done in runs.items():
        print(f"  {name}: {done[-1].claim_line}")
    return verdict(runs)


def verdict(runs: dict[str, list[Run]]) -> int:
    failed = False
    quiet = [run.claimed / run.measured - 1 for run in runs["quiet"] if run.claimed is not None]
    if quiet:
        off = statistics.median(quiet)
        ok = abs(off) <= TOLERANCE
        spread = f"{min(quiet):+.0%} to {max(quiet):+.0%}"
        print(
            f"\nquiet: claim against measured, median {off:+.0%} (rounds {spread})  "
            f"within 15% {'ok' if ok else 'MISSED'}"
        )
    else:
        ok = False
        print("\nquiet: the diagnosis claimed no gain: nothing to hold against the measured ratio")
    failed |= not ok
    hog = runs["hog"]
    over = [run for run in hog if run.claimed is not None and run.claimed > run.measured * 1.15]
    idle = [run for run in hog if run.idle_claim is not None]
    worst = max(
        (run.claimed / run.measured - 1 for run in hog if run.claimed is not None), default=0
    )
    print(
        f"hog: claims above measured + 15%: {len(over)} of {len(hog)} (highest claim/measured "
        f"{worst:+.0%})  {'ok' if not over else 'MISSED'}"
    )
    print(f"hog: idle cores claimed: {len(idle)} of {len(hog)}  {'ok' if not idle else 'MISSED'}")
    failed |= bool(over) or bool(idle)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

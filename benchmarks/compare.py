"""Does ``framescope compare`` hold on a noisy shared machine? A/A and A/B, measured in one run.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/compare.py [--seconds 30] [--rounds 10]
     [--stretch 3] [--keep DIR]

Each round records three runs of the same pipeline, each ``--seconds`` long
(``framescope.record``, 1 s intervals), in a rotating order: A, A' (the same
code again) and B (its Detect stage does 10% more work); with ``--stretch
S`` the three take turns, S seconds each, every turn appended to its run's
file (``record(..., append=True)``), until each has its ``--seconds``. The pipeline: 30
frames a second into Decode (about 2 ms of NumPy work), Detect (about 8 ms)
and Track (about 3 ms), each on its own thread. Then ``compare(A, A')`` must
report no change (an A/A false alarm is any part called slower or faster)
and ``compare(A, B)`` must call Detect slower and no other stage. Targets:
at most 1 A/A false alarm in 10, B detected in at least 9 of 10 naming
Detect alone. Printed: each comparison's verdicts (``compare``'s defaults: a
stage judged by its on-CPU time per item), Detect's p50 and on-CPU changes
with their intervals, then the counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from framescope import Pipeline, compare, record

MATRIX = np.random.default_rng(0).random((96, 96))


def worker(multiplies: int) -> object:
    """A stage of ``multiplies`` matrix products: work, not time (a busy machine slows it)."""

    product = np.empty_like(MATRIX)

    def stage(item: object) -> object:
        for _ in range(multiplies):
            np.dot(MATRIX, MATRIX, out=product)
        return item

    return stage


def calibrate(milliseconds: float) -> int:
    """How many products take about ``milliseconds`` here."""
    stage = worker(50)
    start = time.perf_counter()
    for _ in range(20):
        stage(None)
    per_product = (time.perf_counter() - start) / (20 * 50)
    return max(1, round(milliseconds / 1e3 / per_product))


def one_run(
    path: Path, work: dict[str, int], seconds: float, label: str, *, append: bool = False
) -> None:
    pipeline = Pipeline(name="Cam")
    for name, multiplies in work.items():
        pipeline.add(worker(multiplies), name)
    pipeline.parallelize(queue_size=8)
    stop = threading.Event()

    def drain() -> None:
        for _ in pipeline.results(timeout=None):
            if stop.is_set():
                return

    reader = threading.Thread(target=drain, daemon=True)
    with record(pipeline, path, interval=1.0, label=label, append=append):
        reader.start()
        start = time.perf_counter()
        frame = 0
        while time.perf_counter() - start < seconds:
            pipeline.forward(frame)
            frame += 1
            time.sleep(max(0.0, start + frame / 30 - time.perf_counter()))
        pipeline.close()
        pipeline.join(10)
    stop.set()
    pipeline.cleanup()


def record_round(
    paths: dict[str, Path],
    runs: dict[str, dict[str, int]],
    order: list[str],
    seconds: float,
    *,
    stretch: float | None,
    round_number: int,
) -> None:
    """The round's runs whole one after the other, or in turns of ``stretch`` seconds."""
    if stretch is None:
        for name in order:
            one_run(paths[name], runs[name], seconds, f"{name} round {round_number}")
        return
    turns = max(1, round(seconds / stretch))
    for turn in range(turns):
        shift = turn % len(order)  # who goes first turns round too
        for name in order[shift:] + order[:shift]:
            label = f"{name} round {round_number}"
            one_run(paths[name], runs[name], seconds / turns, label, append=True)


def positive(text: str) -> float:
    """A number of seconds above 0 (argparse's type)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _shown(comparison: object) -> str:
    """Detect's p50 change and its work per item's (on-CPU time, its verdict's figure)."""
    changes = comparison.part("Cam__Detect").changes  # type: ignore[attr-defined]
    shown = []
    for name in ("p50", "cpu"):
        if name in changes:
            c = changes[name]
            shown.append(f"{name} {c.change * 100:+.1f}% [{c.low * 100:+.1f}, {c.high * 100:+.1f}]")
    return ", ".join(shown)


def verdicts(comparison: object) -> dict[str, str]:
    return {part.key: part.verdict for part in comparison.parts}  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="each run")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="write the runs into this folder (kept)")
    parser.add_argument(
        "--stretch",
        type=positive,
        help="record the three runs of a round in turns, this many seconds each, appended "
        "to their files (default: each run whole, one after the other)",
    )
    args = parser.parse_args()
    base = {"Decode": calibrate(2.0), "Detect": calibrate(8.0), "Track": calibrate(3.0)}
    slower = dict(base, Detect=round(base["Detect"] * 1.1))
    print(f"work (matrix products): A {base}, B {slower}; {args.seconds:g} s runs at 30 fps")
    false_alarms = detected = named_alone = 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for round_number in range(args.rounds):
            runs = {"A": base, "A2": base, "B": slower}
            order = list(runs)[round_number % 3 :] + list(runs)[: round_number % 3]
            paths = {name: Path(folder) / f"{round_number}-{name}.fsrun" for name in runs}
            for path in paths.values():
                path.unlink(missing_ok=True)  # appended to in turns: each round starts afresh
            record_round(
                paths, runs, order, args.seconds, stretch=args.stretch, round_number=round_number
            )
            same = compare(paths["A"], paths["A2"])
            changed = compare(paths["A"], paths["B"])
            aa, ab = verdicts(same), verdicts(changed)
            alarm = any(v != "no change" for v in aa.values())
            hit = ab.get("Cam__Detect") == "slower"
            alone = hit and all(
                v == "no change"
                for k, v in ab.items()
                if k.startswith("Cam__") and k != "Cam__Detect"
            )
            false_alarms += alarm
            detected += hit
            named_alone += alone
            print(
                f"round {round_number + 1} ({' '.join(order)}): "
                f"A/A {'ALARM ' if alarm else ''}{aa}, Detect {_shown(same)}; "
                f"A/B {ab}, Detect {_shown(changed)}",
                flush=True,
            )
    rounds = args.rounds
    aa_met = "met" if false_alarms <= rounds // 10 else "MISSED"
    ab_met = "met" if named_alone >= rounds - rounds // 10 else "MISSED"
    print(
        f"A/A false alarms: {false_alarms} of {rounds} (target <= {rounds // 10}: {aa_met}); "
        f"A/B Detect slower: {detected} of {rounds}, and no other stage: {named_alone} of "
        f"{rounds} (target >= {rounds - rounds // 10}: {ab_met})"
    )


if __name__ == "__main__":
    main()

"""Cold start: what importing framescope adds to a fresh interpreter.

Run: python benchmarks/coldstart.py [--rounds 41] [--importtime-rounds 15]

A service that restarts pays its imports each time. Each round starts one
fresh interpreter per command below, in a shuffled order (so a busy moment of
the machine falls on all of them alike), and times it from start to exit;
the medians over the rounds are compared with their baselines:

- ``from framescope import Pipeline`` against ``python -c pass``;
- ``import framescope.video`` against ``import av, numpy`` (the video package
  needs both, so only what it adds on top counts).

``python -X importtime`` gives a second reading that start-up noise does not
touch: the time the interpreter spent importing what the statement loaded
(``framescope.video`` imported after ``av`` and ``numpy``, so what they share
counts as theirs), the median over ``--importtime-rounds`` runs.

The children read bytecode, as an installed package does (pip compiles it
at install): they share a bytecode cache of their own in a temporary folder
(``PYTHONPYCACHEPREFIX``, written by the warm-up runs), so the figures hold
where ``PYTHONDONTWRITEBYTECODE`` is set, and the source tree gets no
``__pycache__``.

Targets: ``from framescope import Pipeline`` adds <= 80 ms, ``import
framescope.video`` adds <= 50 ms to ``import av, numpy``, in both readings.
The script exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "pass": "pass",
    "pipeline": "from framescope import Pipeline",
    "av+numpy": "import av, numpy",
    "video": "import framescope.video",
}
"""The statements timed, each in a fresh interpreter."""

TARGETS_MS = {"pipeline": ("pass", 80.0), "video": ("av+numpy", 50.0)}
"""Each measured statement: its baseline, and how much it may add to it (ms)."""

IMPORTTIME = {
    "pipeline": ("from framescope import Pipeline", ()),
    "video": ("import av, numpy; import framescope.video", ("av", "numpy")),
}
"""For -X importtime: the statement, and the top-level imports that are the baseline's."""


def child_env(pycache: str) -> dict[str, str]:
    """The environment for the children: the framescope this script would import, compiled."""
    spec = importlib.util.find_spec("framescope")
    if spec is None or spec.origin is None:
        raise SystemExit("framescope is not importable: run with PYTHONPATH=src")
    root = str(Path(spec.origin).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def wall_ms(statement: str, env: dict[str, str]) -> float:
    """Milliseconds from starting a fresh interpreter that runs ``statement`` to its exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], env=env, check=True)
    return (time.perf_counter() - start) * 1e3


def wall_medians(rounds: int, env: dict[str, str]) -> dict[str, float]:
    """Each command's median wall time over ``rounds`` shuffled, interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    names = list(COMMANDS)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            samples[name].append(wall_ms(COMMANDS[name], env))
    return {name: statistics.median(values) for name, values in samples.items()}


def imported_ms(statement: str, baseline: tuple[str, ...], env: dict[str, str]) -> float:
    """Milliseconds ``-X importtime`` counts for what ``statement`` imported, less ``baseline``.

    The top-level imports after ``site`` are the statement's; each one's
    cumulative time includes everything it loaded.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    total_us, after_site = 0, False
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith("  ") or not cumulative.strip().isdigit():
            continue  # nested under a top-level import, or the header
        name = name.strip()
        if after_site and name not in baseline:
            total_us += int(cumulative)
        after_site = after_site or name == "site"
    return total_us / 1e3


def main() -> int:
    """Measure, print the figures and the verdict; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41, help="interleaved wall-time rounds")
    parser.add_argument("--importtime-rounds", type=int, default=15, help="-X importtime runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldstart-pycache-") as pycache:
        return measure(args.rounds, args.importtime_rounds, child_env(pycache))


def measure(rounds: int, importtime_rounds: int, env: dict[str, str]) -> int:
    """Warm up, measure, print the figures and the verdict; 1 when a target is missed."""
    for statement in COMMANDS.values():  # compile the bytecode, warm the file cache
        wall_ms(statement, env)
    medians = wall_medians(rounds, env)
    print(f"fresh interpreter, median of {rounds} interleaved rounds (wall time):")
    for name, statement in COMMANDS.items():
        print(f"  {statement:<34} {medians[name]:8.1f} ms")
    missed = []
    print("added by framescope:")
    for name, (baseline, target) in TARGETS_MS.items():
        added = medians[name] - medians[baseline]
        ratio = medians[name] / medians[baseline]
        verdict = "ok" if added <= target else "MISSED"
        print(
            f"  {COMMANDS[name]:<34} +{added:6.1f} ms over {COMMANDS[baseline]!r} "
            f"({ratio:.2f}x; target <= +{target:.0f} ms) {verdict}"
        )
        if added > target:
            missed.append(f"{name} (wall)")
    print(f"-X importtime, median of {importtime_rounds} runs:")
    for name, (statement, baseline_names) in IMPORTTIME.items():
        runs = [imported_ms(statement, baseline_names, env) for _ in range(importtime_rounds)]
        spent = statistics.median(runs)
        target = TARGETS_MS[name][1]
        verdict = "ok" if spent <= target else "MISSED"
        print(
            f"  {COMMANDS[name]:<34} {spent:7.1f} ms importing (target <= {target:.0f}) {verdict}"
        )
        if spent > target:
            missed.append(f"{name} (importtime)")
    if missed:
        print("targets missed: " + ", ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

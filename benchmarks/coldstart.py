"""Cold start: what importing framescope adds to a fresh interpreter.

Run: python benchmarks/coldstart.py [--rounds 41] [--importtime-rounds 15] [--before SRC]

A service that restarts pays its imports each time. Each round starts one
fresh interpreter per command below, in a shuffled order (so a busy moment of
the machine falls on all of them alike), and times it from start to exit
(wall time, and the CPU time the child used, user + sys, which other load on
the machine inflates less); the medians over the rounds are compared with
their baselines:

- ``from framescope import Pipeline`` against ``python -c pass``;
- ``import framescope.video`` against ``import av, numpy`` (the video package
  needs both, so only what it adds on top counts).

``python -X importtime`` gives a third reading that start-up noise does not
touch: the time the interpreter spent importing what the statement loaded
(``framescope.video`` imported after ``av`` and ``numpy``, so what they share
counts as theirs), the median over ``--importtime-rounds`` runs.

``--before SRC`` also times the framescope statements importing the package
from another source folder (an older checkout's ``src``) in the same rounds,
and prints what each adds against what the older one adds.

The children read bytecode, as an installed package does (pip compiles it
at install): they share a bytecode cache of their own in a temporary folder
(``PYTHONPYCACHEPREFIX``, written by the warm-up runs), so the figures hold
where ``PYTHONDONTWRITEBYTECODE`` is set, and the source tree gets no
``__pycache__``. The load average before and after is printed: on a busy
machine every wall figure grows.

Targets: ``from framescope import Pipeline`` adds <= 80 ms, ``import
framescope.video`` adds <= 50 ms to ``import av, numpy``, in wall time and
in import time. The script exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
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


def child_env(pycache: str, source: str | None = None) -> dict[str, str]:
    """The children's environment: framescope from ``source`` (default: this one's), compiled."""
    if source is None:
        spec = importlib.util.find_spec("framescope")
        if spec is None or spec.origin is None:
            raise SystemExit("framescope is not importable: run with PYTHONPATH=src")
        source = str(Path(spec.origin).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def run_ms(statement: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) milliseconds of a fresh interpreter that runs ``statement``."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], env=env, check=True)
    wall = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)
    return wall * 1e3, cpu * 1e3


Runs = dict[str, tuple[str, dict[str, str]]]
"""Name -> (statement, environment) of each interpreter timed."""


def medians(rounds: int, runs: Runs) -> dict[str, tuple[float, float]]:
    """Each run's median wall and CPU ms over ``rounds`` shuffled, interleaved rounds."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            samples[name].append(run_ms(*runs[name]))
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


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
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds")
    parser.add_argument("--importtime-rounds", type=int, default=15, help="-X importtime runs")
    parser.add_argument("--before", help="another framescope source folder to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldstart-pycache-") as pycache:
        env = child_env(pycache)
        runs: Runs = {name: (statement, env) for name, statement in COMMANDS.items()}
        if args.before:
            with tempfile.TemporaryDirectory(prefix="coldstart-before-") as other:
                before = child_env(other, str(Path(args.before).resolve()))
                runs |= {f"{name} before": (COMMANDS[name], before) for name in TARGETS_MS}
                return measure(args.rounds, args.importtime_rounds, runs)
        return measure(args.rounds, args.importtime_rounds, runs)


def measure(rounds: int, importtime_rounds: int, runs: Runs) -> int:
    """Warm up, measure, print the figures and the verdict; 1 when a target is missed."""
    for statement, env in runs.values():  # compile the bytecode, warm the file cache
        run_ms(statement, env)
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    found = medians(rounds, runs)
    print(f"fresh interpreter, median of {rounds} interleaved rounds: wall ms, CPU ms")
    for name, (statement, _) in runs.items():
        label = statement + (" (before)" if name.endswith(" before") else "")
        print(f"  {label:<43} {found[name][0]:7.1f} {found[name][1]:7.1f}")
    missed = added_by_framescope(found)
    print(f"-X importtime, median of {importtime_rounds} runs:")
    env = runs["pipeline"][1]
    for name, (statement, baseline_names) in IMPORTTIME.items():
        spent = statistics.median(
            imported_ms(statement, baseline_names, env) for _ in range(importtime_rounds)
        )
        target = TARGETS_MS[name][1]
        verdict = "ok" if spent <= target else "MISSED"
        print(
            f"  {COMMANDS[name]:<34} {spent:6.1f} ms importing (target <= {target:.0f}) {verdict}"
        )
        if spent > target:
            missed.append(f"{name} (importtime)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if missed:
        print("targets missed: " + ", ".join(missed))
        return 1
    print("all targets met")
    return 0


def added_by_framescope(found: dict[str, tuple[float, float]]) -> list[str]:
    """Print what each statement adds to its baseline (and the older one's); the targets missed."""
    missed = []
    print("added by framescope (wall; CPU):")
    for name, (baseline, target) in TARGETS_MS.items():
        wall = found[name][0] - found[baseline][0]
        cpu = found[name][1] - found[baseline][1]
        verdict = "ok" if wall <= target else "MISSED"
        print(
            f"  {COMMANDS[name]:<34} {wall:+7.1f} ms ({found[name][0] / found[baseline][0]:.2f}x "
            f"{COMMANDS[baseline]!r}); CPU {cpu:+7.1f} ms; target <= +{target:.0f} ms {verdict}"
        )
        if wall > target:
            missed.append(f"{name} (wall)")
        if f"{name} before" in found:
            old_wall = found[f"{name} before"][0] - found[baseline][0]
            old_cpu = found[f"{name} before"][1] - found[baseline][1]
            print(
                f"    before: {old_wall:+7.1f} ms; CPU {old_cpu:+7.1f} ms -> now "
                f"{share(wall, old_wall)} wall, {share(cpu, old_cpu)} CPU of what it added"
            )
    return missed


def share(now: float, before: float) -> str:
    """``now`` as a multiple of ``before``; unknown where the older tree added nothing."""
    return f"{now / before:.2f}x" if before > 0 else "unknown (before added nothing measurable)"


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of a pipeline whose last stage is its output and whose results nobody reads.

Run: python benchmarks/memory.py [--frames 1300] [--width 1280] [--height 720] [--no-old]

Each configuration runs in a fresh child process: ``--frames`` newly made
H x W x 3 uint8 frames go through a threaded two-stage pipeline (a stage that
brightens each frame into a new array, and a sink that "writes" it: it folds
a checksum of every frame into a running total) fed by ``start_loop(0)``,
then ``close()`` / ``join()``; nobody reads ``results()``. The child reports
its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``),
its RSS before the pipeline started (imports, one frame), and the pipeline's
counters, which must account for every frame. Configurations: the defaults
(``results_size=1024``, ``results_bytes=256 MiB``), ``results_size=0`` (keep no
results), and, unless ``--no-old``, ``results_bytes=None`` (bounded by the
count alone, as before the bound in bytes).
Target: the defaults stay under 400 MiB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from typing import Any

CONFIGS: dict[str, dict[str, Any]] = {
    "default (results_size=1024, results_bytes=256 MiB)": {},
    "results_size=0 (no results kept)": {"results_size": 0},
    "results_bytes=None (count bound only, as before)": {"results_bytes": None},
}
TARGET_MIB = 400


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def child(options: dict[str, Any], frames: int, width: int, height: int) -> dict[str, Any]:
    """Run the pipeline in this process; return its figures."""
    import numpy as np  # only the child imports what it measures

    from framescope import Pipeline

    checksum = 0

    def make() -> Any:
        made = 0
        while made < frames:
            yield np.full((height, width, 3), made % 251, np.uint8)
            made += 1

    def brighten(frame: Any) -> Any:
        return np.add(frame, 1, dtype=np.uint8)

    def sink(frame: Any) -> Any:
        nonlocal checksum
        checksum += int(frame[::64, ::64].sum())
        return frame

    np.full((height, width, 3), 0, np.uint8).sum()  # numpy's pages in the baseline
    baseline = _rss_now_mib()
    pipeline = Pipeline(input_generator=make(), **options)
    pipeline.add(brighten, "Brighten").add(sink, "Sink").parallelize(queue_size=2)
    pipeline.start_loop(0)
    if not pipeline.join(600):
        raise AssertionError("the pipeline did not finish within 600 s")
    counts = pipeline.counters()
    held = counts["results_held_bytes"]
    pipeline.cleanup()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    accounted = counts["completed"] + counts["failed"] + counts["dropped_oldest"]
    if counts["forwarded"] != frames or accounted + counts["discarded"] != frames:
        raise AssertionError(f"frames not accounted for: {counts}")
    return {
        "peak_mib": peak,
        "baseline_mib": baseline,
        "held_mib": held / 2**20,
        "counters": counts,
        "checksum": checksum,
    }


def measure(name: str, frames: int, width: int, height: int) -> dict[str, Any]:
    """Run one configuration in a fresh child process; return what it reported."""
    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        f"--frames={frames}",
        f"--width={width}",
        f"--height={height}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{name}: the child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1300)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--no-old", action="store_true", help="skip results_bytes=None")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        figures = child(CONFIGS[args.child], args.frames, args.width, args.height)
        print(json.dumps(figures))
        return 0
    frame_mib = args.width * args.height * 3 / 2**20
    print(
        f"{args.frames:,} fresh {args.width}x{args.height} frames ({frame_mib:.2f} MiB each) "
        "through Brighten -> Sink, threaded; nobody reads the results"
    )
    ok = True
    for index, name in enumerate(CONFIGS):
        if args.no_old and CONFIGS[name].get("results_bytes", 0) is None:
            continue
        got = measure(name, args.frames, args.width, args.height)
        counts = got["counters"]
        line = (
            f"  {name:<52} peak RSS {got['peak_mib']:7.0f} MiB (before start "
            f"{got['baseline_mib']:.0f} MiB); held at the end {got['held_mib']:.0f} MiB; "
            f"completed {counts['completed']}, results_dropped {counts['results_dropped']}, "
            f"results_not_kept {counts['results_not_kept']}"
        )
        if index == 0:
            met = got["peak_mib"] < TARGET_MIB
            ok = ok and met
            line += f"  (< {TARGET_MIB} MiB {'ok' if met else 'MISSED'})"
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""What recording a run costs the frame loop, measured in one run.

Run: python benchmarks/record.py [--seconds 4] [--runs 9]

A 4-stage threaded pipeline of 640x480 frames (each stage touches the
image with NumPy) runs as fast as it can for ``--seconds``, alternately
recorded (``framescope.record``, one interval a second) and not, the order
turning round each pair. Printed: the throughput with the recording against
without (median of the pairs; target: at least 0.99), the recorder's own
time per second (every ``take()``: a snapshot, the interval's figures and
the compressed write, timed), and the file's size per hour of run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from framescope import Pipeline
from framescope.runs.recorder import Recording


def work(frame: Any) -> Any:
    np.multiply(frame[::8, ::8], 1, out=frame[::8, ::8])  # touch the image, as a stage would
    return frame


class TimedRecording(Recording):
    """A recording that adds up the time of each interval it takes."""

    spent = 0.0
    takes = 0

    def take(self) -> bool:
        start = time.perf_counter()
        try:
            return super().take()
        finally:
            self.spent += time.perf_counter() - start
            self.takes += 1


def one_run(seconds: float, path: Path | None) -> tuple[float, float, int]:
    """Items a second, the recorder's seconds a second, and the file's bytes."""
    pipeline = Pipeline(name="Bench")
    for name in ("Decode", "Detect", "Track", "Draw"):
        pipeline.add(work, name)
    pipeline.parallelize(queue_size=4, input_timeout=None)
    recording = None if path is None else TimedRecording(pipeline, path, interval=1.0)
    frame = np.zeros((480, 640, 3), np.uint8)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            pipeline.forward(frame)

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.5)
    done, start = pipeline.counters()["completed"], time.perf_counter()
    spent = 0.0 if recording is None else recording.spent
    time.sleep(seconds)
    done = pipeline.counters()["completed"] - done
    elapsed = time.perf_counter() - start
    spent = 0.0 if recording is None else recording.spent - spent
    stop.set()
    feeder.join(10)
    pipeline.cleanup()
    if recording is not None:
        recording.close()
    size = 0 if path is None else path.stat().st_size
    return done / elapsed, spent / elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    ratios, costs, sizes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            path = Path(folder) / f"run{run}.fsrun"
            results = {}
            for recorded in (True, False) if run % 2 == 0 else (False, True):
                results[recorded] = one_run(args.seconds, path if recorded else None)
            ratio = results[True][0] / results[False][0]
            ratios.append(ratio)
            costs.append(results[True][1])
            sizes.append(results[True][2] / (args.seconds + 1.0))
            print(
                f"pair {run + 1}: recorded {results[True][0]:,.0f} items/s, "
                f"not {results[False][0]:,.0f}: {ratio:.3f}x; recorder "
                f"{results[True][1] * 1e3:.2f} ms/s",
                flush=True,
            )
    ratio = statistics.median(ratios)
    print(
        f"recorded / not: {ratio:.3f}x (pairs {min(ratios):.3f}-{max(ratios):.3f}; target >= "
        f"0.99: {'met' if ratio >= 0.99 else 'MISSED'}); the recorder's own time "
        f"{statistics.median(costs) * 1e3:.2f} ms a second ({statistics.median(costs) * 100:.3f}% "
        f"of a core); the file grows about {statistics.median(sizes) * 3600 / 1e6:.1f} MB an hour"
    )


if __name__ == "__main__":
    main()

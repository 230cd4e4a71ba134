"""The ``framescope timepiece-demo``: a simulated frame loop timed with the timepiece tools.

Each frame is "decoded", "inferred" and "drawn" (simulated work of random
length); a :class:`~framescope.timepiece.Ticker` measures the frame period, a
:class:`~framescope.timepiece.StopWatch` tree the stages, and a
:class:`~framescope.timepiece.TickerTachometer` reports frame statistics
periodically.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable
from typing import TextIO

from framescope._validation import check_number
from framescope.clock import SYSTEM_CLOCK, Clock
from framescope.timepiece import StopWatch, Ticker, TickerTachometer, TimerSnapshot

__all__ = ["run_timepiece_demo"]


def run_timepiece_demo(
    out: TextIO,
    seconds: float = 3.0,
    fps: float = 25.0,
    report_interval: float = 1.0,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
    seed: int | None = None,
) -> int:
    """Run the simulated loop for ``seconds`` and write what it measured to ``out``.

    ``clock`` and ``sleep`` let a test run the demo on a fake clock. Returns the
    number of frames processed.
    """
    for name, value in (("seconds", seconds), ("fps", fps), ("report_interval", report_interval)):
        check_number(value, name, positive=True)
    rng = random.Random(seed)
    frame_budget = 1.0 / fps

    def report(timestamp: datetime.datetime, timer: TimerSnapshot) -> None:
        out.write(
            f"[{timestamp.astimezone().isoformat(timespec='milliseconds')}] "
            f"frames={timer.len()} fps={timer.freq():.1f} "
            f"period mean={timer.mean() * 1000:.1f}ms p90={timer.percentile(90) * 1000:.1f}ms "
            f"max={timer.max() * 1000:.1f}ms\n"
        )

    ticker = Ticker(max_intervals=10, clock=clock)
    tachometer = TickerTachometer(report, stats_interval=report_interval, clock=clock)
    frame = StopWatch("frame", max_intervals=100, clock=clock)
    decode, infer, draw = frame.child("decode"), frame.child("infer"), frame.child("draw")
    infer_model = infer.child("model")

    out.write(f"framescope timepiece-demo: {seconds:g} s of a simulated {fps:g} fps loop\n")
    deadline = clock.monotonic_ns() + round(seconds * 1e9)
    frames = 0
    while clock.monotonic_ns() < deadline:
        ticker.tick()
        tachometer.tick()
        with frame:
            with decode:
                sleep(frame_budget * rng.uniform(0.05, 0.15))
            with infer:
                sleep(frame_budget * rng.uniform(0.02, 0.05))
                with infer_model:
                    sleep(frame_budget * rng.uniform(0.3, 0.6))
            with draw:
                sleep(frame_budget * rng.uniform(0.05, 0.1))
        frames += 1
        spent = frame.intervals[-1]
        if spent < frame_budget:
            sleep(frame_budget - spent)
    tachometer.flush()
    out.write(f"\nframes: {frames}\nframe period: {ticker!r}\n\nstage times:\n{frame!r}\n")
    summary = frame.statistics().summary()
    out.write(
        f"\nframe time: mean={summary.recent_mean * 1000:.2f}ms "
        f"median={summary.median * 1000:.2f}ms p90={summary.p90 * 1000:.2f}ms "
        f"p99={summary.p99 * 1000:.2f}ms stddev={summary.stddev * 1000:.2f}ms\n"
    )
    return frames

"""framescope: build, time, watch and ship real-time video and ML-inference pipelines.

The core (clocks, statistics, timepiece) needs only the standard library; heavier
features live behind optional extras and are imported lazily.
"""

import logging

from framescope._version import __version__
from framescope.clock import Clock, FakeClock, SystemClock
from framescope.pipeline import Pipeline, Stage
from framescope.stats import RollingStats, StatsSnapshot, Summary
from framescope.timepiece import StopWatch, Ticker

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Clock",
    "FakeClock",
    "Pipeline",
    "RollingStats",
    "Stage",
    "StatsSnapshot",
    "StopWatch",
    "Summary",
    "SystemClock",
    "Ticker",
    "__version__",
]

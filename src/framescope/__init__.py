"""framescope: build, time, watch and ship real-time video and ML-inference pipelines.

The core (clocks, statistics, timepiece) needs only the standard library; heavier
features live behind optional extras and are imported lazily. ``Pipeline`` and
``Stage`` load the pipeline package on first use, so importing a part that does
not need it (``framescope.autoidentity``, ``framescope.modeltiming``) does not
load it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from framescope._lazy import lazy_names
from framescope._version import __version__
from framescope.clock import Clock, FakeClock, SystemClock
from framescope.stats import RollingStats, StatsSnapshot, Summary
from framescope.timepiece import StopWatch, Ticker

if TYPE_CHECKING:
    from framescope.pipeline import Pipeline, PipelineSnapshot, Stage
    from framescope.runs import compare, load_run, record

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "Pipeline": "framescope.pipeline",
    "PipelineSnapshot": "framescope.pipeline",
    "Stage": "framescope.pipeline",
    "compare": "framescope.runs",
    "load_run": "framescope.runs",
    "record": "framescope.runs",
}

__all__ = [
    "Clock",
    "FakeClock",
    "Pipeline",
    "PipelineSnapshot",
    "RollingStats",
    "Stage",
    "StatsSnapshot",
    "StopWatch",
    "Summary",
    "SystemClock",
    "Ticker",
    "__version__",
    "compare",
    "load_run",
    "record",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

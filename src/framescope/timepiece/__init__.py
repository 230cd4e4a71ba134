"""Timing and scheduling for frame loops: the Backpack ``timepiece`` API, corrected.

- :class:`Ticker` measures the time between events, :class:`StopWatch` the time
  spent inside blocks (as a tree of named watches).
- :class:`AtSchedule`, :class:`IntervalSchedule`, :class:`OrdinalSchedule` and
  :class:`AlarmClock` fire callbacks from the caller's own ``tick()``.
- :class:`TickerTachometer`, :class:`StopWatchTachometer` and :class:`Tachometer`
  report timing statistics periodically.

Every class takes ``clock=`` (see :mod:`framescope.clock`) so tests can drive time.
"""

from framescope.timepiece.schedules import (
    AlarmClock,
    AtSchedule,
    Callback,
    IntervalSchedule,
    OrdinalSchedule,
    Schedule,
)
from framescope.timepiece.tachometers import (
    BaseTachometer,
    StopWatchTachometer,
    Tachometer,
    TickerTachometer,
)
from framescope.timepiece.timers import (
    BaseTimer,
    CallableName,
    Intervals,
    StopWatch,
    Ticker,
    TimerSnapshot,
)
from framescope.timepiece.wallclock import local_dt, local_now, panorama_timestamp_to_datetime

__all__ = [
    "AlarmClock",
    "AtSchedule",
    "BaseTachometer",
    "BaseTimer",
    "CallableName",
    "Callback",
    "IntervalSchedule",
    "Intervals",
    "OrdinalSchedule",
    "Schedule",
    "StopWatch",
    "StopWatchTachometer",
    "Tachometer",
    "Ticker",
    "TickerTachometer",
    "TimerSnapshot",
    "local_dt",
    "local_now",
    "panorama_timestamp_to_datetime",
]

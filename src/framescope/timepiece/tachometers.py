"""Tachometers: a timer plus a reporting schedule.

A tachometer measures a recurring event and, once per ``stats_interval``, calls
``stats_callback(timestamp, timer)`` with the statistics of the period that just
ended. ``timer`` is an immutable :class:`~framescope.timepiece.TimerSnapshot`,
so the callback may run on an executor thread while measuring goes on, and every
sample is reported exactly once: ``len()``, ``sum()``, ``min()`` and ``max()``
are exact over the period at any event rate; ``median()``, ``percentile()`` and
``stddev()`` use the most recent ``max_intervals`` samples of the period.

Reports are taken on the measuring thread, in ``tick()`` (or on leaving the
block), so no thread of its own runs. The reporting grid starts when the
tachometer is created; a period without samples sends no report.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from framescope.clock import Clock, to_nanoseconds
from framescope.timepiece.schedules import NOT_FIRED, Callback, IntervalSchedule
from framescope.timepiece.timers import (
    BaseTimer,
    Intervals,
    StopWatch,
    Ticker,
    TimerSnapshot,
    timed_by,
)

__all__ = ["BaseTachometer", "StopWatchTachometer", "Tachometer", "TickerTachometer"]

_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_STATS_INTERVAL = datetime.timedelta(seconds=60)
DEFAULT_TACHOMETER_INTERVALS = 10_000


class BaseTachometer:
    """Common part of the tachometers; use a subclass.

    Args:
        timer: the timer that collects the samples.
        stats_callback: ``stats_callback(timestamp, timer)``; ``timestamp`` is the
            aware UTC time of the report, ``timer`` a TimerSnapshot of the period.
        stats_interval: reporting period, a timedelta or seconds (default 60 s).
        executor: run ``stats_callback`` on this executor instead of inline.
    """

    def __init__(
        self,
        timer: BaseTimer,
        stats_callback: Callable[[datetime.datetime, TimerSnapshot], Any],
        stats_interval: datetime.timedelta | float = DEFAULT_STATS_INTERVAL,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if not isinstance(timer, BaseTimer):
            raise TypeError(f"timer must be a BaseTimer, got {type(timer).__name__}")
        if not callable(stats_callback):
            raise TypeError(f"stats_callback must be callable, got {type(stats_callback).__name__}")
        if to_nanoseconds(stats_interval, "stats_interval") <= 0:
            raise ValueError(f"stats_interval must be positive, got {stats_interval!r}")
        self.timer = timer
        self.stats_callback = stats_callback
        self.callback = Callback(stats_callback, executor=executor)
        self.schedule = IntervalSchedule(stats_interval, self._report, clock=timer.clock)
        self._now = timer.clock.monotonic_ns
        self.reports = 0
        # Anchor the reporting grid now: the first report covers one whole period.
        self.schedule.tick_at(self._now())

    @property
    def executor(self) -> concurrent.futures.Executor | None:
        """The executor that runs ``stats_callback``, if any."""
        return self.callback.executor

    def _take_period(self) -> TimerSnapshot | None:
        stats = self.timer.statistics(reset=True)
        if not stats.count:
            return None
        period = TimerSnapshot.of_all(stats, type(self.timer).__name__, self.timer._name())
        # Backpack handed its live timer, whose ``intervals`` was a deque: callbacks
        # call ``intervals.copy()`` and read ``intervals.maxlen``.
        kept = Intervals(period.intervals, self.timer.max_intervals)
        return dataclasses.replace(period, intervals=kept)

    EXPECTED_MAX_FPS: int = 100
    """Backpack sized its timers by this; framescope counts every event exactly regardless."""

    def _report(self) -> tuple[bool, Any]:
        """Report the period now ending: ``(True, result)``; ``(False, None)`` if it was empty."""
        period = self._take_period()
        if period is None:
            return NOT_FIRED
        self.reports += 1
        return True, self.callback(self.timer.clock.wall(), period)

    def flush(self) -> tuple[bool, Any]:
        """Report the samples of the current, unfinished period now (e.g. at shutdown).

        Returns ``(True, result)`` when a report was sent, ``(False, None)`` when
        there was nothing to report.
        """
        period = self._take_period()
        if period is None:
            return NOT_FIRED
        self.reports += 1
        return True, self.callback(self.timer.clock.wall(), period)


class TickerTachometer(BaseTachometer):
    """A :class:`~framescope.timepiece.Ticker` that reports its statistics periodically.

    Call :meth:`tick` once per event (e.g. per frame)::

        tach = TickerTachometer(
            stats_callback=lambda ts, t: print(ts, t.min(), t.max(), t.sum(), t.len()),
            stats_interval=datetime.timedelta(seconds=2),
            executor=ThreadPoolExecutor(),
        )
        while True:
            tach.tick()
            process_frame()

    Args:
        stats_callback: ``stats_callback(timestamp, timer)``, see the module docs.
        stats_interval: reporting period, a timedelta or seconds (default 60 s).
        executor: run ``stats_callback`` on this executor instead of inline.
        max_intervals: samples kept per period for percentiles (counts stay exact).
        clock: where to read the time; the system clock by default.
    """

    def __init__(
        self,
        stats_callback: Callable[[datetime.datetime, TimerSnapshot], Any],
        stats_interval: datetime.timedelta | float = DEFAULT_STATS_INTERVAL,
        executor: concurrent.futures.Executor | None = None,
        *,
        max_intervals: int = DEFAULT_TACHOMETER_INTERVALS,
        clock: Clock | None = None,
    ) -> None:
        self.ticker = Ticker(max_intervals=max_intervals, clock=clock)
        super().__init__(self.ticker, stats_callback, stats_interval, executor)

    def tick(self) -> tuple[bool, Any]:
        """Register an event; returns what Backpack's does: ``(schedule_fired, report)``.

        ``report`` is ``(stats_sent, callback_result)`` when the period ended
        on this tick (``stats_sent`` False when it had no samples), else the
        result is ``(False, None)``: ``fired, (sent, result) = tach.tick()``
        once ``fired``. With an executor, ``callback_result`` is the Future.
        """
        now = self._now()
        self.ticker.tick_at(now)
        return self.schedule.tick_at(now)


class StopWatchTachometer(BaseTachometer):
    """A :class:`~framescope.timepiece.StopWatch` that reports its statistics periodically.

    Use it as a context manager around the work, or decorate a function with
    :meth:`measure`; a report is sent when a block ends after the period is over.

    Args:
        stats_callback: ``stats_callback(timestamp, timer)``, see the module docs.
        stats_interval: reporting period, a timedelta or seconds (default 60 s).
        executor: run ``stats_callback`` on this executor instead of inline.
        max_intervals: samples kept per period for percentiles (counts stay exact).
        clock: where to read the time; the system clock by default.
    """

    def __init__(
        self,
        stats_callback: Callable[[datetime.datetime, TimerSnapshot], Any],
        stats_interval: datetime.timedelta | float = DEFAULT_STATS_INTERVAL,
        executor: concurrent.futures.Executor | None = None,
        *,
        max_intervals: int = DEFAULT_TACHOMETER_INTERVALS,
        clock: Clock | None = None,
    ) -> None:
        self.stopwatch = StopWatch("tachometer", max_intervals=max_intervals, clock=clock)
        super().__init__(self.stopwatch, stats_callback, stats_interval, executor)

    def __enter__(self) -> StopWatchTachometer:
        """Start timing a block."""
        self.stopwatch.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block, and report if the period is over."""
        self.stopwatch.__exit__(exc_type, exc, traceback)
        self.schedule.tick()

    def measure(self, func: _F) -> _F:
        """Decorate ``func`` so that every call is measured; the result is returned unchanged."""
        return timed_by(self, func)


def _takes_flat_statistics(callback: Callable[..., Any]) -> bool:
    """Whether ``callback`` names five positional parameters: (timestamp, min, max, sum, num).

    Backpack's released Tachometer called ``callback(timestamp, ticker)``;
    framescope's README documented the flat form. A callback that names at
    least five positional parameters gets the flat form; any other (two
    parameters, ``*args``, a builtin) gets ``(timestamp, timer)``.
    """
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 5


class Tachometer(TickerTachometer):
    """Backpack's older tachometer: a Ticker that reports each period.

    The callback's form is chosen by its signature: ``stats_callback(timestamp,
    timer)`` (what every released Backpack Tachometer called), or, for a
    callback that names five positional parameters, ``stats_callback(timestamp,
    min_proc_time, max_proc_time, sum_proc_time, num_events)`` with the
    period's exact minimum, maximum and sum of the intervals (seconds) and
    their number.
    """

    def __init__(
        self,
        stats_callback: Callable[..., Any],
        stats_interval: datetime.timedelta | float = DEFAULT_STATS_INTERVAL,
        executor: concurrent.futures.Executor | None = None,
        *,
        max_intervals: int = DEFAULT_TACHOMETER_INTERVALS,
        clock: Clock | None = None,
    ) -> None:
        if not callable(stats_callback):
            raise TypeError(f"stats_callback must be callable, got {type(stats_callback).__name__}")
        self.flat_stats_callback = stats_callback
        if not _takes_flat_statistics(stats_callback):
            super().__init__(
                stats_callback, stats_interval, executor, max_intervals=max_intervals, clock=clock
            )
            return
        flat_callback = stats_callback

        def unpack(timestamp: datetime.datetime, timer: TimerSnapshot) -> Any:
            return flat_callback(timestamp, timer.min(), timer.max(), timer.sum(), timer.len())

        super().__init__(unpack, stats_interval, executor, max_intervals=max_intervals, clock=clock)

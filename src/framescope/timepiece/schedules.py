"""Schedules driven by the caller's ``tick()``: no thread, no timer of their own.

Call ``tick()`` from your frame loop; a schedule fires its callback on the first
tick at or after its due time. :class:`AlarmClock` ticks a group of schedules at
once and drops the one-shot ones once they have fired.

Interval and ordinal schedules run on the monotonic clock, so a wall-clock step
(NTP, a user changing the time) neither stalls nor spins them. :class:`AtSchedule`
is about a wall time by nature and compares against the wall clock.
"""

from __future__ import annotations

import datetime
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from framescope._grid import FixedGrid
from framescope._validation import check_positive_int
from framescope.clock import SYSTEM_CLOCK, Clock, TimeSource, to_nanoseconds

if TYPE_CHECKING:
    import concurrent.futures

__all__ = [
    "AlarmClock",
    "AtSchedule",
    "Callback",
    "IntervalSchedule",
    "OrdinalSchedule",
    "Schedule",
]

logger = logging.getLogger(__name__)

NOT_FIRED: tuple[bool, Any] = (False, None)


class Callback:
    """A function with its arguments, called directly or submitted to an executor.

    Called directly, the callback's return value is returned and its exceptions
    propagate to the caller. Submitted to ``executor``, the call returns the
    :class:`~concurrent.futures.Future` at once; an exception raised by the
    function, or an executor that refuses the job (e.g. after shutdown), is
    logged and counted in :attr:`failures` instead of disappearing.

    Positional arguments given at call time are appended after ``cbargs``.

    Args:
        cb: the function to call.
        cbargs: positional arguments to pass.
        cbkwargs: keyword arguments to pass.
        executor: a :class:`concurrent.futures.Executor` to run the call on.
    """

    def __init__(
        self,
        cb: Callable[..., Any],
        cbargs: Sequence[Any] | None = None,
        cbkwargs: Mapping[str, Any] | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if not callable(cb):
            raise TypeError(f"cb must be callable, got {type(cb).__name__}")
        if cbargs is not None and (
            isinstance(cbargs, (str, bytes)) or not isinstance(cbargs, Sequence)
        ):
            raise TypeError(f"cbargs must be a list or tuple, got {type(cbargs).__name__}")
        if cbkwargs is not None and not isinstance(cbkwargs, Mapping):
            raise TypeError(f"cbkwargs must be a dict, got {type(cbkwargs).__name__}")
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor must be a concurrent.futures.Executor (anything with submit()), "
                f"got {type(executor).__name__}"
            )
        self.cb = cb
        self.cbargs: list[Any] = list(cbargs or ())
        self.cbkwargs: dict[str, Any] = dict(cbkwargs or {})
        self.executor = executor
        self._lock = threading.Lock()
        self._failures = 0
        self._last_error: BaseException | None = None

    @property
    def failures(self) -> int:
        """How many executor-run calls raised or could not be submitted."""
        return self._failures

    @property
    def last_error(self) -> BaseException | None:
        """The most recent such exception, or None."""
        return self._last_error

    def _record_failure(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = error
        logger.error(
            "callback %s failed on executor",
            getattr(self.cb, "__qualname__", repr(self.cb)),
            exc_info=(type(error), error, error.__traceback__),
        )

    def _on_done(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._record_failure(error)

    def __call__(self, *args: Any) -> Any:
        """Call the function (or submit it); see the class docstring for the result."""
        call_args = (*self.cbargs, *args) if args else self.cbargs
        if self.executor is None:
            return self.cb(*call_args, **self.cbkwargs)
        try:
            future = self.executor.submit(self.cb, *call_args, **self.cbkwargs)
        except Exception as error:  # the executor refused: shut down, or its queue is closed
            self._record_failure(error)
            return None
        future.add_done_callback(self._on_done)
        return future

    def __repr__(self) -> str:
        name = getattr(self.cb, "__qualname__", repr(self.cb))
        return f"Callback({name}, executor={self.executor!r}, failures={self._failures})"


def as_callback(
    callback: Callback | Callable[..., Any],
    cbargs: Sequence[Any] | None,
    cbkwargs: Mapping[str, Any] | None,
    executor: concurrent.futures.Executor | None,
) -> Callback:
    """Accept either a ready :class:`Callback` or a plain callable with its arguments."""
    if isinstance(callback, Callback):
        if cbargs is not None or cbkwargs is not None or executor is not None:
            raise ValueError(
                "cbargs, cbkwargs and executor go either into the Callback or to the "
                "schedule with a plain callable, not both"
            )
        return callback
    if not callable(callback):
        raise TypeError(f"callback must be a Callback or a callable, got {type(callback).__name__}")
    return Callback(callback, cbargs=cbargs, cbkwargs=cbkwargs, executor=executor)


def _resolve_clock(clock: Clock | None) -> Clock:
    if clock is None:
        return SYSTEM_CLOCK
    if not isinstance(clock, TimeSource):
        raise TypeError(f"clock must provide monotonic_ns() and wall(), got {type(clock).__name__}")
    return clock


class Schedule(ABC):
    """Base class of schedules: something that may fire its callback when ticked.

    ``callback`` is a :class:`Callback`, or a plain callable together with
    ``cbargs=``, ``cbkwargs=`` and ``executor=``.

    Args:
        repeating: whether the schedule fires more than once.
        callback: what to call when the schedule fires.
    """

    def __init__(
        self,
        repeating: bool,
        callback: Callback | Callable[..., Any],
        cbargs: Sequence[Any] | None = None,
        cbkwargs: Mapping[str, Any] | None = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.repeating = bool(repeating)
        self.callback = as_callback(callback, cbargs, cbkwargs, executor)
        self._clock = _resolve_clock(clock)
        self.fire_count = 0

    @property
    def done(self) -> bool:
        """True once a one-shot schedule has fired; an AlarmClock then drops it."""
        return False

    def fire(self) -> Any:
        """Fire now: call the callback and return its result (a Future with an executor)."""
        self.fire_count += 1
        return self.callback()

    @abstractmethod
    def tick(self) -> tuple[bool, Any]:
        """Heartbeat, called regularly.

        Returns ``(True, result)`` when the schedule fired, else ``(False, None)``.
        """


class AtSchedule(Schedule):
    """Fires once, at the first tick at or after the wall time ``at``.

    ``at`` may be aware (any time zone) or naive; a naive ``at`` is taken to be
    local time, like :func:`~framescope.timepiece.local_dt`. Assigning a new
    ``at`` re-arms the schedule.
    """

    def __init__(
        self,
        at: datetime.datetime,
        callback: Callback | Callable[..., Any],
        cbargs: Sequence[Any] | None = None,
        cbkwargs: Mapping[str, Any] | None = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(False, callback, cbargs, cbkwargs, executor, clock=clock)
        self._at_lock = threading.Lock()
        self.at = at

    @property
    def at(self) -> datetime.datetime:
        """When the schedule fires (aware)."""
        return self._at

    @at.setter
    def at(self, value: datetime.datetime) -> None:
        if not isinstance(value, datetime.datetime):
            raise TypeError(f"at must be a datetime.datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.astimezone()  # naive means local time
        with self._at_lock:
            self._at = value
            self._fired = False

    @property
    def fired(self) -> bool:
        """Whether the schedule has fired since ``at`` was last set."""
        return self._fired

    @property
    def done(self) -> bool:
        """True once fired."""
        return self._fired

    def tick(self) -> tuple[bool, Any]:
        """Fire if the wall time has reached ``at`` and the schedule has not fired yet."""
        with self._at_lock:
            if self._fired or self._clock.wall() < self._at:
                return NOT_FIRED
            self._fired = True  # before firing: a raising callback must not fire again
        return True, self.fire()


class IntervalSchedule(Schedule):
    """Fires on the first tick, then once per ``interval`` on a fixed grid.

    The grid is anchored at the first tick on the monotonic clock, so there is no
    drift. A late tick fires once and skips the slots it missed (counted in
    :attr:`skipped`); a wall-clock jump has no effect.

    Args:
        interval: a positive :class:`~datetime.timedelta` or number of seconds.
    """

    def __init__(
        self,
        interval: datetime.timedelta | float,
        callback: Callback | Callable[..., Any],
        cbargs: Sequence[Any] | None = None,
        cbkwargs: Mapping[str, Any] | None = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        interval_ns = to_nanoseconds(interval, "interval")
        if interval_ns <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        super().__init__(True, callback, cbargs, cbkwargs, executor, clock=clock)
        self._interval_ns = interval_ns
        self._now = self._clock.monotonic_ns
        self._grid: FixedGrid | None = None  # anchored at the first tick

    @property
    def interval(self) -> datetime.timedelta:
        """The period between firings."""
        return datetime.timedelta(microseconds=self._interval_ns / 1_000)

    @property
    def next_due_ns(self) -> int | None:
        """Monotonic time (ns) of the next firing; None before the first tick."""
        return None if self._grid is None else self._grid.due_ns

    @property
    def skipped(self) -> int:
        """Grid slots missed by late ticks (a late tick fires once for all of them)."""
        return 0 if self._grid is None else self._grid.skipped

    def tick(self) -> tuple[bool, Any]:
        """Fire if the next grid slot is due."""
        return self.tick_at(self._now())

    def tick_at(self, now_ns: int) -> tuple[bool, Any]:
        """Like :meth:`tick`, with a monotonic reading (ns) the caller already took."""
        if self._grid is None:
            self._grid = FixedGrid(self._interval_ns, now_ns + self._interval_ns)
        elif not self._grid.take(now_ns):
            return NOT_FIRED
        return True, self.fire()


class OrdinalSchedule(Schedule):
    """Fires on every ``ordinal``-th tick (the ``ordinal``-th, the ``2*ordinal``-th, ...).

    Args:
        ordinal: a positive int; 1 fires on every tick.
    """

    def __init__(
        self,
        ordinal: int,
        callback: Callback | Callable[..., Any],
        cbargs: Sequence[Any] | None = None,
        cbkwargs: Mapping[str, Any] | None = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.ordinal = check_positive_int(ordinal, "ordinal")
        super().__init__(True, callback, cbargs, cbkwargs, executor, clock=clock)
        self._counter = 0

    def tick(self) -> tuple[bool, Any]:
        """Count the tick; fire when the count reaches ``ordinal``."""
        self._counter += 1
        if self._counter < self.ordinal:
            return NOT_FIRED
        self._counter = 0
        return True, self.fire()


def _spent(schedule: Any, *, fired: bool) -> bool:
    """Backpack's rule: a schedule that does not repeat goes once it has fired.

    ``done`` counts as fired only for a schedule that does not repeat: a
    repeating schedule stays whatever its ``done`` says.
    """
    if getattr(schedule, "repeating", True):
        return False
    return fired or bool(getattr(schedule, "done", False))


class AlarmClock:
    """Ticks a group of schedules at once and drops one-shot schedules that fired.

    If a callback called directly raises, the remaining schedules are still
    ticked, then the first exception is raised again (the others are logged).

    Args:
        schedules: the schedules to tick.
    """

    def __init__(self, schedules: Iterable[Schedule] | None = None) -> None:
        self.schedules: list[Schedule] = []
        if schedules is not None and (
            not isinstance(schedules, Iterable) or isinstance(schedules, (str, bytes))
        ):
            raise TypeError(
                f"schedules must be an iterable of schedules, got {type(schedules).__name__}"
            )
        for schedule in schedules or ():
            if not callable(getattr(schedule, "tick", None)):
                raise TypeError(
                    "schedules must hold Schedules (with a tick() method), "
                    f"got {type(schedule).__name__}"
                )
            self.add(schedule)

    def add(self, schedule: Schedule) -> None:
        """Add a schedule (anything with ``tick()``, as in Backpack)."""
        if not callable(getattr(schedule, "tick", None)):
            raise TypeError(
                f"schedule must be a Schedule (have a tick() method), got {type(schedule).__name__}"
            )
        self.schedules.append(schedule)

    def remove(self, schedule: Schedule) -> None:
        """Remove a schedule (ValueError if it is not here)."""
        self.schedules.remove(schedule)

    def tick(self) -> None:
        """Tick every schedule once; drop those that fired and do not repeat."""
        first_error: BaseException | None = None
        spent: list[Any] = []
        for schedule in list(self.schedules):
            try:
                answer = schedule.tick()
            except Exception as error:
                if first_error is None:
                    first_error = error
                else:
                    logger.exception("schedule %r raised while ticking", schedule)
                if _spent(schedule, fired=False):
                    spent.append(schedule)  # a one-shot that fired, though its callback raised
                continue
            if _spent(schedule, fired=isinstance(answer, tuple) and bool(answer and answer[0])):
                spent.append(schedule)
        self.schedules = [s for s in self.schedules if s not in spent]
        if first_error is not None:
            raise first_error

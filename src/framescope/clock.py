"""Clocks: where every framescope timer reads the time.

Durations are measured on a monotonic clock in integer nanoseconds; wall-clock
timestamps are timezone-aware :class:`~datetime.datetime` objects in UTC. Every
timing class takes an optional ``clock=`` so that tests can drive time by hand
with :class:`FakeClock` instead of sleeping, and every wait for a timeout goes
through :func:`wait_on` (the clock's ``wait``), so a fake clock controls waits too.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "FakeClock",
    "SystemClock",
    "TimeSource",
    "Waitable",
    "sleep_on",
    "to_nanoseconds",
    "wait_on",
]

_UTC = datetime.timezone.utc


class Waitable(Protocol):
    """What a clock waits on: a :class:`threading.Event`, or a held :class:`threading.Condition`."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until woken or ``timeout`` seconds pass; True when woken."""
        ...


@runtime_checkable
class TimeSource(Protocol):
    """The two readings every framescope timer needs.

    ``monotonic_ns()`` never goes backwards and is used for every duration;
    ``wall()`` returns the current time as a timezone-aware datetime (UTC) and is
    used only to stamp reports and to compare against user-given wall times.
    """

    def monotonic_ns(self) -> int:
        """Return a monotonic reading in integer nanoseconds."""
        ...

    def wall(self) -> datetime.datetime:
        """Return the current wall-clock time as an aware datetime in UTC."""
        ...


@runtime_checkable
class Clock(TimeSource, Protocol):
    """A :class:`TimeSource` that also waits: every timeout in framescope goes through it.

    ``wait(waitable, timeout)`` waits on an Event (or a held Condition) for up
    to ``timeout`` seconds *of this clock*: the system clock waits in real
    time, a :class:`FakeClock` until the test advances it (or at once, with
    ``autojump``). A clock written before ``wait`` existed still works:
    :func:`wait_on` falls back to a real wait for it.
    """

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """Wait on ``waitable`` for up to ``timeout`` s (None: no limit); True when woken."""
        ...


def wait_on(clock: TimeSource, waitable: Waitable, timeout: float | None) -> bool:
    """Wait on ``waitable`` for up to ``timeout`` seconds of ``clock``; True when woken.

    Like :meth:`threading.Condition.wait`, it may return early; callers that
    wait for a condition re-check it in a loop.
    """
    wait = getattr(clock, "wait", None)
    if wait is None:
        return waitable.wait(timeout)
    woken: bool = wait(waitable, timeout)
    return woken


def sleep_on(clock: TimeSource, seconds: float) -> None:
    """Sleep ``seconds`` of ``clock`` (a fake clock: until advanced that far)."""
    if seconds <= 0:
        return
    never = threading.Event()
    deadline = clock.monotonic_ns() + round(seconds * 1e9)
    while (left := deadline - clock.monotonic_ns()) > 0:
        wait_on(clock, never, left / 1e9)


class SystemClock:
    """The real clock: :func:`time.perf_counter_ns` and the system wall clock.

    ``monotonic_ns`` is the C function itself (not a wrapper), so reading it
    through this class costs nothing beyond a bare ``perf_counter_ns()`` call.
    """

    __slots__ = ()

    monotonic_ns = staticmethod(time.perf_counter_ns)

    def wall(self) -> datetime.datetime:
        """Return ``datetime.now(timezone.utc)``."""
        return datetime.datetime.now(_UTC)

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """Wait in real time: ``waitable.wait(timeout)``."""
        return waitable.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
"""The shared default clock used when no ``clock=`` is given."""


def to_nanoseconds(value: float | datetime.timedelta, name: str) -> int:
    """Convert seconds (int/float) or a timedelta to integer nanoseconds.

    ``name`` is the argument name used in the error message when ``value`` is
    not a number or timedelta, is not finite, or is longer (in either
    direction) than ``datetime.timedelta.max``, the longest span it can be
    reported back as.
    """
    if isinstance(value, datetime.timedelta):
        # timedelta holds whole microseconds: convert exactly, without a float.
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return micros * 1_000
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, "
            f"got {type(value).__name__}"
        )
    if isinstance(value, int) and abs(value) > _MAX_SECONDS:
        value = float(_MAX_SECONDS) * 2  # too long whatever its size: refused just below
    if isinstance(value, int) and abs(value) > _MAX_SECONDS:  # compared exactly: no float
        raise ValueError(
            f"{name} must be at most {_MAX_SECONDS:g} seconds (datetime.timedelta.max) "
            f"in size, got an int of {value.bit_length()} bits"
        )
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(value) > _MAX_SECONDS:
        raise ValueError(
            f"{name} must be at most {_MAX_SECONDS:g} seconds (datetime.timedelta.max) "
            f"in size, got {value!r}"
        )
    return round(value * 1_000_000_000)


_MAX_SECONDS = datetime.timedelta.max.total_seconds()


_FAKE_POLL_S = 0.002  # a fake clock's wait looks this often (real s) whether time was advanced


FAKE_LIMIT_NS = 2**62
"""A :class:`FakeClock` stays within +-2**62 ns (146 years) of 0: its readings fit int64."""


def _within_limit(reading_ns: int, argument: str) -> int:
    """``reading_ns`` if a FakeClock may show it; else a ValueError naming ``argument``."""
    if reading_ns >= FAKE_LIMIT_NS:
        raise ValueError(
            f"{argument}: the fake clock would pass 2**62 ns (146 years); it stays below"
        )
    return reading_ns


class FakeClock:
    """A clock that moves only when told to, for deterministic tests.

    The monotonic and the wall reading advance together with :meth:`advance`;
    :meth:`jump_wall` moves only the wall clock (as NTP or a user changing the
    system time would), so code can be tested against wall-clock jumps.

    Waits (:meth:`wait`, and so every framescope timeout given this clock)
    last until the test advances the clock past their deadline, or until
    they are woken. With ``autojump=True`` a wait that nobody wakes at once
    moves the clock to its deadline instead (trio's ``MockClock`` idea): code
    that retries with back-off runs through in no real time, and the clock
    shows when each attempt happened.

    Example::

        clock = FakeClock()
        ticker = Ticker(clock=clock)
        ticker.tick(); clock.advance(0.040); ticker.tick()
        assert ticker.intervals == (0.04,)
    """

    __slots__ = ("_lock", "_mono_ns", "_wall", "autojump")

    def __init__(
        self,
        start_ns: int = 1_000_000_000,
        wall: datetime.datetime | None = None,
        *,
        autojump: bool = False,
    ) -> None:
        if isinstance(start_ns, bool) or not isinstance(start_ns, int):
            raise TypeError(f"start_ns must be an int, got {type(start_ns).__name__}")
        if not -FAKE_LIMIT_NS < start_ns < FAKE_LIMIT_NS:
            raise ValueError(f"start_ns must be within +-2**62 ns (146 years) of 0, got {start_ns}")
        if wall is None:
            wall = datetime.datetime(2024, 1, 1, tzinfo=_UTC)
        self._check_aware(wall, "wall")
        self._lock = threading.Lock()
        self._mono_ns = start_ns
        self._wall = wall.astimezone(_UTC)
        self.autojump = bool(autojump)

    @staticmethod
    def _check_aware(value: datetime.datetime, name: str) -> None:
        if not isinstance(value, datetime.datetime):
            raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (e.g. tzinfo=timezone.utc)")

    def monotonic_ns(self) -> int:
        """Return the current fake monotonic reading in nanoseconds."""
        return self._mono_ns

    def wall(self) -> datetime.datetime:
        """Return the current fake wall time (aware, UTC)."""
        return self._wall

    def advance(self, seconds: float | datetime.timedelta) -> None:
        """Move both readings forward by ``seconds`` (a number or a timedelta)."""
        delta_ns = to_nanoseconds(seconds, "seconds")
        if delta_ns < 0:
            raise ValueError("seconds must be >= 0: a monotonic clock cannot go back")
        with self._lock:
            self._mono_ns = _within_limit(self._mono_ns + delta_ns, "seconds")
            self._wall += datetime.timedelta(microseconds=delta_ns / 1_000)

    def advance_ns(self, nanoseconds: int) -> None:
        """Move both readings forward by an exact number of nanoseconds."""
        if isinstance(nanoseconds, bool) or not isinstance(nanoseconds, int):
            raise TypeError(f"nanoseconds must be an int, got {type(nanoseconds).__name__}")
        if nanoseconds < 0:
            raise ValueError("nanoseconds must be >= 0: a monotonic clock cannot go back")
        with self._lock:
            self._mono_ns = _within_limit(self._mono_ns + nanoseconds, "nanoseconds")
            self._wall += datetime.timedelta(microseconds=nanoseconds / 1_000)

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """Wait on ``waitable`` until woken or this clock passes ``timeout`` seconds from now.

        Without ``autojump``, a wait on an Event polls in short real waits
        until the Event is set or the test advances the clock that far; a
        wait on a Condition returns after one short poll (a notification
        could otherwise be missed between polls: callers re-check their
        condition, as with any Condition). With ``autojump`` an unwoken wait
        moves the clock to the deadline and returns False at once.
        """
        if timeout is None:
            return waitable.wait(None)
        deadline = self._mono_ns + max(0, round(timeout * 1e9))
        if self.autojump or timeout <= 0:
            if waitable.wait(0):
                return True
            self._advance_to(deadline)
            return False
        if not isinstance(waitable, threading.Event):
            return waitable.wait(_FAKE_POLL_S)
        while self._mono_ns < deadline:
            if waitable.wait(_FAKE_POLL_S):
                return True
        return False

    def _advance_to(self, target_ns: int) -> None:
        target_ns = min(target_ns, FAKE_LIMIT_NS - 1)  # a wait's deadline past the limit
        with self._lock:
            if target_ns > self._mono_ns:
                delta = target_ns - self._mono_ns
                self._mono_ns = target_ns
                self._wall += datetime.timedelta(microseconds=delta / 1_000)

    def jump_wall(self, delta: float | datetime.timedelta) -> None:
        """Move only the wall clock, forwards or backwards, as a clock step would."""
        delta_ns = to_nanoseconds(delta, "delta")
        with self._lock:
            self._wall += datetime.timedelta(microseconds=delta_ns / 1_000)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic_ns={self._mono_ns}, wall={self._wall.isoformat()})"

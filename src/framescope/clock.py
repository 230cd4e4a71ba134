"""Clocks: where every framescope timer reads the time.

Durations are measured on a monotonic clock in integer nanoseconds; wall-clock
timestamps are timezone-aware :class:`~datetime.datetime` objects in UTC. Every
timing class takes an optional ``clock=`` so that tests can drive time by hand
with :class:`FakeClock` instead of sleeping.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock", "to_nanoseconds"]

_UTC = datetime.timezone.utc


@runtime_checkable
class Clock(Protocol):
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

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
"""The shared default clock used when no ``clock=`` is given."""


def to_nanoseconds(value: float | datetime.timedelta, name: str) -> int:
    """Convert seconds (int/float) or a timedelta to integer nanoseconds.

    ``name`` is the argument name used in the error message when ``value`` is
    not a number or timedelta, or is not finite.
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
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return round(value * 1_000_000_000)


class FakeClock:
    """A clock that moves only when told to, for deterministic tests.

    The monotonic and the wall reading advance together with :meth:`advance`;
    :meth:`jump_wall` moves only the wall clock (as NTP or a user changing the
    system time would), so code can be tested against wall-clock jumps.

    Example::

        clock = FakeClock()
        ticker = Ticker(clock=clock)
        ticker.tick(); clock.advance(0.040); ticker.tick()
        assert ticker.intervals == (0.04,)
    """

    __slots__ = ("_lock", "_mono_ns", "_wall")

    def __init__(
        self,
        start_ns: int = 1_000_000_000,
        wall: datetime.datetime | None = None,
    ) -> None:
        if isinstance(start_ns, bool) or not isinstance(start_ns, int):
            raise TypeError(f"start_ns must be an int, got {type(start_ns).__name__}")
        if wall is None:
            wall = datetime.datetime(2024, 1, 1, tzinfo=_UTC)
        self._check_aware(wall, "wall")
        self._lock = threading.Lock()
        self._mono_ns = start_ns
        self._wall = wall.astimezone(_UTC)

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
            self._mono_ns += delta_ns
            self._wall += datetime.timedelta(microseconds=delta_ns / 1_000)

    def advance_ns(self, nanoseconds: int) -> None:
        """Move both readings forward by an exact number of nanoseconds."""
        if isinstance(nanoseconds, bool) or not isinstance(nanoseconds, int):
            raise TypeError(f"nanoseconds must be an int, got {type(nanoseconds).__name__}")
        if nanoseconds < 0:
            raise ValueError("nanoseconds must be >= 0: a monotonic clock cannot go back")
        with self._lock:
            self._mono_ns += nanoseconds
            self._wall += datetime.timedelta(microseconds=nanoseconds / 1_000)

    def jump_wall(self, delta: float | datetime.timedelta) -> None:
        """Move only the wall clock, forwards or backwards, as a clock step would."""
        delta_ns = to_nanoseconds(delta, "delta")
        with self._lock:
            self._wall += datetime.timedelta(microseconds=delta_ns / 1_000)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic_ns={self._mono_ns}, wall={self._wall.isoformat()})"

"""Waits of the live view, on its clock: a fixed-rate beat, and a Condition waited on with a bound.

Every wait in ``framescope.live`` goes through one of these, so a
:class:`~framescope.clock.FakeClock` drives the publisher, the fleet's
pollers, the preview's encoder and the terminal view exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from framescope._grid import FixedGrid
from framescope.clock import TimeSource, wait_on

__all__ = ["Beat", "wait_for"]


class Beat:
    """A beat every ``period`` seconds of ``clock``, until ``stop`` is set (or ``until`` s pass).

    The beats are the slots of a :class:`~framescope._grid.FixedGrid` whose
    first slot is due ``period`` after the Beat is made: a loop that fell
    behind skips the slots it missed, without a burst. They are instants of
    the clock, fixed before the loop's thread starts (not waits counted from
    when it began to wait), so a test that advances a fake clock at any
    moment moves the loop on exactly.
    """

    __slots__ = ("_clock", "_end_ns", "_grid", "_stop")

    def __init__(
        self,
        clock: TimeSource,
        period: float,
        stop: threading.Event,
        *,
        until: float | None = None,
    ) -> None:
        self._clock = clock
        self._stop = stop
        now = clock.monotonic_ns()
        period_ns = max(1, round(period * 1e9))
        self._grid = FixedGrid(period_ns, now + period_ns)
        self._end_ns = None if until is None else now + round(until * 1e9)

    def wait(self) -> bool:
        """Wait for the next beat: True then; False once stopped, ended or the main thread ended."""
        main = threading.main_thread()
        while not self._stop.is_set() and main.is_alive():
            now = self._clock.monotonic_ns()
            if self._end_ns is not None and now >= self._end_ns:
                return False
            if self._grid.take(now):
                return True
            left = self._grid.wait_ns(now)
            if self._end_ns is not None:
                left = min(left, self._end_ns - now)
            wait_on(self._clock, self._stop, left / 1e9)
        return False


def wait_for(
    clock: TimeSource,
    condition: threading.Condition,
    ready: Callable[[], bool],
    timeout: float | None,
) -> bool:
    """Wait on ``condition`` (held) until ``ready()``; False after ``timeout`` s of ``clock``.

    The clock's form of :meth:`threading.Condition.wait_for`.
    """
    deadline = None if timeout is None else clock.monotonic_ns() + round(timeout * 1e9)
    while not ready():
        if deadline is None:
            wait_on(clock, condition, None)
            continue
        left = deadline - clock.monotonic_ns()
        if left <= 0:
            return False
        wait_on(clock, condition, left / 1e9)
    return True

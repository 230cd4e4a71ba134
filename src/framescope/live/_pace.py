"""Waits of the live view, on its clock: a fixed-rate beat, and a Condition waited on with a bound.

Every wait in ``framescope.live`` goes through one of these, so a
:class:`~framescope.clock.FakeClock` drives the publisher, the fleet's
pollers, the preview's encoder and the terminal view exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from framescope.clock import TimeSource, wait_on

__all__ = ["Beat", "wait_for"]


class Beat:
    """A beat every ``period`` seconds of ``clock``, until ``stop`` is set (or ``until`` s pass).

    The first beat is due ``period`` after the Beat is made, each next one
    ``period`` after the last was due; a loop that fell more than a period
    behind goes on from now, without a burst to catch up. The beats are
    instants of the clock, not waits counted from when a thread began to
    wait, so a test that advances a fake clock before the loop waits still
    moves it on.
    """

    __slots__ = ("_clock", "_end_ns", "_next_ns", "_period_ns", "_stop")

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
        self._period_ns = max(1, round(period * 1e9))
        now = clock.monotonic_ns()
        self._next_ns = now + self._period_ns
        self._end_ns = None if until is None else now + round(until * 1e9)

    def wait(self) -> bool:
        """Wait for the next beat: True then; False once stopped, ended or the main thread ended."""
        main = threading.main_thread()
        while not self._stop.is_set() and main.is_alive():
            now = self._clock.monotonic_ns()
            if self._end_ns is not None and now >= self._end_ns:
                return False
            if now >= self._next_ns:
                self._next_ns += self._period_ns
                if self._next_ns <= now:  # fell behind: no burst of beats
                    self._next_ns = now + self._period_ns
                return True
            due = self._next_ns if self._end_ns is None else min(self._next_ns, self._end_ns)
            wait_on(self._clock, self._stop, (due - now) / 1e9)
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

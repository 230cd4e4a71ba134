"""Bounds on waiting, written once: the back-off before a retry, and a deadline shared by steps.

:func:`backoff_delay` is the wait before the next attempt after
``failures`` failures in a row (doubling from ``first`` up to ``longest``,
with jitter so that a fleet that lost its endpoint together does not retry
together); it stays finite however long a peer stays down.
:class:`Deadline` spreads one real-time bound (a ``timeout``) over several
steps: each step waits at most what is left.
"""

from __future__ import annotations

import random
import time

__all__ = ["Deadline", "backoff_delay"]

_MAX_DOUBLINGS = 60  # 2**60 times any first delay is past every sensible longest one


def backoff_delay(failures: int, first: float, longest: float, *, jitter: float = 0.2) -> float:
    """Seconds to wait after ``failures`` failures in a row (1: the first failure).

    ``first`` doubled per failure after the first, at most ``longest``, then
    shortened by up to ``jitter`` of itself at random (0: no jitter).
    """
    doublings = min(max(0, failures - 1), _MAX_DOUBLINGS)
    delay = min(longest, first * 2.0**doublings)
    if jitter:
        delay *= random.uniform(1.0 - jitter, 1.0)
    return delay


class Deadline:
    """A real-time bound over several steps: ``left()`` is what remains of ``timeout`` seconds.

    ``timeout`` None: no bound (``left()`` is None, which waits without limit).
    """

    __slots__ = ("_end",)

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        """Seconds left, at least 0.0 (None without a bound)."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    @property
    def passed(self) -> bool:
        """Whether the bound is reached."""
        left = self.left()
        return left is not None and left <= 0.0

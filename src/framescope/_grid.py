"""Slots on a fixed time grid, written once for every loop that runs on a period.

A :class:`FixedGrid` holds the due time of the next slot; :meth:`FixedGrid.take`
says whether that slot is due at a clock reading and, if so, moves to the next
slot on the grid. Slots that went by while the caller was busy (an overrun)
are skipped and counted, never fired in a burst, and the grid never drifts:
every due time is the first one plus a whole number of periods. Readings are
plain ints (monotonic nanoseconds), so any gap, however long, is exact.
"""

from __future__ import annotations

__all__ = ["FixedGrid"]


def _check_ns(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of nanoseconds, got {type(value).__name__}")
    return value


class FixedGrid:
    """Due times ``due_ns, due_ns + period_ns, ...``; :meth:`take` fires each at most once.

    ``due_ns`` is the due time of the next slot and ``skipped`` counts the
    slots that went by untaken (each overrun's slots but the one taken).

    Args:
        period_ns: the grid's period, an int of nanoseconds >= 1.
        due_ns: when the first slot is due (monotonic ns).
    """

    __slots__ = ("due_ns", "period_ns", "skipped")

    def __init__(self, period_ns: int, due_ns: int) -> None:
        period_ns = _check_ns(period_ns, "period_ns")
        if period_ns <= 0:
            raise ValueError(f"period must be positive: period_ns must be >= 1, got {period_ns!r}")
        self.period_ns = period_ns
        self.due_ns = _check_ns(due_ns, "due_ns")
        self.skipped = 0

    def take(self, now_ns: int) -> bool:
        """Whether a slot is due at ``now_ns``; if so, move to the first slot after ``now_ns``.

        A reading before the due time takes nothing and changes nothing. A
        reading ``k`` whole periods past the due time takes one slot and
        skips ``k`` (added to :attr:`skipped`).
        """
        if now_ns < self.due_ns:
            return False
        missed = (now_ns - self.due_ns) // self.period_ns
        self.skipped += missed
        self.due_ns += (missed + 1) * self.period_ns
        return True

    def wait_ns(self, now_ns: int) -> int:
        """Nanoseconds from ``now_ns`` until the next slot is due (0 when it is due)."""
        return max(0, self.due_ns - now_ns)

    def __repr__(self) -> str:
        return (
            f"FixedGrid(period_ns={self.period_ns}, due_ns={self.due_ns}, skipped={self.skipped})"
        )

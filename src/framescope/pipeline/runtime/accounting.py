"""Thread-safe item counters, read as one dictionary that keeps the accounting invariant.

The counters' names and the invariant are in ``model/counters.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from framescope.pipeline.model.counters import OUTCOMES

__all__ = ["ItemCounts"]


class ItemCounts:
    """Thread-safe counters of items, read as one dictionary with ``in_flight`` derived."""

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("forwarded", "completed", "failed", "rejected", "dropped_oldest", "dropped_newest"), 0
        )

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        with self._lock:
            self._counts[key] += n

    def accepted(self, evicted: bool) -> None:
        """One item came in; with ``evicted``, the oldest queued one was dropped for it."""
        with self._lock:
            self._counts["forwarded"] += 1
            if evicted:
                self._counts["dropped_oldest"] += 1

    def read(self, discarded: Iterable[int]) -> dict[str, int]:
        """The counters, with ``dropped`` (both drop policies), ``discarded`` and ``in_flight``.

        ``discarded``: what each queue and thread discarded at a stop. They are
        read before the items that came in, so ``in_flight`` is never below
        the truth (an item only ever moves from in flight to an outcome).
        """
        lost = sum(discarded)
        with self._lock:
            counts = dict(self._counts)
        counts["dropped"] = counts["dropped_oldest"] + counts["dropped_newest"]
        counts["discarded"] = lost
        ended = sum(counts[outcome] for outcome in OUTCOMES)
        counts["in_flight"] = counts["forwarded"] - ended  # below 0 only if counted twice
        return counts

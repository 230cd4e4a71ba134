"""Thread-safe item counters, read as one dictionary that keeps the accounting invariant.

The counters' names and the invariant are in ``model/counters.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from framescope.pipeline.model.counters import OUTCOMES

__all__ = ["ItemCounts"]


_INPUT_SIDE = frozenset(("forwarded", "rejected", "dropped_oldest", "dropped_newest"))
"""Counters written as an item comes in; the rest, where items end."""

_ORDER = ("forwarded", "completed", "failed", "rejected", "dropped_oldest", "dropped_newest")


class ItemCounts:
    """Thread-safe counters of items, read as one dictionary with ``in_flight`` derived.

    Two counts are kept where a lock is held anyway, and read from there:
    ``completed`` is every result the results buffer received (``completed``
    when built), and in a threaded run ``forwarded`` and ``dropped_oldest``
    are what the input queue took in and evicted (:meth:`take_intake_from`).
    The rest are counted here, the input side and the outcomes under a lock
    each, so a feeding thread and a worker never wait for each other to count.

    Args:
        completed: reads how many results were delivered.
    """

    __slots__ = ("_completed", "_input", "_input_lock", "_intake", "_outcome_lock", "_outcomes")

    def __init__(self, completed: Callable[[], int]) -> None:
        self._completed = completed
        self._intake: Callable[[], tuple[int, int]] | None = None
        self._input_lock = threading.Lock()
        self._outcome_lock = threading.Lock()
        self._input = dict.fromkeys(sorted(_INPUT_SIDE), 0)
        self._outcomes = {"failed": 0}

    def take_intake_from(self, intake: Callable[[], tuple[int, int]]) -> None:
        """From now on ``forwarded`` and ``dropped_oldest`` add ``intake()`` (accepted, evicted)."""
        self._intake = intake

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key`` (not ``completed``: the results buffer counts it)."""
        input_side = key in _INPUT_SIDE
        lock = self._input_lock if input_side else self._outcome_lock
        lock.acquire()  # not `with`: ~50 ns less an item on CPython 3.11
        try:
            (self._input if input_side else self._outcomes)[key] += n
        finally:
            lock.release()

    def forwarded(self) -> None:
        """Count one item taken in: :meth:`count` of ``forwarded``, for the serial runner's
        every item (one call, the input side's lock, nothing to look up)."""
        lock = self._input_lock
        lock.acquire()
        try:
            self._input["forwarded"] += 1
        finally:
            lock.release()

    def read(self, discarded: Iterable[int]) -> dict[str, int]:
        """The counters, with ``dropped`` (both drop policies), ``discarded`` and ``in_flight``.

        ``discarded``: what each queue and thread discarded at a stop. They,
        then the outcomes, are read before the items that came in, so
        ``in_flight`` is never below the truth (an item only ever moves from
        in flight to an outcome).
        """
        lost = sum(discarded)
        with self._outcome_lock:
            read = dict(self._outcomes)
        read["completed"] = self._completed()
        with self._input_lock:
            read.update(self._input)
        if self._intake is not None:
            accepted, evicted = self._intake()
            read["forwarded"] += accepted
            read["dropped_oldest"] += evicted
        counts = {key: read[key] for key in _ORDER}
        counts["dropped"] = counts["dropped_oldest"] + counts["dropped_newest"]
        counts["discarded"] = lost
        ended = sum(counts[outcome] for outcome in OUTCOMES)
        counts["in_flight"] = counts["forwarded"] - ended  # below 0 only if counted twice
        return counts

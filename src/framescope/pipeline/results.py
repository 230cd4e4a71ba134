"""Where a pipeline's results, and the errors among them, wait for the caller."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from framescope._validation import check_positive_int
from framescope.pipeline.errors import StageError

__all__ = ["NOTHING", "ResultBuffer"]

NOTHING: Any = object()
"""Returned by :meth:`ResultBuffer.take_next` when no result came."""


class _Failed:
    """A stage error standing in the results where its item's result would be."""

    __slots__ = ("error",)

    def __init__(self, error: StageError) -> None:
        self.error = error


class ResultBuffer:
    """An ordered, bounded buffer of results (and of the errors of failed items).

    Errors keep their place: reading in order raises an item's error exactly
    where its result would have been. :meth:`take_latest` returns the newest
    result and discards older ones (counted in ``skipped``), but raises a
    waiting error first. When the buffer is full the oldest entry is dropped and
    counted in ``dropped``; errors are dropped only when nothing but errors
    waits (the oldest first, counted in ``errors_dropped``), so memory stays
    bounded even when nobody reads a failing pipeline, and the newest error
    is always kept.
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = check_positive_int(maxsize, "results_size")
        self._items: deque[Any] = deque()
        self._errors = 0
        self._cond = threading.Condition()
        self._closed = False
        self.blocking = False  # True: a full buffer makes the deliverer wait (back-pressure)
        self.dropped = 0
        self.skipped = 0
        self.errors_dropped = 0

    def _append(self, entry: Any) -> None:
        with self._cond:
            if self.blocking:
                self._cond.wait_for(
                    lambda: len(self._items) < self._maxsize or self._closed or not self.blocking
                )
            if len(self._items) >= self._maxsize:
                for index, old in enumerate(self._items):
                    if not isinstance(old, _Failed):
                        del self._items[index]
                        self.dropped += 1
                        break
                else:  # only errors wait: the oldest goes (each holds its item's data)
                    self._items.popleft()
                    self._errors -= 1
                    self.errors_dropped += 1
            self._items.append(entry)
            self._cond.notify_all()

    def put(self, result: Any) -> None:
        """Append a result."""
        self._append(result)

    def put_error(self, error: StageError) -> None:
        """Append the error of a failed item, in its place."""
        with self._cond:
            self._errors += 1
        self._append(_Failed(error))

    def pop_error(self) -> StageError | None:
        """Remove and return the oldest waiting error, or None."""
        if not self._errors:  # the common case, without the lock (an int read is atomic)
            return None
        with self._cond:
            if not self._errors:
                return None
            for index, entry in enumerate(self._items):
                if isinstance(entry, _Failed):
                    del self._items[index]
                    self._errors -= 1
                    return entry.error
            return None  # pragma: no cover - _errors counts the _Failed entries

    def take_latest(self) -> Any:
        """Return the newest result and discard older ones; None when there is none.

        Raises the oldest waiting :class:`StageError` first, if there is one.
        """
        error = self.pop_error()
        if error is not None:
            raise error
        with self._cond:
            if not self._items:
                return None
            latest = self._items.pop()
            self.skipped += len(self._items)
            self._items.clear()
            if self.blocking:
                self._cond.notify_all()  # a deliverer may wait for room
            return latest

    def wait_for_any(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds until an entry is waiting; True if one is."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            return bool(self._items)

    def take_next(self, timeout: float | None) -> Any:
        """Return the oldest entry, waiting up to ``timeout`` seconds (None: forever).

        Raises the entry's :class:`StageError` when it stands for a failed item;
        returns :data:`NOTHING` when closed and empty or when the timeout passed.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return NOTHING
            entry = self._items.popleft()
            if self.blocking:
                self._cond.notify_all()  # a deliverer may wait for room
            if isinstance(entry, _Failed):
                self._errors -= 1
                raise entry.error
            return entry

    def set_blocking(self, blocking: bool) -> None:
        """Make a full buffer hold up the deliverer (True) or drop its oldest result (False)."""
        with self._cond:
            self.blocking = blocking
            self._cond.notify_all()

    def close(self) -> None:
        """No more results will come; readers stop waiting once the buffer is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

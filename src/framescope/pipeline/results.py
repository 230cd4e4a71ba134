"""Where a pipeline's results wait for the caller."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from framescope._validation import check_positive_int

__all__ = ["ResultBuffer"]

_NOTHING: Any = object()


class ResultBuffer:
    """An ordered, bounded buffer of results that callers read in two ways.

    :meth:`take_latest` returns the newest result and discards the older ones
    (counted in ``skipped``); :meth:`take_next` returns results one by one, in
    order. When the buffer is full the oldest result is dropped and counted in
    ``dropped``.
    """

    def __init__(self, maxsize: int) -> None:
        check_positive_int(maxsize, "results_size")
        self._items: deque[Any] = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.skipped = 0

    def put(self, result: Any) -> None:
        """Append a result (drops the oldest one when full)."""
        with self._cond:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(result)
            self._cond.notify_all()

    def take_latest(self) -> Any:
        """Return the newest result and discard older ones; None when there is none."""
        with self._cond:
            if not self._items:
                return None
            latest = self._items.pop()
            self.skipped += len(self._items)
            self._items.clear()
            return latest

    def take_next(
        self, timeout: float | None, interrupted: Callable[[], bool] = lambda: False
    ) -> Any:
        """Return the oldest result, waiting up to ``timeout`` seconds (None: forever).

        Returns a marker (see :meth:`is_nothing`) when the buffer is closed and
        empty, the timeout passed, or ``interrupted()`` became true while waiting
        (checked whenever :meth:`wake` is called).
        """
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed or interrupted(), timeout)
            if self._items:
                return self._items.popleft()
            return _NOTHING

    @staticmethod
    def is_nothing(value: Any) -> bool:
        """Whether ``value`` is the marker :meth:`take_next` returns for 'no result'."""
        return value is _NOTHING

    def wake(self) -> None:
        """Wake readers so they re-check the pipeline's state (e.g. a pending error)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """No more results will come; readers stop waiting once the buffer is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

"""Where a pipeline's results, and the errors among them, wait for the caller."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from framescope._buffers import SCALARS as _SCALARS
from framescope._buffers import held_bytes
from framescope._validation import check_int_at_least
from framescope.pipeline.errors import StageError
from framescope.pipeline.runtime.waitline import WaitLine

__all__ = ["DEFAULT_RESULTS_BYTES", "NOTHING", "ResultBuffer"]

NOTHING: Any = object()
"""Returned by :meth:`ResultBuffer.take_next` when no result came."""

DEFAULT_RESULTS_BYTES = 256 * 2**20
"""The default bound on the bytes of waiting results (256 MiB)."""


class _Failed:
    """A stage error standing in the results where its item's result would be."""

    __slots__ = ("error",)

    def __init__(self, error: StageError) -> None:
        self.error = error


class ResultBuffer:
    """An ordered buffer of results (and of the errors of failed items), bounded twice.

    At most ``maxsize`` entries wait, holding at most ``maxbytes`` bytes of
    array buffers (see :func:`framescope._buffers.held_bytes`; None: no bound
    in bytes). Errors keep their place: reading in order raises an item's
    error exactly where its result would have been. :meth:`take_latest`
    returns the newest result and discards older ones (counted in
    ``skipped``), but raises a waiting error first. When a new entry does not
    fit, the oldest results are dropped and counted in ``dropped``; errors
    are dropped only when nothing but errors waits (the oldest first, counted
    in ``errors_dropped``), so memory stays bounded even when nobody reads a
    failing pipeline. The newest entry is always kept, even one larger than
    ``maxbytes`` on its own.

    ``maxsize=0`` keeps no results: :meth:`put` counts them in ``not_kept``
    and lets them go. The newest error still waits (room for one).
    """

    def __init__(self, maxsize: int, maxbytes: int | None = DEFAULT_RESULTS_BYTES) -> None:
        checked = check_int_at_least(maxsize, "results_size", 0)
        assert checked is not None
        self._maxsize = checked
        self._maxbytes = check_int_at_least(maxbytes, "results_bytes", 1, or_none=True)
        self._items: deque[Any] = deque()
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._errors = 0
        self._lock = threading.Lock()
        self._line = WaitLine(self._lock)  # readers waiting for an entry, a deliverer for room
        self._closed = False
        self.blocking = False  # True: a full buffer makes the deliverer wait (back-pressure)
        self.received = 0  # every result put, kept or not (not the errors)
        self.dropped = 0
        self.skipped = 0
        self.errors_dropped = 0
        self.not_kept = 0

    @property
    def maxsize(self) -> int:
        """How many entries may wait (0: results are not kept)."""
        return self._maxsize

    @property
    def maxbytes(self) -> int | None:
        """How many bytes of array buffers the waiting entries may hold (None: no bound)."""
        return self._maxbytes

    @property
    def held_bytes(self) -> int:
        """The bytes the waiting entries hold now, as counted when they came."""
        return self._bytes

    def _fits(self, size: int) -> bool:
        """Whether an entry of ``size`` bytes fits beside those waiting."""
        if not self._items:
            return True
        if len(self._items) >= max(self._maxsize, 1):
            return False
        return self._maxbytes is None or self._bytes + size <= self._maxbytes

    def _remove(self, index: int) -> None:
        del self._items[index]
        self._bytes -= self._sizes[index]
        del self._sizes[index]

    def _make_room(self) -> None:
        """Drop the oldest result (or, when only errors wait, the oldest error)."""
        for index, old in enumerate(self._items):
            if not isinstance(old, _Failed):
                self._remove(index)
                self.dropped += 1
                return
        self._remove(0)  # only errors wait: the oldest goes (each holds its item's data)
        self._errors -= 1
        self.errors_dropped += 1

    def _wait(self, ready: Callable[[], object], timeout: float | None) -> None:
        """Wait (holding the lock) until ``ready()`` or ``timeout``."""
        self._line.wait_for(ready, timeout)

    def _wake(self) -> None:
        """Wake every waiter (holding the lock), if there is one."""
        if self._line.waiters:
            self._line.wake_all()

    def _make_room_for(self, size: int) -> None:
        """Wait for room (blocking) or drop the oldest until an entry of ``size`` bytes fits."""
        if self.blocking:
            self._wait(lambda: self._fits(size) or self._closed or not self.blocking, None)
        items = self._items
        while not self._fits(size):
            if self._errors:
                self._make_room()
            else:  # only results wait: the oldest goes
                items.popleft()
                self._bytes -= self._sizes.popleft()
                self.dropped += 1

    def _append(self, entry: Any, size: int) -> None:
        with self._lock:
            self._make_room_for(size)
            self._items.append(entry)
            self._sizes.append(size)
            self._bytes += size
            self._wake()

    def put(self, result: Any) -> None:
        """Append a result (with ``maxsize=0``: count it in ``not_kept`` and let it go)."""
        if not self._maxsize:
            with self._lock:
                self.received += 1
                self.not_kept += 1
            return
        size = 0 if type(result) in _SCALARS else held_bytes(result)
        maxbytes = self._maxbytes
        lock = self._lock
        lock.acquire()  # not `with`: ~50 ns less an item on CPython 3.11; _append's steps inline
        try:
            self.received += 1
            items, most = self._items, self._maxsize
            if self.blocking or self._errors:
                self._make_room_for(size)
            else:  # only results wait: the oldest go until this one fits (_fits, inline)
                while items and (
                    len(items) >= most or (maxbytes is not None and self._bytes + size > maxbytes)
                ):
                    items.popleft()
                    self._bytes -= self._sizes.popleft()
                    self.dropped += 1
            items.append(result)
            self._sizes.append(size)
            self._bytes += size
            if self._line.waiters:
                self._line.wake_all()
        finally:
            lock.release()

    def put_error(self, error: StageError) -> None:
        """Append the error of a failed item, in its place."""
        with self._lock:
            self._errors += 1
        self._append(_Failed(error), held_bytes(error.item))

    def pop_error(self) -> StageError | None:
        """Remove and return the oldest waiting error, or None."""
        if not self._errors:  # the common case, without the lock (an int read is atomic)
            return None
        with self._lock:
            if not self._errors:
                return None
            for index, entry in enumerate(self._items):
                if isinstance(entry, _Failed):
                    self._remove(index)
                    self._errors -= 1
                    self._wake()  # a deliverer may wait for room
                    return entry.error
            return None  # pragma: no cover - _errors counts the _Failed entries

    def take_latest(self) -> Any:
        """Return the newest result and discard older ones; None when there is none.

        Raises the oldest waiting :class:`StageError` first, if there is one.
        """
        error = self.pop_error()
        if error is not None:
            raise error
        with self._lock:
            if not self._items:
                return None
            latest = self._items.pop()
            self.skipped += len(self._items)
            self._items.clear()
            self._sizes.clear()
            self._bytes = 0
            self._wake()  # a deliverer may wait for room
            return latest

    def wait_for_any(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds until an entry is waiting; True if one is."""
        with self._lock:
            self._wait(lambda: self._items or self._closed, timeout)
            return bool(self._items)

    def take_next(self, timeout: float | None) -> Any:
        """Return the oldest entry, waiting up to ``timeout`` seconds (None: forever).

        Raises the entry's :class:`StageError` when it stands for a failed item;
        returns :data:`NOTHING` when closed and empty or when the timeout passed.
        """
        with self._lock:
            self._wait(lambda: self._items or self._closed, timeout)
            if not self._items:
                return NOTHING
            entry = self._items.popleft()
            self._bytes -= self._sizes.popleft()
            self._wake()  # a deliverer may wait for room
            if isinstance(entry, _Failed):
                self._errors -= 1
                raise entry.error
            return entry

    def set_blocking(self, blocking: bool) -> None:
        """Make a full buffer hold up the deliverer (True) or drop its oldest result (False)."""
        with self._lock:
            self.blocking = blocking
            self._wake()

    def close(self) -> None:
        """No more results will come; readers stop waiting once the buffer is empty."""
        with self._lock:
            self._closed = True
            self._wake()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (no more results will come)."""
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

"""Threads waiting their turn under one lock: what ``threading.Condition`` does, leaner.

A queue between pipeline threads wakes a waiter on almost every item.
``threading.Condition`` checks in Python that the caller owns its lock on
every wait and every notify, which is a measurable share of an empty
stage's cost; a :class:`WaitLine` leaves that to its callers (who hold the
lock by construction) and wakes nobody when nobody waits.
"""

from __future__ import annotations

import threading
from _thread import LockType, allocate_lock
from collections import deque
from collections.abc import Callable
from time import monotonic

__all__ = ["WaitLine"]


class WaitLine:
    """The threads waiting on ``lock`` for something, each on a lock of its own.

    Every method must be called holding ``lock``. :meth:`wait` lets it go
    while waiting; :meth:`wake_one` and :meth:`wake_all` release waiters, who
    then take ``lock`` again before they return.

    Args:
        lock: the lock that guards what the waiters wait for.
    """

    __slots__ = ("_lock", "waiters")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.waiters: deque[LockType] = deque()
        """The waiting threads' locks, oldest first (test it to skip a wake: no call)."""

    def __len__(self) -> int:
        return len(self.waiters)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until woken or ``timeout`` s passed (None: no limit); True when woken.

        A waiter woken just as it timed out counts as woken (the wake is not
        lost: the caller checks again what it waits for). A wait that ends in
        an exception (KeyboardInterrupt) leaves the line.
        """
        waiter = allocate_lock()
        waiter.acquire()
        waiters = self.waiters
        waiters.append(waiter)
        self._lock.release()
        woken = False
        try:
            if timeout is None:
                woken = waiter.acquire()
            elif timeout > 0:
                woken = waiter.acquire(True, timeout)
            else:
                woken = waiter.acquire(False)
        finally:
            self._lock.acquire()
            if not woken:
                try:
                    waiters.remove(waiter)
                except ValueError:  # a waker took it off the line as it timed out
                    woken = True
        return woken

    def wait_for(self, ready: Callable[[], object], timeout: float | None) -> bool:
        """Wait until ``ready()`` or ``timeout`` s passed; whether ``ready()`` held at the end."""
        deadline = None if timeout is None else monotonic() + timeout
        while not ready():
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                return False
            self.wait(left)
        return True

    def wake_one(self) -> None:
        """Wake the longest waiting thread, if any."""
        if self.waiters:
            self.waiters.popleft().release()

    def wake_all(self) -> None:
        """Wake every waiting thread."""
        waiters = self.waiters
        while waiters:
            waiters.popleft().release()

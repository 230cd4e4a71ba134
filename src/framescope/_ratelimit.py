"""Rate-limited logging of repeated faults: the first few in full, then a periodic count."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from framescope.clock import SYSTEM_CLOCK, TimeSource

__all__ = ["FULL", "SILENT", "LogLimiter"]

FULL = -1
"""What :meth:`LogLimiter.check` returns when the record should be logged in full."""
SILENT = 0
"""What :meth:`LogLimiter.check` returns when the record should not be logged."""

_OTHER = ("other",)


class LogLimiter:
    """Decides how to log a fault that may repeat thousands of times a second.

    Per key (e.g. stage and exception type) the first ``first`` records are
    logged in full; after that, at most one summary per ``interval_s``
    seconds says how many were held back. At most ``max_keys`` keys are
    tracked; later keys share one.

    Args:
        first: records logged in full per key.
        interval_s: seconds between summaries of one key.
        clock: where the time comes from.
        max_keys: how many keys are tracked.
    """

    def __init__(
        self,
        first: int = 5,
        interval_s: float = 60.0,
        *,
        clock: TimeSource = SYSTEM_CLOCK,
        max_keys: int = 256,
    ) -> None:
        self.first = first
        self.interval_ns = round(interval_s * 1e9)
        self._clock = clock
        self._max_keys = max_keys
        self._seen: dict[Hashable, list[int]] = {}  # key -> [count, held back, last summary]
        self._lock = threading.Lock()

    def check(self, key: Hashable) -> int:
        """:data:`FULL`, :data:`SILENT`, or (> 0) how many were held back, to say in a summary."""
        now = self._clock.monotonic_ns()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None:
                if len(self._seen) >= self._max_keys:
                    key = _OTHER
                    entry = self._seen.get(key)
                if entry is None:
                    entry = self._seen[key] = [0, 0, now]
            entry[0] += 1
            if entry[0] <= self.first:
                return FULL
            entry[1] += 1
            if now - entry[2] < self.interval_ns:
                return SILENT
            held, entry[1], entry[2] = entry[1], 0, now
            return held

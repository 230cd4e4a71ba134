"""How many cores this process keeps busy, measured between snapshots."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["CpuMeter"]


class CpuMeter:
    """This process's CPU time per second of real time, over about the last ``window_s`` s.

    Each :meth:`load` call is also a reading; the load is measured from the
    oldest reading still inside the window (or from the meter's start), so it
    needs no thread of its own. Worker processes' CPU time is not included.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._lock = threading.Lock()
        self._readings: deque[tuple[float, float]] = deque([self._now()])

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.monotonic(), time.process_time()

    def load(self) -> float | None:
        """Cores busy on average (1.0: one core all the time); None over less than 0.2 s."""
        with self._lock:
            now = self._now()
            readings = self._readings
            while len(readings) > 1 and now[0] - readings[1][0] >= self._window_s:
                readings.popleft()
            start = readings[0]
            if now[0] - readings[-1][0] >= 0.5:  # a reading every half second is enough
                readings.append(now)
        wall = now[0] - start[0]
        if wall < 0.2:
            return None
        return max(0.0, (now[1] - start[1]) / wall)

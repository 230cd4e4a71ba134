"""The steady input loop behind ``Pipeline.start_loop``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from framescope._grid import FixedGrid
from framescope._ratelimit import FULL, LogLimiter
from framescope.clock import Clock, wait_on
from framescope.pipeline.errors import PipelineClosedError, PipelineStoppedError

__all__ = ["InputLoop", "PeriodicGrid"]

logger = logging.getLogger(__name__)


class PeriodicGrid:
    """The input loop's cycles on a :class:`~framescope._grid.FixedGrid` from ``start_ns``.

    ``due_ns`` is the slot the current cycle started on. :meth:`advance`
    moves to the next slot after a cycle that finished at ``now_ns``: when
    the cycle overran the slot, the next cycle is due at once, on the last
    slot that went by (the ones before it are skipped), and the overrun is
    counted.
    """

    def __init__(self, period_ns: int, start_ns: int) -> None:
        self._grid = FixedGrid(period_ns, start_ns + period_ns)
        self.overruns = 0

    @property
    def period_ns(self) -> int:
        """The period (ns)."""
        return self._grid.period_ns

    @property
    def due_ns(self) -> int:
        """The slot (monotonic ns) the current cycle started on."""
        return self._grid.due_ns - self._grid.period_ns

    def advance(self, now_ns: int) -> int:
        """Return how long (ns) to wait before the next cycle, given the time now."""
        grid = self._grid
        if grid.take(now_ns):  # the next slot went by during the cycle
            self.overruns += 1
            return 0
        wait_ns = grid.wait_ns(now_ns)
        grid.take(grid.due_ns)  # the next cycle starts on its slot
        return wait_ns


class InputLoop:
    """A named thread that calls ``produce`` then ``deliver`` once per period.

    A period of 0 means no waiting: each item goes as soon as ``deliver``
    took the previous one (back-pressure, not a timer). ``produce`` raising
    StopIteration ends the loop normally and calls ``on_end`` (the input is
    over); any other exception from ``produce`` is counted in ``errors``, ends
    the loop and is handed to ``on_fail`` (the source failed). An exception from
    ``deliver`` is logged and counted, and the loop goes on, unless it says
    the pipeline takes no more items (it was closed, stopped or cleaned up):
    then the loop ends. :meth:`stop` returns promptly: the waits between
    cycles are on an Event, not sleeps.
    """

    def __init__(
        self,
        name: str,
        period_ns: int,
        produce: Callable[[], Any],
        deliver: Callable[[Any], Any],
        clock: Clock,
        *,
        on_fail: Callable[[Exception], object],
        on_end: Callable[[], object] | None = None,
    ) -> None:
        self._produce = produce
        self._deliver = deliver
        self._clock = clock
        self._on_end = on_end
        self._on_fail = on_fail
        self._grid = PeriodicGrid(period_ns, clock.monotonic_ns()) if period_ns > 0 else None
        self._stop = threading.Event()
        self.errors = 0
        self._log_limit = LogLimiter(clock=clock)
        self.finished = threading.Event()
        # A daemon thread: it calls the user's input_generator, which may never
        # return; that must not keep the process alive at exit.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def overruns(self) -> int:
        """Cycles that took longer than the period."""
        return self._grid.overruns if self._grid is not None else 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._produce()
                except StopIteration:
                    if self._on_end is not None:
                        self._on_end()
                    return
                except Exception as error:
                    self.errors += 1
                    self._on_fail(error)
                    return
                else:
                    try:
                        self._deliver(item)
                    except (PipelineClosedError, PipelineStoppedError):
                        return  # the pipeline takes no more items: pulling more would lose them
                    except Exception as error:
                        self._record(error, "forward")
                if self._grid is None:
                    continue
                wait_ns = self._grid.advance(self._clock.monotonic_ns())
                if wait_ns and self._wait(self._clock.monotonic_ns() + wait_ns):
                    return
        finally:
            self.finished.set()

    def _wait(self, due_ns: int) -> bool:
        """Wait until the clock reaches ``due_ns``; True when asked to stop meanwhile."""
        now = self._clock.monotonic_ns
        while (left := due_ns - now()) > 0:
            if wait_on(self._clock, self._stop, left / 1e9) or self._stop.is_set():
                return True
        return self._stop.is_set()

    def _record(self, error: BaseException, where: str) -> None:
        self.errors += 1
        verdict = self._log_limit.check((where, type(error).__name__))
        if verdict == FULL:
            logger.error("input loop: %s raised", where, exc_info=error)
        elif verdict > 0:
            logger.error(
                "input loop: %s raised %s %d more times (not logged each)",
                where,
                type(error).__name__,
                verdict,
            )

    def request_stop(self) -> None:
        """Ask the loop to stop, without waiting for it."""
        self._stop.set()

    def stop(self, timeout: float | None) -> bool:
        """Ask the loop to stop, wait up to ``timeout`` s (None: no limit); True if it ended."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

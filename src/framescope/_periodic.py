"""A loop that runs an action every interval of a clock, for framescope's own reporting threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from framescope._grid import FixedGrid
from framescope.clock import TimeSource, wait_on

__all__ = ["run_every"]

logger = logging.getLogger(__name__)

_EXIT_POLL_S = 0.5
"""The longest single wait: how soon the loop notices that the main thread has finished."""


def run_every(
    clock: TimeSource,
    stop: threading.Event,
    interval_s: float,
    action: Callable[[], object],
    *,
    what: str,
    failed: Callable[[], None] | None = None,
) -> None:
    """Call ``action`` every ``interval_s`` seconds of ``clock`` until ``stop`` is set.

    The slots are on a fixed grid (a slow action does not shift the later
    ones; slots it overran are skipped). The loop also returns once the main
    thread has finished, so a thread running it never holds up the
    interpreter's exit. An action that raises is logged (as ``what``) and
    counted through ``failed``; the loop goes on.
    """
    now = clock.monotonic_ns
    main = threading.main_thread()
    interval_ns = max(1, round(interval_s * 1e9))
    grid = FixedGrid(interval_ns, now() + interval_ns)
    while not stop.is_set():
        wait_on(clock, stop, min(_EXIT_POLL_S, grid.wait_ns(now()) / 1e9))
        if stop.is_set() or not main.is_alive():
            return
        if not grid.take(now()):
            continue
        try:
            action()
        except Exception:  # a failing round must never end the loop
            logger.exception("%s failed", what)
            if failed is not None:
                failed()

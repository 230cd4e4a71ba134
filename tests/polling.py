"""Polling for what another thread, process or server makes true: bounded, never a fixed sleep.

The limits are generous (a busy machine may be slow); a condition that holds
ends the wait at once, so a passing test never waits for the limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def holds_within(condition: Callable[[], object], limit: float = 30.0, every: float = 0.01) -> bool:
    """Poll ``condition`` every ``every`` s; whether it held within ``limit`` s."""
    deadline = time.monotonic() + limit
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(every)
    return bool(condition())


def wait_for(condition: Callable[[], object], limit: float = 30.0, what: str = "it") -> None:
    """Poll ``condition`` until it holds; an AssertionError naming ``what`` after ``limit`` s."""
    if not holds_within(condition, limit):
        raise AssertionError(f"{what}: not within {limit} s")


def eventually(
    check: Callable[[], Any], limit: float = 30.0, every: float = 0.05, *, errors: bool = False
) -> Any:
    """The first truthy value ``check()`` returns within ``limit`` s (an AssertionError after).

    With ``errors``, an exception from ``check`` counts as not yet (a page
    still drawing) until the limit, when it is raised.
    """
    deadline = time.monotonic() + limit
    while True:
        try:
            value = check()
        except Exception:
            if not errors or time.monotonic() > deadline:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {check}")
        time.sleep(every)

"""The lowest scheduling priority for a thread that must not take the stages' time.

Threads that serve outputs a user can lose frames from (an event clip's
encoder, the live view's video encoder and its WebRTC connections) run at
nice 19: on a machine the stages keep busy they get what is left (and count
what they drop), and on an idle one they run as fast as ever. Linux applies
a niceness to one thread; elsewhere nothing is changed. Not ``SCHED_IDLE``:
a machine kept busy by another process would never run such a thread at all.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["NICEST", "lowest_priority"]

NICEST = 19
"""The niceness given: the lowest priority there is."""


def lowest_priority() -> None:
    """Give the calling thread the lowest priority (Linux: this thread only; else nothing)."""
    if not hasattr(os, "setpriority") or os.name != "posix":
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICEST)

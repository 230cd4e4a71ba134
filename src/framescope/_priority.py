"""The lowest scheduling priority for a thread that must not take the stages' time.

Work that serves outputs a user can lose frames from runs below the stages:
an event clip's encoder thread at nice 19, and the live view's video
process (its WebRTC encoders and connections, which must also answer a
viewer on a busy machine) at nice 10 (see
:mod:`framescope.live.videoprocess`). On a machine the stages keep busy it
gets what is left (and counts what it drops), and on an idle one it runs
as fast as ever. Linux applies a niceness to one thread; elsewhere nothing
is changed. Not ``SCHED_IDLE``: a machine kept busy by another process
would never run such work at all (and for the video process it measured
no better than nice 10: docs/benchmarks.md).
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

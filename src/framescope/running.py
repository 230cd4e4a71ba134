"""Which pipeline stage is running on this thread, for instrumentation that nests under it.

The pipeline binds a stage's event recorder here while the stage runs; code
that knows nothing of pipelines (model timing) looks it up and sends its
timed blocks to it, so they appear inside the stage's slice of a trace. This
module depends on nothing else in framescope, so such code can use it
without importing the pipeline.
"""

from __future__ import annotations

import threading
from typing import Protocol

__all__ = ["RUNNING", "BlockRecorder", "bind_recorder", "current_recorder"]


class BlockRecorder(Protocol):
    """What instrumentation may call on the running stage's recorder."""

    enabled: bool

    def start(self, name: str) -> None:
        """Start a timed block called ``name``."""

    def end(self, name: str) -> None:
        """End the innermost open block called ``name``."""


class _RunningStage(threading.local):
    """Per thread: the recorder of the pipeline stage running there (None if none)."""

    recorder: BlockRecorder | None = None  # a class default: reading it never raises


RUNNING = _RunningStage()
"""``RUNNING.recorder`` is the recorder of the stage running on this thread, or None."""


def current_recorder() -> BlockRecorder | None:
    """The recorder of the pipeline stage running on this thread, if debugging is on."""
    return RUNNING.recorder


def bind_recorder(recorder: BlockRecorder | None) -> BlockRecorder | None:
    """Make ``recorder`` this thread's current one; return the one it replaces."""
    previous = RUNNING.recorder
    RUNNING.recorder = recorder
    return previous

"""A pipeline's life as one state machine: its phase, and why it stopped taking items.

The phase only moves forward, and may skip a phase (a pipeline cleaned up
before it started; a stage's stop policy or a crash halts it before its
input was closed)::

    NEW -> RUNNING -> INPUT_CLOSED -> FINISHED -> CLEANED_UP

Why it ended is kept beside the phase, the first of each kind: the stage
error that stopped it (``stop`` policy), what escaped a stage in a worker
thread, and the source's exception. Every check that refuses an item asks
:meth:`Lifecycle.check_open`, so the same state always gives the same answer.
"""

from __future__ import annotations

import enum
import threading

from framescope.pipeline.errors import (
    PipelineClosedError,
    PipelineStoppedError,
    StageError,
    describe_error,
)

__all__ = ["Lifecycle", "Phase"]


class Phase(enum.IntEnum):
    """Where a pipeline is in its life, in order."""

    NEW = 0
    """Built; no item taken and not started."""
    RUNNING = 1
    """Started: it takes items."""
    INPUT_CLOSED = 2
    """``close()``: no more input; what is inside finishes."""
    FINISHED = 3
    """Every item before the end is out, or it was halted (a stop, a crash)."""
    CLEANED_UP = 4
    """``cleanup()`` ran (on it, or on the pipeline it is nested in)."""


class Lifecycle:
    """One pipeline's phase and the reasons it ended, changed under one lock.

    Args:
        name: the pipeline's name, for the errors that refuse items.
    """

    __slots__ = (
        "_lock",
        "_phase",
        "cleaned_up",
        "crashed",
        "finished",
        "input_closed",
        "name",
        "source_error",
        "started",
        "stopped_by",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._phase = Phase.NEW
        # Plain flags, read on every item, set with the phase (a read is one attribute load).
        self.started = False
        """Whether it ever started (reached :attr:`Phase.RUNNING`)."""
        self.input_closed = False
        """Whether it takes no more input: closed, finished or cleaned up."""
        self.cleaned_up = False
        """Whether ``cleanup()`` ran on it or on the pipeline it is nested in."""
        self.finished = threading.Event()
        """Set on reaching :attr:`Phase.FINISHED` (what ``join()`` waits for)."""
        self.stopped_by: StageError | None = None
        """The stage error that stopped it (``stop`` policy), the first one."""
        self.crashed: BaseException | None = None
        """What escaped a stage in a worker thread, the first one."""
        self.source_error: Exception | None = None
        """The exception its source raised (the input ended there), the first one."""

    @property
    def phase(self) -> Phase:
        """The phase now."""
        return self._phase

    def advance(self, phase: Phase) -> bool:
        """Move forward to ``phase``; False when it was there or past it already."""
        with self._lock:
            if self._phase >= phase:
                return False
            self.started = self.started or phase is Phase.RUNNING
            self._phase = phase
            self.input_closed = phase >= Phase.INPUT_CLOSED
            self.cleaned_up = phase is Phase.CLEANED_UP
        if phase >= Phase.FINISHED:
            self.finished.set()
        return True

    def stop(self, error: StageError) -> None:
        """A stage failed on an item under the ``stop`` policy (the first one is kept)."""
        with self._lock:
            if self.stopped_by is None:
                self.stopped_by = error

    def crash(self, error: BaseException) -> None:
        """Something escaped a stage in a worker thread (the first one is kept)."""
        with self._lock:
            if self.crashed is None:
                self.crashed = error

    def source_failed(self, error: Exception) -> bool:
        """The source raised ``error``; True when it is the first such error."""
        with self._lock:
            first = self.source_error is None
            if first:
                self.source_error = error
        return first

    def raise_crash(self) -> None:
        """Raise, in the caller's thread, what escaped a stage in a worker thread (if anything)."""
        if self.crashed is not None:
            raise self.crashed

    def check_open(self) -> None:
        """Raise if it takes no more items for a reason other than the end of its input:
        a crash, a cleanup or a stage's stop."""
        self.raise_crash()
        if self.cleaned_up:
            raise PipelineClosedError(f"pipeline {self.name!r} was cleaned up; build a new one")
        if self.stopped_by is not None:
            raise PipelineStoppedError(self.stopped_by)

    def refuse_input(self) -> None:
        """Raise why it takes no more items (it must be past :attr:`Phase.RUNNING`)."""
        self.check_open()
        error = self.source_error
        if error is None:
            raise PipelineClosedError(f"pipeline {self.name!r} was closed: no more input")
        raise PipelineClosedError(
            f"pipeline {self.name!r} was closed: its source failed ({describe_error(error)})"
        ) from error

    def __repr__(self) -> str:
        return f"<Lifecycle {self.name} {self._phase.name}>"

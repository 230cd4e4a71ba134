"""One item's way through a pipeline: its envelope, the units that run on it, the protocol.

Every runner (serial, threaded, debugging) moves items with the same
:func:`item_processor`: run the unit on the item unless an earlier stage
failed on it, and apply the failing stage's error policy. Policies live in
one place, the ``fail`` callable the runtime hands in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from framescope.pipeline.errors import ErrorPolicy, StageError
from framescope.timepiece import StopWatch

__all__ = [
    "SETTLE_EVERY",
    "Envelope",
    "Fail",
    "ItemFailedError",
    "PlainStage",
    "Process",
    "Unit",
    "close_span",
    "failed_item",
    "item_processor",
    "open_span",
    "stage_processor",
]


class Envelope:
    """One item travelling through a pipeline, with its entry time and frame id."""

    __slots__ = ("data", "error", "frame_id", "marks", "sequence", "t_in")

    sequence: int
    """Its number in a replicated stage, set when a replica takes it (see pipeline.replicas)."""

    def __init__(self, data: Any, t_in: int, frame_id: int = 0) -> None:
        self.data = data
        self.t_in = t_in
        self.frame_id = frame_id
        self.marks: dict[int, int] | None = None
        self.error: StageError | None = None  # set when a stage failed on this item


class ItemFailedError(Exception):
    """Internal: a stage raised; carries the StageError and that stage's policy."""

    def __init__(self, error: StageError, policy: ErrorPolicy) -> None:
        super().__init__(str(error))
        self.error = error
        self.policy = policy


Unit = Callable[[Envelope, int], int]
"""What one runner does to each item: ``unit(envelope, start_ns) -> end_ns``.

It processes ``envelope.data`` in place (one stage, or several run inline)
and times itself with the clock reading the caller already took when it
started (``start_ns``), returning the reading it ended on. Consecutive units
chain these readings, so timing a stage costs one clock read, not two.
"""

Fail = Callable[[ItemFailedError, Envelope], bool]
"""Applies a failure's policy to the failed item; True when it travels on, marked as failed."""

Process = Callable[[Envelope, int], "int | None"]
"""The per-item protocol: ``process(envelope, start_ns)`` -> end_ns, or None when the item ends."""


def item_processor(unit: Unit, fail: Fail, now: Callable[[], int]) -> Process:
    """The per-item protocol: run ``unit`` on an envelope, apply the policy on failure.

    The returned function returns the clock reading the item was done at, or
    None when the item ends here (its stage failed under ``skip`` or
    ``stop``). An item that fails under ``raise`` goes on, marked with its
    error, so that the error reaches the results in its place; an item that
    an earlier stage failed on passes through unprocessed.
    """

    def process(envelope: Envelope, start: int) -> int | None:
        if envelope.error is None:
            try:
                return unit(envelope, start)
            except ItemFailedError as failure:
                return failed_item(envelope, failure, fail, now)
        return start

    return process


SETTLE_EVERY = 1024
"""Items between two looks at whether a hot loop's stage timers have enough to fold."""


@dataclass(frozen=True, slots=True)
class PlainStage:
    """One plain stage as a thread runs it in its own loop: the call, its timer, its failures.

    A worker that runs one plain stage calls it in its loop, with the timing
    written in place (see :meth:`Worker <framescope.pipeline.runtime.worker.Worker>`);
    :func:`stage_processor` is the same as a per-item protocol function.
    """

    call: Callable[[Any], Any]
    """The stage (followed by its taps, if any)."""
    watch: StopWatch
    """Its timer (one thread writes it: the one running this stage)."""
    wrap: Callable[[Any, Exception], ItemFailedError]
    """Counts a failure of the stage on an item and wraps it for the policy."""
    fail: Fail
    """Applies a failure's policy."""

    def failed(
        self, envelope: Envelope, data: Any, error: Exception, now: Callable[[], int]
    ) -> int | None:
        """The stage raised ``error`` on ``data``: apply the policy (see :func:`failed_item`)."""
        failure = error if isinstance(error, ItemFailedError) else self.wrap(data, error)
        return failed_item(envelope, failure, self.fail, now)


def stage_processor(plain: PlainStage, now: Callable[[], int]) -> Process:
    """:func:`item_processor` of a unit that is one plain stage, in one function.

    The same protocol, with the stage call, its timing and the wrapping of
    its error written in place: a thread that runs one stage saves Python
    calls per item, which are a measurable share of an empty stage's cost.
    Failures end in the same place as :func:`item_processor`'s. It must be
    run by one thread (the watch's writer).
    """
    stage, wrap, fail = plain.call, plain.wrap, plain.fail
    add, settle = plain.watch.raw_recording()
    left = [SETTLE_EVERY]  # items until the watch may fold (a list: written in place)

    def process(envelope: Envelope, start: int) -> int | None:
        if envelope.error is None:
            data = envelope.data
            try:
                result = stage(data)
            except ItemFailedError as failure:
                return failed_item(envelope, failure, fail, now)
            except Exception as error:
                return failed_item(envelope, wrap(data, error), fail, now)
            end = now()
            add((start, end))
            envelope.data = result
            left[0] -= 1
            if left[0] <= 0:
                left[0] = SETTLE_EVERY
                settle()
            return end
        return start

    return process


def failed_item(
    envelope: Envelope, failure: ItemFailedError, fail: Fail, now: Callable[[], int]
) -> int | None:
    """Apply the policy to a failed item: None when it ends here, else mark it and go on."""
    if not fail(failure, envelope):
        return None
    envelope.error = failure.error
    return now()


def open_span(unit: Unit, key: int) -> Unit:
    """Wrap ``unit`` so that it first notes the start of a nested pipeline's span."""

    def opening(envelope: Envelope, start: int) -> int:
        if envelope.marks is None:
            envelope.marks = {}
        envelope.marks[key] = start
        return unit(envelope, start)

    return opening


def close_span(unit: Unit, key: int, watch: StopWatch) -> Unit:
    """Wrap ``unit`` so that afterwards it records the nested pipeline's span on ``watch``."""
    record = watch.record

    def closing(envelope: Envelope, start: int) -> int:
        end = unit(envelope, start)
        marks = envelope.marks
        if marks is not None and key in marks:
            record(marks.pop(key), end)
        return end

    return closing

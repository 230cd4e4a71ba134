"""One item's way through a pipeline: its envelope, the units that run on it, the protocol.

Every runner (serial, threaded, debugging) moves items with the same
:func:`item_processor`: run the unit on the item unless an earlier stage
failed on it, and apply the failing stage's error policy. Policies live in
one place, the ``fail`` callable the runtime hands in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from framescope.pipeline.errors import ErrorPolicy, StageError
from framescope.timepiece import StopWatch

__all__ = ["Envelope", "ItemFailedError", "Unit", "close_span", "item_processor", "open_span"]


class Envelope:
    """One item travelling through a pipeline, with its entry time and frame id."""

    __slots__ = ("data", "error", "frame_id", "marks", "t_in")

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


Unit = Callable[[Envelope], Envelope]
"""What one runner does to each item (one stage, or several run inline)."""

Fail = Callable[[ItemFailedError], bool]
"""Applies a failure's policy; True when the item travels on, marked as failed."""


def item_processor(unit: Unit, fail: Fail) -> Callable[[Envelope], bool]:
    """The per-item protocol: run ``unit`` on an envelope, apply the policy on failure.

    The returned function returns False when the item ends here (its stage
    failed under ``skip`` or ``stop``), True when it goes on: processed, or
    marked with its error so that the error reaches the results in its place.
    An item that an earlier stage failed on passes through unprocessed.
    """

    def process(envelope: Envelope) -> bool:
        if envelope.error is None:
            try:
                unit(envelope)
            except ItemFailedError as failure:
                if not fail(failure):
                    return False
                envelope.error = failure.error
        return True

    return process


def open_span(unit: Unit, key: int, now: Callable[[], int]) -> Unit:
    """Wrap ``unit`` so that it first stamps the start of a nested pipeline's span."""

    def opening(envelope: Envelope) -> Envelope:
        if envelope.marks is None:
            envelope.marks = {}
        envelope.marks[key] = now()
        return unit(envelope)

    return opening


def close_span(unit: Unit, key: int, watch: StopWatch) -> Unit:
    """Wrap ``unit`` so that afterwards it records the nested pipeline's span on ``watch``."""
    now = watch.clock.monotonic_ns

    def closing(envelope: Envelope) -> Envelope:
        envelope = unit(envelope)
        marks = envelope.marks
        if marks is not None and key in marks:
            watch.record(marks.pop(key), now())
        return envelope

    return closing

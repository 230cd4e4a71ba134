"""The compiled form of a pipeline: steps, and the units that threads run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from framescope.pipeline.errors import ErrorPolicy, StageError
from framescope.pipeline.events import EventRecorder
from framescope.timepiece import StopWatch

if TYPE_CHECKING:
    from framescope.pipeline.pipeline import Pipeline

__all__ = ["Envelope", "ItemFailedError", "Step", "Unit"]


class Envelope:
    """One item travelling through a pipeline, with its entry time."""

    __slots__ = ("data", "error", "frame_id", "marks", "t_in")

    def __init__(self, data: Any, t_in: int, frame_id: int = 0) -> None:
        self.data = data
        self.t_in = t_in
        self.frame_id = frame_id
        self.marks: dict[int, int] | None = None
        self.error: StageError | None = None  # set when a stage failed on this item


class ItemFailedError(Exception):
    """Internal: a stage raised; carries the StageError and the step's policy."""

    def __init__(self, error: StageError, step: Step) -> None:
        super().__init__(str(error))
        self.error = error
        self.step = step


@dataclass(eq=False)
class Step:
    """One stage of a pipeline: the callable, its name, policy and timer."""

    name: str
    fn: Callable[[Any], Any]
    stage: object
    watch: StopWatch
    on_error: ErrorPolicy
    queue_size: int | None
    recorder: EventRecorder
    child: Pipeline | None = None
    qualified: str = ""
    failures: int = 0

    def run(self, data: Any) -> Any:
        """Run the stage on ``data``, timed; a failure becomes :class:`ItemFailedError`."""
        now = self.watch.clock.monotonic_ns
        start = now()
        try:
            result = self.fn(data)
        except ItemFailedError:
            raise
        except Exception as error:
            raise self.failure(data, error) from error
        self.watch.record(start, now())
        return result

    def failure(self, data: Any, error: Exception) -> ItemFailedError:
        """Count a failure of the stage on ``data`` and wrap it for the runtime."""
        self.failures += 1
        return ItemFailedError(StageError(self.qualified, data, error), self)


Unit = Callable[[Envelope], Envelope]
"""What one worker thread does to each item."""


def step_unit(step: Step) -> Unit:
    """The unit that runs one plain step on an envelope."""
    run = step.run

    def unit(envelope: Envelope) -> Envelope:
        envelope.data = run(envelope.data)
        return envelope

    return unit


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

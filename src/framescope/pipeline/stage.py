"""Stages: the units of work a pipeline runs."""

from __future__ import annotations

import abc
from typing import Any

from framescope.clock import SYSTEM_CLOCK
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.running import RUNNING

__all__ = ["PipelineStage", "Stage", "stage_display_name"]

_DISABLED = EventRecorder("", SYSTEM_CLOCK, enabled=False)


class Stage(abc.ABC):
    """Base class of a pipeline stage: takes one item, returns the processed item.

    Subclass it and implement :meth:`__call__`; override :meth:`cleanup` to free
    resources (it is called exactly once, when the pipeline is cleaned up). Set
    ``self.name`` to name the stage in profiles. Any one-argument callable can
    be used as a stage too.
    """

    name: str = ""
    """The stage's name in profiles; empty: named after its class (``Resize``, ``Resize_2``)."""

    @property
    def events(self) -> EventRecorder:
        """This stage's event recorder, for CUSTOM events: ``with self.events.block("nms"):``.

        The pipeline attaches it when the stage is added; until then, and when
        debugging is off, it records nothing. A stage with thread replicas
        records to the replica running the call (``Stage#1``).
        """
        recorder: EventRecorder | None = self.__dict__.get("_framescope_events")
        if recorder is None:
            return _DISABLED
        if self.__dict__.get("_framescope_replicated"):
            running = RUNNING.recorder
            if isinstance(running, EventRecorder):
                return running
        return recorder

    @abc.abstractmethod
    def __call__(self, data: Any) -> Any:
        """Process one item and return the result handed to the next stage."""

    def cleanup(self) -> None:  # noqa: B027 - a default no-op is the intended behaviour
        """Release resources; called once when the pipeline is cleaned up."""


def stage_display_name(stage: object) -> str | None:
    """Return the name a stage gives itself (its ``name`` attribute), if it has one."""
    name = getattr(stage, "name", None)
    if isinstance(name, str) and name:
        return name
    return None


class PipelineStage(Stage):
    """A pipeline used as a stage of another pipeline (see :meth:`Pipeline.as_stage`)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.name = pipeline.name

    def __call__(self, data: Any) -> Any:
        """Run the nested pipeline's stages on ``data`` and return the result."""
        return self.pipeline._tree.run_inline(data)

    def cleanup(self) -> None:
        """Clean up the nested pipeline."""
        self.pipeline.cleanup()

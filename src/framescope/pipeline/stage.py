"""Stages: the units of work a pipeline runs."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["Stage", "stage_display_name"]


class Stage(abc.ABC):
    """Base class of a pipeline stage: takes one item, returns the processed item.

    Subclass it and implement :meth:`__call__`; override :meth:`cleanup` to free
    resources (it is called exactly once, when the pipeline is cleaned up). Set
    ``self.name`` to name the stage in profiles. Any one-argument callable can
    be used as a stage too.
    """

    name: str

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

"""Errors and policies of the pipeline runtime."""

from __future__ import annotations

import enum
import traceback
from typing import Any, TypeVar

__all__ = [
    "ErrorPolicy",
    "OverflowPolicy",
    "PipelineClosedError",
    "PipelineStoppedError",
    "StageError",
    "describe_error",
]


_Policy = TypeVar("_Policy", bound="_ParsedChoice")


class _ParsedChoice(str, enum.Enum):
    """A string enum whose :meth:`parse` names the argument and the allowed values."""

    @classmethod
    def parse(cls: type[_Policy], value: _Policy | str, name: str) -> _Policy:
        """Accept a member or its string value; anything else is a clear ValueError."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in cls)
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


class ErrorPolicy(_ParsedChoice):
    """What a pipeline does when a stage raises.

    - ``RAISE``: drop the item and raise a :class:`StageError` to the next caller
      of ``forward``/``get_results`` (once); the pipeline keeps running.
    - ``SKIP``: drop the item, log and count the error, keep running.
    - ``STOP``: stop the pipeline; every later ``forward`` raises
      :class:`PipelineStoppedError` carrying the :class:`StageError`. In a
      threaded pipeline every item that came in before the failing one still
      runs its remaining stages and is delivered; then the results raise the
      :class:`PipelineStoppedError`. Items that came in after it are
      discarded (counted in ``discarded``), and so is an item still inside
      an ``ordered=False`` replicated stage before the failing one (it may
      have been overtaken by the failing item).
    """

    RAISE = "raise"
    SKIP = "skip"
    STOP = "stop"


class OverflowPolicy(_ParsedChoice):
    """What ``forward`` does when the pipeline's input queue is full.

    - ``BLOCK``: wait (up to the input timeout) for room; ``forward`` returns
      False when the item could not be queued in time.
    - ``DROP_OLDEST``: queue the new item and drop the oldest queued one.
    - ``DROP_NEWEST``: drop the new item; ``forward`` returns False.

    Every dropped or rejected item is counted.
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class StageError(Exception):
    """A stage raised while processing an item.

    Attributes:
        stage: the qualified stage name, e.g. ``MainPipeline__Detector``.
        item: the input the stage was given.
        error: the exception the stage raised (also ``__cause__``).
        traceback_text: the formatted traceback of that exception.
    """

    def __init__(self, stage: str, item: Any, error: BaseException) -> None:
        self.stage = stage
        self.item = item
        self.error = error
        self.traceback_text = "".join(
            traceback.format_exception(type(error), error, error.__traceback__)
        )
        super().__init__(f"stage {stage!r} raised {type(error).__name__}: {error}")
        self.__cause__ = error


class PipelineClosedError(RuntimeError):
    """The pipeline was cleaned up and takes no more work."""


class PipelineStoppedError(RuntimeError):
    """A stage with the ``stop`` error policy failed; the pipeline takes no more work.

    The :class:`StageError` that stopped it is ``__cause__`` and ``stage_error``.
    """

    def __init__(self, stage_error: StageError) -> None:
        self.stage_error = stage_error
        super().__init__(f"pipeline stopped: {stage_error}")
        self.__cause__ = stage_error


def describe_error(error: BaseException) -> str:
    """One line naming an exception: ``ValueError: uri: 'x.mp4' has no video stream``."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__

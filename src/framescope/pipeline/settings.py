"""How a threaded pipeline takes items in and hands results out."""

from __future__ import annotations

from dataclasses import dataclass

from framescope.pipeline.errors import OverflowPolicy

__all__ = ["RunSettings"]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a threaded run takes items in and hands results out (see ``Pipeline.parallelize``)."""

    block_input: bool = True
    input_timeout: float | None = 10.0
    block_output: bool = False
    output_timeout: float | None = 10.0
    queue_size: int = 1
    overflow: OverflowPolicy = OverflowPolicy.BLOCK

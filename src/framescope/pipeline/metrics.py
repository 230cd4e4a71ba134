"""The names exporters used before snapshots: one reading of a pipeline's numbers.

:class:`PipelineMetrics` is :class:`~framescope.pipeline.snapshot.PipelineSnapshot`
and :class:`StageMetrics` is :class:`~framescope.pipeline.snapshot.StageSnapshot`;
:func:`pipeline_metrics` takes a snapshot of anything that has ``snapshot()``.
"""

from __future__ import annotations

from typing import Protocol

from framescope.pipeline.snapshot import DROP_REASONS, PipelineSnapshot, StageSnapshot

__all__ = [
    "DROP_REASONS",
    "PipelineMetrics",
    "SnapshotSource",
    "StageMetrics",
    "pipeline_metrics",
]

PipelineMetrics = PipelineSnapshot
StageMetrics = StageSnapshot


class SnapshotSource(Protocol):
    """Anything read into a :class:`PipelineSnapshot`: a ``Pipeline``, a remote view."""

    @property
    def name(self) -> str:
        """The pipeline's name."""
        ...

    def snapshot(self) -> PipelineSnapshot:
        """Read every number at one instant."""
        ...


def pipeline_metrics(pipeline: SnapshotSource) -> PipelineSnapshot:
    """Read ``pipeline`` once: ``pipeline.snapshot()``."""
    return pipeline.snapshot()

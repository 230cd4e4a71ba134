"""One immutable reading of a pipeline's numbers, for exporters to render.

:func:`pipeline_metrics` reads a pipeline once (statistics, counters, queue
depths, node phases) into a :class:`PipelineMetrics`; the CloudWatch,
Prometheus and OpenTelemetry exporters are functions of that reading, so all of
them report the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framescope.pipeline.pipeline import SEPARATOR, Pipeline
from framescope.stats import StatsSnapshot

__all__ = ["DROP_REASONS", "PipelineMetrics", "StageMetrics", "pipeline_metrics"]

#: Pipeline counters that count lost items, and the reason each stands for.
DROP_REASONS: dict[str, str] = {
    "rejected": "queue_full",
    "dropped": "overflow",
    "results_dropped": "result_unread",
    "discarded": "cleanup",
}


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """One stage's numbers.

    Attributes:
        key: the profile key (``MainPipeline__Detect``).
        stage: the key without the pipeline's name (``Detect``, ``Inner__Resize``).
        latency: processing-time statistics in seconds (``rate()`` is the fps).
        failures: items the stage failed on, all time.
        queue_depth: items waiting in its input queue (None when not threaded).
        phase: IDLE, PROCESSING, ... (None unless debugging is on).
    """

    key: str
    stage: str
    latency: StatsSnapshot
    failures: int
    queue_depth: int | None
    phase: str | None


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """A pipeline's numbers at one moment.

    Attributes:
        pipeline: the pipeline's name.
        latency: end-to-end latency statistics in seconds (``rate()`` is the fps).
        counters: :meth:`Pipeline.counters` (forwarded, completed, dropped ...).
        stages: every stage, in pipeline order (nested stages after their parent).
    """

    pipeline: str
    latency: StatsSnapshot
    counters: dict[str, int] = field(default_factory=dict)
    stages: tuple[StageMetrics, ...] = ()

    def dropped(self) -> dict[str, int]:
        """Lost items by reason (queue_full, overflow, result_unread, cleanup)."""
        return {reason: self.counters.get(key, 0) for key, reason in DROP_REASONS.items()}


def pipeline_metrics(pipeline: Pipeline) -> PipelineMetrics:
    """Read ``pipeline`` once into a :class:`PipelineMetrics`."""
    stats = pipeline.statistics()
    failures = pipeline.stage_failures()
    depths = pipeline.queue_depths()
    phases = pipeline.node_phases()
    prefix = pipeline.name + SEPARATOR
    stages = tuple(
        StageMetrics(
            key=key,
            stage=key[len(prefix) :] if key.startswith(prefix) else key,
            latency=stats[key],
            failures=failures.get(key, 0),
            queue_depth=depths.get(key),
            phase=phases.get(key),
        )
        for key in stats
        if key != pipeline.name
    )
    return PipelineMetrics(pipeline.name, stats[pipeline.name], pipeline.counters(), stages)

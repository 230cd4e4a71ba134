"""Which stage holds the pipeline back, and why: ``pipeline.diagnose()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from framescope.pipeline.snapshot import PipelineSnapshot
from framescope.pipeline.state import PipelineState
from framescope.stats import StatsSnapshot

__all__ = ["LOSS_COUNTERS", "Diagnosis", "StageLoad", "diagnose", "diagnose_snapshot"]

#: The pipeline counters a diagnosis reports as losses.
LOSS_COUNTERS = ("rejected", "dropped", "failed", "results_dropped", "discarded")


@dataclass(frozen=True, slots=True)
class StageLoad:
    """How loaded one stage is over the recent window.

    ``busy`` is the fraction of time it spends processing: its mean processing
    time times its throughput (1.0 means it never rests).
    """

    node_id: str
    busy: float
    mean_latency_s: float
    throughput_per_s: float


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The verdict: the bottleneck stage, the evidence, latency tails and losses."""

    bottleneck: str | None
    reasons: tuple[str, ...]
    stages: tuple[StageLoad, ...]
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    items: int
    losses: dict[str, int] = field(default_factory=dict)

    def report(self) -> str:
        """A readable multi-line report."""
        lines = []
        if self.bottleneck is None:
            lines.append("Bottleneck: none yet (no item has gone through)")
        else:
            lines.append(f"Bottleneck: {self.bottleneck}")
        lines.extend(f"  - {reason}" for reason in self.reasons)
        lines.append(
            f"End-to-end latency over the last {self.items} items: "
            f"p50 {self.latency_p50_s * 1e3:.2f} ms, p90 {self.latency_p90_s * 1e3:.2f} ms, "
            f"p99 {self.latency_p99_s * 1e3:.2f} ms"
        )
        if self.stages:
            width = max(len(s.node_id) for s in self.stages)
            lines.append(f"  {'stage':<{width}}  {'busy':>5}  {'mean':>9}  {'rate':>9}")
            for stage in self.stages:
                marker = " <" if stage.node_id == self.bottleneck else ""
                mean_ms = stage.mean_latency_s * 1e3
                lines.append(
                    f"  {stage.node_id:<{width}}  {stage.busy:>5.0%}  "
                    f"{mean_ms:>6.2f} ms  {stage.throughput_per_s:>7.1f}/s{marker}"
                )
        losses = ", ".join(f"{name} {count}" for name, count in self.losses.items())
        lines.append(f"Losses: {losses or 'none'}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def diagnose(
    pipeline_latency: StatsSnapshot,
    stage_stats: Mapping[str, StatsSnapshot],
    losses: Mapping[str, int],
    *,
    state: PipelineState | None = None,
    capacities: Mapping[str, int] | None = None,
    order: list[str] | None = None,
) -> Diagnosis:
    """Name the bottleneck from the stages' statistics (seconds) and, if given, live state.

    ``stage_stats`` are the processing-time snapshots of the stages that run
    (in pipeline order); ``state`` and ``capacities`` (input queue size per
    node) add evidence from the queues when debugging is on.
    """
    loads = []
    for node_id, snap in stage_stats.items():
        mean = snap.recent_mean()
        rate = snap.rate()
        loads.append(StageLoad(node_id, min(1.0, mean * rate), mean, rate))
    ranked = [load for load in loads if load.throughput_per_s > 0 or load.mean_latency_s > 0]
    reasons: list[str] = []
    bottleneck = None
    if ranked:
        top = max(ranked, key=lambda load: (load.busy, load.mean_latency_s))
        bottleneck = top.node_id
        others = [load.busy for load in ranked if load is not top]
        runner_up = max(others) if others else 0.0
        reasons.append(
            f"it is busy {top.busy:.0%} of the time, the most of any stage "
            f"(next: {runner_up:.0%}); mean processing {top.mean_latency_s * 1e3:.2f} ms"
        )
        if state is not None:
            reasons.extend(_queue_evidence(bottleneck, state, capacities or {}, order or []))
    return Diagnosis(
        bottleneck=bottleneck,
        reasons=tuple(reasons),
        stages=tuple(loads),
        latency_p50_s=pipeline_latency.percentile(50),
        latency_p90_s=pipeline_latency.percentile(90),
        latency_p99_s=pipeline_latency.percentile(99),
        items=len(pipeline_latency.samples),
        losses={name: count for name, count in losses.items() if count},
    )


def diagnose_snapshot(snapshot: PipelineSnapshot) -> Diagnosis:
    """The diagnosis of one pipeline snapshot (what ``Pipeline.diagnose()`` returns)."""
    working = snapshot.working_stages()
    return diagnose(
        snapshot.latency,
        {stage.key: stage.latency for stage in working},
        {key: snapshot.counters.get(key, 0) for key in LOSS_COUNTERS},
        state=snapshot.state if snapshot.debug else None,
        capacities={
            stage.key: stage.queue_capacity
            for stage in snapshot.stages
            if stage.queue_capacity is not None
        },
        order=[stage.key for stage in working],
    )


def _queue_evidence(
    bottleneck: str, state: PipelineState, capacities: Mapping[str, int], order: list[str]
) -> list[str]:
    evidence = []
    node = state.node_states.get(bottleneck)
    port = node.input_states.get("in") if node is not None else None
    capacity = capacities.get(bottleneck)
    if port is not None and capacity:
        median = port.queue_stats.median_queued_recent
        if median >= capacity:
            evidence.append(
                f"its input queue is full most of the time (median {median} of {capacity} "
                "queued): the stages before it wait to hand items over"
            )
    if bottleneck in order:
        position = order.index(bottleneck)
        if position + 1 < len(order):
            follower = state.node_states.get(order[position + 1])
            if follower is not None and follower.main_loop_timing.is_valid():
                loop = follower.main_loop_timing.duration_stats.average_micros_recent
                waiting = follower.inputs_get_timing.duration_stats.average_micros_recent
                if loop > 0 and waiting / loop >= 0.5:
                    evidence.append(
                        f"{order[position + 1]} waits for its input {waiting / loop:.0%} "
                        "of its loop time"
                    )
    return evidence

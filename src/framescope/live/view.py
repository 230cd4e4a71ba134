"""What the live page draws, from one snapshot: a compact, JSON-ready dict.

The full ``snapshot.to_dict()`` carries every recent sample and trace (for
another box to merge); the page needs only the figures it shows, so one
event stays small (a few hundred bytes a stage).
"""

from __future__ import annotations

from typing import Any

from framescope.pipeline.diagnosis import diagnose_snapshot
from framescope.pipeline.snapshot import PipelineSnapshot
from framescope.pipeline.tree import SEPARATOR

__all__ = ["input_drops", "page_view"]


_NAMED = ("stage-bound", "stalled")
"""Verdicts whose ``bottleneck`` is the stage to outline (not merely the busiest one)."""


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def input_drops(snapshot: PipelineSnapshot, prefix: str = "") -> dict[str, int]:
    """Items lost at a pipeline's input (``rejected`` + ``dropped``), by its first stage's key.

    The overflow policies drop at the input queue, in front of the first
    working stage; ``prefix`` is the one the stage gets in a merged view.
    """
    working = snapshot.working_stages()
    lost = snapshot.counters.get("rejected", 0) + snapshot.counters.get("dropped", 0)
    if not working:
        return {}
    return {(f"{prefix}{SEPARATOR}" if prefix else "") + working[0].key: lost}


def page_view(
    snapshot: PipelineSnapshot,
    *,
    unreachable: dict[str, float | None] | None = None,
    drops: dict[str, int] | None = None,
    reasons: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The page's data: stages (state, input state, fps, p50/p90, queue, losses), verdict, totals.

    ``unreachable``: remote boxes that stopped answering, with the wall time
    (epoch seconds) of their last good snapshot; ``reasons``: why each is
    (``does not answer: ...``, ``answers garbage: ...``). ``drops``: items lost at each
    stage's input (default: :func:`input_drops` of ``snapshot``; a merged
    view passes those of its parts).
    """
    now = snapshot.taken_ns
    drops = input_drops(snapshot) if drops is None else drops
    inputs = (
        {
            node_id: node.input_states["in"].state
            for node_id, node in snapshot.state.node_states.items()
            if "in" in node.input_states
        }
        if snapshot.debug
        else {}
    )
    stages = []
    for stage in snapshot.stages:
        stats = stage.latency
        summary = stats.summary() if stats.count else None
        stages.append(
            {
                "key": stage.key,
                "stage": stage.stage,
                "state": stage.phase,
                "input": inputs.get(stage.key),
                "fps": round(stats.rate(now), 2) if stats.count else 0.0,
                "p50_ms": _ms(summary.median) if summary else None,
                "p90_ms": _ms(summary.p90) if summary else None,
                "queued": stage.queue_depth,
                "capacity": stage.queue_capacity,
                "failures": stage.failures,
                "dropped": drops.get(stage.key, 0),
                "working": stage.working,
                "replicas": stage.replicas,
                "replica_of": stage.replica_of,
                "held": stage.held,
            }
        )
    diagnosis = diagnose_snapshot(snapshot)
    latency = snapshot.latency
    end_to_end = latency.summary() if latency.count else None
    return {
        "pipeline": snapshot.pipeline,
        "mode": snapshot.mode,
        "wall_time": snapshot.wall_time.timestamp() if snapshot.wall_time else None,
        "stages": stages,
        "counters": dict(snapshot.counters),
        "latency_ms": {
            "p50": _ms(end_to_end.median),
            "p90": _ms(end_to_end.p90),
            "p99": _ms(end_to_end.p99),
        }
        if end_to_end
        else None,
        "fps": round(latency.rate(now), 2) if latency.count else 0.0,
        "verdict": diagnosis.verdict,
        "headline": diagnosis.headline,
        "bottleneck": diagnosis.bottleneck if diagnosis.verdict in _NAMED else None,
        "reasons": list(diagnosis.reasons),
        "suggestion": diagnosis.suggestion,
        "unreachable": dict(unreachable or {}),
        "unreachable_reasons": dict(reasons or {}),
    }

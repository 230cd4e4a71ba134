"""The live page: its HTML (:func:`page_html`) and what it draws of a snapshot (:func:`page_view`).

The page itself is ``page.html`` (self-contained: no CDN), which draws what
``/events`` sends. The full ``snapshot.to_dict()`` carries every recent
sample and trace (for another box to merge); the page needs only the
figures it shows, so one event stays small (a few hundred bytes a stage).
"""

from __future__ import annotations

import html
import importlib.resources
import json
from collections.abc import Iterable
from typing import Any

from framescope._keys import join_key
from framescope.live._clips import clip_url
from framescope.pipeline.model.batches import BatchSnapshot
from framescope.pipeline.model.clips import CLIP_DROP_REASONS, ClipEntry, ClipsSnapshot
from framescope.pipeline.model.cpu import CpuSplit, MachineLoad
from framescope.pipeline.model.latency import LATENCY_PARTS, SourceLatency
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.sources import SourceQuality
from framescope.pipeline.model.viewers import ViewerSnapshot
from framescope.pipeline.views.diagnosis import diagnose_snapshot
from framescope.pipeline.views.health import RECONNECT_LIMIT_S, Health, judge_health
from framescope.pipeline.views.tables import (
    batch_sizes_text,
    batch_text,
    bytes_text,
    clocks_text,
    cpu_text,
    machine_text,
)

__all__ = [
    "PAGE_CLIPS",
    "clips_view",
    "cpu_view",
    "input_drops",
    "latency_view",
    "machine_view",
    "page_html",
    "page_view",
    "source_views",
]


PAGE_CLIPS = 10
"""The newest clips of each recorder the page lists (``/snapshot.json`` has all the snapshot's)."""

_NAMED = ("stage-bound", "stalled")
"""Verdicts whose ``bottleneck`` is the stage to outline (not merely the busiest one)."""


def page_html(previews: Iterable[str], *, webrtc: bool = True) -> bytes:
    """The page, with the names of the ``previews`` filled in (and whether it tries WebRTC)."""
    text = importlib.resources.files("framescope.live").joinpath("page.html").read_text()
    names = html.escape(json.dumps(sorted(previews)), quote=True)
    video = "webrtc" if webrtc else "mjpeg"
    return text.replace(
        "<body>", f'<body data-previews="{names}" data-video="{video}">', 1
    ).encode()


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def cpu_view(split: CpuSplit | None) -> dict[str, Any] | None:
    """A stage's recent window in percent of its wall time: busy, on a CPU, waiting, blocked.

    None when not measured; ``waiting`` and ``blocked`` are None where only
    CPU time is known. ``text`` is the stage table's cell (``50/20/10%``).
    """
    if split is None:
        return None
    return {
        "busy": _percent(split.busy),
        "on_cpu": _percent(split.on_cpu),
        "waiting": _percent(split.waiting),
        "blocked": _percent(split.blocked),
        "window_s": round(split.window_s, 2),
        "threads": split.threads,
        "text": cpu_text(split),
    }


def machine_view(machine: MachineLoad | None) -> dict[str, Any] | None:
    """The machine's cores, busy percent of all of them, load average, this process's cores.

    ``text`` is the stage table's machine line.
    """
    if machine is None:
        return None
    return {
        "cores": machine.cores,
        "busy": _percent(machine.cpu_busy),
        "load1": None if machine.load1 is None else round(machine.load1, 2),
        "process_cores": None if machine.process_cores is None else round(machine.process_cores, 2),
        "text": machine_text(machine),
    }


def input_drops(snapshot: PipelineSnapshot, prefix: str = "") -> dict[str, int]:
    """Items lost at a pipeline's input (``rejected`` + ``dropped``), by its first stage's key.

    The overflow policies drop at the input queue, in front of the first
    working stage; ``prefix`` is the one the stage gets in a merged view.
    """
    working = snapshot.working_stages()
    lost = snapshot.count("rejected") + snapshot.count("dropped")
    if not working:
        return {}
    return {join_key(prefix, working[0].key): lost}


def _stage_views(snapshot: PipelineSnapshot, drops: dict[str, int]) -> list[dict[str, Any]]:
    """Each stage's (and replica's) entry of the page's data."""
    now = snapshot.taken_ns
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
                "cpu": cpu_view(stage.cpu),
                "batch": batch_view(stage.batch),
            }
        )
    return stages


def batch_view(batch: BatchSnapshot | None) -> dict[str, Any] | None:
    """A batched stage's batches for the page (None: not batched); ``text`` its one line."""
    if batch is None:
        return None
    wait = batch.wait
    return {
        "size": batch.size,
        "timeout_ms": _ms(batch.timeout_s),
        "batches": batch.batches,
        "mean_size": round(batch.mean_size, 2),
        "sizes": {str(size): count for size, count in sorted(batch.sizes.items())},
        "sizes_text": batch_sizes_text(batch.sizes),
        "reasons": dict(batch.reasons),
        "wait_p50_ms": _ms(wait.percentile(50)) if wait.count else None,
        "wait_p99_ms": _ms(wait.percentile(99)) if wait.count else None,
        "wait_max_ms": _ms(wait.maximum) if wait.count else None,
        "text": batch_text(batch),
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms2(seconds: float) -> float:
    return round(seconds * 1e3, 2)


def latency_view(latency: SourceLatency | None) -> dict[str, Any] | None:
    """A source's capture-to-glass split as its box's bar draws it (None: nothing timed yet).

    ``parts``: each part's p50 and p99 in ms, in order (None where not
    measured: ``capture`` for frames stamped ``received``, ``output`` with no
    output); ``total``: ``to_glass`` when frames reached the glass, else
    ``to_out``, with its p50 and p99; ``clock``: the capture clocks' text.
    """
    if latency is None or not latency.frames:
        return None
    parts = []
    for name in LATENCY_PARTS:
        figures = latency.figures(name)
        parts.append(
            {
                "name": name,
                "p50_ms": None if figures is None else _ms2(figures.p50),
                "p99_ms": None if figures is None else _ms2(figures.p99),
            }
        )
    total = "to_glass" if latency.figures("to_glass") is not None else "to_out"
    figures = latency.figures(total)
    return {
        "clock": clocks_text(latency.clocks),
        "parts": parts,
        "total": total,
        "p50_ms": None if figures is None else _ms2(figures.p50),
        "p99_ms": None if figures is None else _ms2(figures.p99),
    }


def source_views(snapshot: PipelineSnapshot, health: Health) -> list[dict[str, Any]]:
    """Each source of a many-source run as the page draws it: one box each.

    ``down`` is true for a source the health verdict names (stalled, failed,
    reconnecting for too long): the page greys its box and shows how long
    since its last frame. A blocked, degraded (frames come, slowly) or ended
    source is not down. ``up`` is the share of its last hour (``hour``
    seconds of it, until an hour has passed) frames came, ``of_nominal`` its
    fps over that time against its nominal rate (None where unknown).
    ``latency`` is :func:`latency_view` (the bar of its frames' age split).
    """
    down = {p.name for p in health.problems if p.kind == "source" and p.state != "degraded"}
    return [
        {
            "name": source.name,
            "state": source.state.value,
            "since": _seconds(source.since),
            "reason": source.reason,
            "fps": None if source.fps is None else round(source.fps, 2),
            "frames": source.frames,
            "dropped": source.dropped,
            "reconnects": source.reconnects,
            "last_frame_age": _seconds(source.last_frame_age),
            "down": source.name in down,
            **_quality_view(source.quality),
            "latency": latency_view(source.latency),
        }
        for source in snapshot.sources.values()
    ]


def _quality_view(quality: SourceQuality | None) -> dict[str, Any]:
    """A source's last hour, for its box."""
    if quality is None or not quality.window:
        return {"up": None, "hour": None, "of_nominal": None}
    ratio = quality.rate_ratio
    return {
        "up": round(quality.up, 4),
        "hour": round(quality.window, 1),
        "of_nominal": None if ratio is None else round(ratio, 3),
    }


def viewer_view(viewer: ViewerSnapshot) -> dict[str, Any]:
    """What the page shows of a WebRTC viewer: its figures, latencies in milliseconds."""
    latency = viewer.stage_to_screen.summary()
    timed = latency.count > 0
    return {
        "viewer": viewer.viewer,
        "preview": viewer.preview,
        "camera": viewer.camera,
        "codec": viewer.codec,
        "state": viewer.state,
        "sent": viewer.frames_sent,
        "dropped": viewer.frames_dropped,
        "placeholder": viewer.placeholder_frames,
        "presented": viewer.presented,
        "unmatched": viewer.unmatched,
        "timed": latency.count,
        "p50_ms": latency.median * 1e3 if timed else None,
        "p90_ms": latency.p90 * 1e3 if timed else None,
        "p99_ms": latency.p99 * 1e3 if timed else None,
        "max_ms": latency.maximum * 1e3 if timed else None,
        "offset_ms": None if viewer.clock_offset is None else viewer.clock_offset * 1e3,
        "uncertainty_ms": (
            None if viewer.clock_uncertainty is None else viewer.clock_uncertainty * 1e3
        ),
    }


def _clip_view(clip: ClipEntry, url: str | None) -> dict[str, Any]:
    return {
        "clip_id": clip.clip_id,
        "file": clip.file,
        "reason": clip.reason,
        "labels": dict(clip.labels),
        "triggers": clip.triggers,
        "start_time": clip.start_time,
        "duration_s": round(clip.duration_s, 2),
        "frames": clip.frames,
        "bytes": clip.bytes,
        "size": bytes_text(clip.bytes),
        "continues": clip.continues,
        "url": url,
    }


def clips_view(recorder: ClipsSnapshot, *, served: bool = True) -> dict[str, Any]:
    """What the page's box of an event-clip recorder shows: its counters and newest clips.

    ``dropped`` has every reason (:data:`CLIP_DROP_REASONS`) from 0;
    ``recent`` the newest :data:`PAGE_CLIPS` clips, newest first, each with
    its ``url`` on this view (``clips/<recorder>/<file>``, relative to the
    page) when ``served`` (the recorder is the view's own), else None (a
    remote box's: its files are on that box). ``size`` fields are
    :func:`~framescope.pipeline.views.tables.bytes_text`.
    """
    dropped = recorder.clips_dropped
    reasons = (*CLIP_DROP_REASONS, *sorted(set(dropped) - set(CLIP_DROP_REASONS)))
    return {
        "name": recorder.name,
        "mode": recorder.mode,
        "recording": recorder.recording,
        "triggers": recorder.triggers,
        "written": recorder.clips_written,
        "dropped": {reason: dropped.get(reason, 0) for reason in reasons},
        "dropped_total": recorder.dropped,
        "deleted": recorder.clips_deleted,
        "on_disk": recorder.clips_on_disk,
        "bytes_on_disk": recorder.bytes_on_disk,
        "size": bytes_text(recorder.bytes_on_disk),
        "ring_bytes": recorder.ring_bytes,
        "ring_seconds": round(recorder.ring_seconds, 2),
        "frames_dropped": recorder.frames_dropped,
        "last_error": recorder.last_error,
        "served": served,
        "recent": [
            _clip_view(clip, clip_url(recorder.name, clip.file) if served else None)
            for clip in recorder.recent[:PAGE_CLIPS]
        ],
    }


def page_view(
    snapshot: PipelineSnapshot,
    *,
    unreachable: dict[str, float | None] | None = None,
    drops: dict[str, int] | None = None,
    reasons: dict[str, str] | None = None,
    stall_after: float = 5.0,
    reconnect_limit: float = RECONNECT_LIMIT_S,
    served_clips: int | None = None,
) -> dict[str, Any]:
    """The page's data: stages (state, input, fps, p50/p90, queue, losses, CPU), verdict, totals.

    Each stage's ``cpu`` is :func:`cpu_view` of its split, a batched stage's
    ``batch`` :func:`batch_view` of its batches; ``machine`` is
    :func:`machine_view` of the machine's load; ``batching`` the diagnosis's
    advice on batch sizes.

    ``unreachable``: remote boxes that stopped answering, with the wall time
    (epoch seconds) of their last good snapshot; ``reasons``: why each is
    (``does not answer: ...``, ``answers garbage: ...``). ``drops``: items lost at each
    stage's input (default: :func:`input_drops` of ``snapshot``; a merged
    view passes those of its parts).

    ``sources`` is :func:`source_views` (a many-source run's cameras);
    ``health`` the verdict ``/healthz`` gives: its status and one line per problem.
    ``stall_after`` and ``reconnect_limit`` are the verdicts' bounds
    (:func:`~framescope.pipeline.views.health.judge_health`).

    ``clips`` is :func:`clips_view` of each event-clip recorder; the first
    ``served_clips`` of ``snapshot.clips`` are the view's own, whose files
    it serves (None: all; a merged view's remote recorders come after its own).
    """
    now = snapshot.taken_ns
    gone = {box: (reasons or {}).get(box) or "does not answer" for box in unreachable or {}}
    health = judge_health(
        snapshot, stall_after=stall_after, reconnect_limit=reconnect_limit, unreachable=gone
    )
    stages = _stage_views(snapshot, input_drops(snapshot) if drops is None else drops)
    diagnosis = diagnose_snapshot(snapshot, stall_after=stall_after)
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
        "batching": list(diagnosis.batching),
        "unreachable": dict(unreachable or {}),
        "unreachable_reasons": dict(reasons or {}),
        "machine": machine_view(snapshot.machine),
        "sources": source_views(snapshot, health),
        "clips": [
            clips_view(recorder, served=served_clips is None or index < served_clips)
            for index, recorder in enumerate(snapshot.clips)
        ],
        "health": {
            "status": health.status,
            "problems": [f"{p.kind} {p.name} {p.state} ({p.reason})" for p in health.problems],
        },
    }

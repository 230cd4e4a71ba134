"""Per-frame traces rendered as Chrome Trace Event JSON (opens in Perfetto).

:func:`chrome_trace` turns a list of :class:`FrameTrace` objects (plain data, in
``framescope.pipeline.model.traces``) into the Trace Event format: one track
per stage thread, a slice per stage call (custom blocks nested inside; one
slice per batch at a batched stage, every frame of it flowing in), flow
arrows linking one frame across its stages, a track of whole frames, and
counter tracks for queue depth and throughput, and, given each stage's CPU
readings, a counter track per stage of its time on a CPU, waiting for one and
blocked. :func:`write_trace` saves it, gzip-compressed when the path ends in
``.gz``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from framescope._files import replace_file
from framescope._keys import leaf_name
from framescope.pipeline.model.sources import SourceSnapshot
from framescope.pipeline.model.traces import FrameTrace, StageSpan

__all__ = ["CpuSeries", "chrome_trace", "write_trace"]

_PID = 1

CpuSeries = Sequence[tuple[int, float, float | None, float | None]]
"""A stage's CPU readings: ``(taken_ns, on_cpu, waiting, blocked)``, each a share of the
interval since the reading before (``CpuSplit.series``; None: not known)."""


def _check_sequence(value: object, name: str, kind: type) -> None:
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of {kind.__name__}, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, kind):
            raise TypeError(f"{name} must hold {kind.__name__} objects, got {type(item).__name__}")


def _us(t_ns: int, origin: int) -> float:
    return (t_ns - origin) / 1_000


def chrome_trace(
    frames: Sequence[FrameTrace],
    node_ids: Sequence[str],
    *,
    title: str = "framescope",
    cpu: Mapping[str, CpuSeries] | None = None,
    sources: Mapping[str, SourceSnapshot] | None = None,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """Render frame traces as a Chrome Trace Event document (a JSON-ready dict).

    ``sources`` (a many-source run's ``snapshot.sources``) adds a track per
    source, ``"source <name>"``, with a slice for each state it was in (its
    kept history), the last one up to ``now_ns`` (the snapshot's
    ``taken_ns``; without it, the last state is drawn as an instant).

    ``cpu`` maps a stage (or replica) key to its CPU readings
    (``StageSnapshot.cpu.series``): each becomes a counter track
    ``"<key> cpu"`` with ``on_cpu``, ``waiting`` and ``blocked`` in percent of
    the wall time, each reading drawn from the reading before it to its own
    (the first reading, whose interval starts before the readings kept, is
    left out; a share not known is left out of its args).
    """
    _check_sequence(frames, "frames", FrameTrace)
    _check_sequence(node_ids, "node_ids", str)
    tids = {node_id: index + 1 for index, node_id in enumerate(node_ids)}
    events = _track_names(title, tids)
    cpu = {} if cpu is None else cpu
    sources = {} if sources is None else sources
    starts = [frame.t_in for frame in frames]
    starts.extend(series[0][0] for series in cpu.values() if len(series) > 1)
    starts.extend(source.history[0][0] for source in sources.values() if source.history)
    if not starts:
        return {"traceEvents": events, "displayTimeUnit": "ms"}
    origin = min(starts)
    for key, series in cpu.items():
        events.extend(_cpu_counter(key, series, origin))
    last_sent: dict[str, tuple[int, int]] = {}  # node -> (t_sent, frame id) of its last span
    last_node = node_ids[-1] if node_ids else None
    batches = _batches(frames)
    for frame in sorted(frames, key=lambda f: f.frame_id):
        events.extend(_frame_slice(frame, last_node, origin))
        for index, span in enumerate(frame.spans):
            tid = tids.setdefault(span.node_id, len(tids) + 1)
            events.extend(_span_events(frame, index, span, tid, origin, batches=batches))
            events.extend(_fps_counter(frame.frame_id, span, origin, last_sent))
    for source in sources.values():  # after the stages' tracks, every one of them numbered
        events.extend(_source_track(source, len(tids) + 1, origin, now_ns))
        tids[f"source {source.name}"] = len(tids) + 1
    return {"traceEvents": events, "displayTimeUnit": "ms"}


_Batches = dict[tuple[str, int], dict[int, StageSpan]]
"""The sampled frames of each batch of a batched stage: (node, batch id) -> frame id -> span."""


def _batches(frames: Sequence[FrameTrace]) -> _Batches:
    batches: _Batches = {}
    for frame in frames:
        for span in frame.spans:
            if span.batch_id is not None:
                batches.setdefault((span.node_id, span.batch_id), {})[frame.frame_id] = span
    return batches


def _stage_slice(
    frame: FrameTrace, span: StageSpan, tid: int, origin: int, batches: _Batches
) -> list[dict[str, Any]]:
    """The slice of a stage call: one a frame, or one a batch (drawn with its first frame).

    A batch's slice names every sampled frame of it, and each one's wait in
    the forming batch; each frame's flow arrow ends in it.
    """
    args: dict[str, Any] = {"frame": frame.frame_id, "node": span.node_id}
    name = leaf_name(span.node_id)
    if span.batch_id is not None:
        members = batches.get((span.node_id, span.batch_id), {})
        if members and frame.frame_id != min(members):
            return []
        name = f"{name} batch of {span.batch_size}"
        args = {
            "node": span.node_id,
            "batch_id": span.batch_id,
            "batch_size": span.batch_size,
            "frames": sorted(members),
            "queue_wait_ms": {str(f): s.wait_ns / 1e6 for f, s in sorted(members.items())},
            "batch_wait_ms": {str(f): s.batch_wait_ns / 1e6 for f, s in sorted(members.items())},
            "queued": span.queued,
        }
    else:
        args.update({"queue_wait_ms": span.wait_ns / 1e6, "queued": span.queued})
    return [
        {
            "name": name,
            "cat": "stage",
            "ph": "X",
            "pid": _PID,
            "tid": tid,
            "ts": _us(span.t_start, origin),
            "dur": max(span.busy_ns, 0) / 1_000,
            "args": args,
        }
    ]


def _track_names(title: str, tids: dict[str, int]) -> list[dict[str, Any]]:
    """The metadata events that name the process and its tracks: frames first, then each node."""
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": _PID, "args": {"name": title}},
        {"name": "thread_name", "ph": "M", "pid": _PID, "tid": 0, "args": {"name": "frames"}},
    ]
    for node_id, tid in tids.items():
        events.extend(_track(tid, node_id))
    return events


def _track(tid: int, name: str) -> list[dict[str, Any]]:
    """The metadata events of one track: its name, and its place (its number) in the list."""
    return [
        {"name": "thread_name", "ph": "M", "pid": _PID, "tid": tid, "args": {"name": name}},
        {
            "name": "thread_sort_index",
            "ph": "M",
            "pid": _PID,
            "tid": tid,
            "args": {"sort_index": tid},
        },
    ]


def _source_track(
    source: SourceSnapshot, tid: int, origin: int, now_ns: int | None
) -> list[dict[str, Any]]:
    """A source's track: its name, then a slice per state it was in (the last up to now)."""
    events = _track(tid, f"source {source.name}")
    history = source.history
    for index, (start, state) in enumerate(history):
        end = history[index + 1][0] if index + 1 < len(history) else now_ns
        args: dict[str, Any] = {"source": source.name}
        if index == len(history) - 1 and source.reason:
            args["reason"] = source.reason
        events.append(
            {
                "name": state.value,
                "cat": "source",
                "ph": "X",
                "pid": _PID,
                "tid": tid,
                "ts": _us(start, origin),
                "dur": 0.0 if end is None else max(end - start, 0) / 1_000,
                "args": args,
            }
        )
    return events


def _frame_slice(frame: FrameTrace, last_node: str | None, origin: int) -> list[dict[str, Any]]:
    """The begin and end of one frame's async slice on the frames track."""
    # Frames overlap in time (several are in flight at once), so each is an
    # async slice of its own: nothing overlaps on a thread track.
    finished = bool(frame.spans) and frame.spans[-1].node_id == last_node
    frame_args: dict[str, Any] = {"frame": frame.frame_id}
    if finished:
        frame_args["latency_ms"] = frame.latency_ns / 1e6
    else:
        frame_args["unfinished"] = True  # still in flight when the trace was taken
    common = {"name": f"frame {frame.frame_id}", "cat": "frame", "pid": _PID, "tid": 0}
    common["id"] = frame.frame_id
    return [
        {**common, "ph": "b", "ts": _us(frame.t_in, origin), "args": frame_args},
        {**common, "ph": "e", "ts": _us(max(frame.t_out, frame.t_in), origin)},
    ]


def _span_events(
    frame: FrameTrace, index: int, span: StageSpan, tid: int, origin: int, *, batches: _Batches
) -> list[dict[str, Any]]:
    """One stage's span of a frame: its slice, its custom blocks, the flow arrow, the queue."""
    start = _us(span.t_start, origin)
    events = _stage_slice(frame, span, tid, origin, batches)
    for name, block_start, block_end in span.custom:
        events.append(
            {
                "name": name,
                "cat": "custom",
                "ph": "X",
                "pid": _PID,
                "tid": tid,
                "ts": _us(block_start, origin),
                "dur": max(block_end - block_start, 0) / 1_000,
                "args": {"frame": frame.frame_id},
            }
        )
    if len(frame.spans) > 1:
        phase = "s" if index == 0 else ("f" if index == len(frame.spans) - 1 else "t")
        flow: dict[str, Any] = {
            "name": "frame",
            "cat": "flow",
            "ph": phase,
            "id": frame.frame_id,
            "pid": _PID,
            "tid": tid,
            "ts": start,
        }
        if phase != "s":
            flow["bp"] = "e"
        events.append(flow)
    events.append(
        {
            "name": "queue depth",
            "ph": "C",
            "pid": _PID,
            "ts": start,
            "args": {span.node_id: span.queued},
        }
    )
    return events


def _cpu_counter(key: str, series: CpuSeries, origin: int) -> list[dict[str, Any]]:
    """One stage's CPU counter: each reading's shares, in percent, from the reading before."""
    events = []
    for (start, *_), (_, *shares) in itertools.pairwise(series):
        args = {
            name: round(share * 100, 1)
            for name, share in zip(("on_cpu", "waiting", "blocked"), shares, strict=True)
            if share is not None
        }
        events.append(
            {"name": f"{key} cpu", "ph": "C", "pid": _PID, "ts": _us(start, origin), "args": args}
        )
    return events


def _fps_counter(
    frame_id: int, span: StageSpan, origin: int, last_sent: dict[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """The node's fps since its previous span in the trace (none for its first); notes this one."""
    events: list[dict[str, Any]] = []
    previous = last_sent.get(span.node_id)
    if previous is not None and span.t_sent > previous[0]:
        # Frame ids count every frame, sampled into the trace or not.
        passed = frame_id - previous[1]
        events.append(
            {
                "name": "fps",
                "ph": "C",
                "pid": _PID,
                "ts": _us(span.t_sent, origin),
                "args": {span.node_id: passed * 1e9 / (span.t_sent - previous[0])},
            }
        )
    last_sent[span.node_id] = (span.t_sent, frame_id)
    return events


def write_trace(path: str | os.PathLike[str], document: dict[str, Any]) -> Path:
    """Write a trace document as JSON, gzip-compressed when ``path`` ends in ``.gz``.

    The file is written whole or not at all: into a temporary file in the
    same folder, then renamed over ``path``. A symbolic link at ``path`` is
    replaced by the file, never written through.
    """
    import gzip  # noqa: PLC0415 - loaded on first use (cold start)

    target = Path(path)
    try:
        data = json.dumps(document, separators=(",", ":")).encode()
    except (TypeError, ValueError) as error:
        raise type(error)(f"document must be JSON data (a chrome_trace result): {error}") from None
    if target.suffix == ".gz":
        data = gzip.compress(data)
    replace_file(target, data)
    return target

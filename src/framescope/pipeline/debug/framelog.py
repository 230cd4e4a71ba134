"""The raw material of frame traces, and how it is joined into :class:`FrameTrace` objects.

The aggregator keeps, per node, a bounded ring of the flat iteration values
of sampled frames, and a ring of custom blocks. A snapshot copies them (a few
list copies, cheap) and joins them into frame traces only when somebody reads
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain

from framescope.pipeline.model.events import IterationRecord, iteration_records
from framescope.pipeline.model.traces import FrameTrace, StageSpan

__all__ = ["BatchMark", "Block", "TraceMaterial", "join_traces"]

Block = tuple[int, int, str, int, int]
"""A custom block of a sampled frame: (frame id, node index, name, start ns, end ns)."""

BatchMark = tuple[int, int, int, int, int, int, int]
"""A sampled frame's batch at a batched node: (frame id, node index, batch id, batch size,
joined ns, call start ns, call end ns)."""


@dataclass(frozen=True, slots=True)
class TraceMaterial:
    """The trace rings at one moment: per node (in ``node_ids`` order) chunks of flat values.

    Each chunk is a sequence of flat iteration values (as recorded), shared
    with the aggregator rather than copied: nobody modifies a chunk once the
    aggregator has stored it (it is the list one drain took, kept as is).
    """

    node_ids: tuple[str, ...] = ()
    rings: tuple[tuple[Sequence[int], ...], ...] = ()
    blocks: tuple[Block, ...] = ()
    keep: int = 1000
    batches: tuple[BatchMark, ...] = ()


def join_traces(material: TraceMaterial) -> tuple[FrameTrace, ...]:
    """Join the rings into one trace per sampled frame, oldest first (at most ``keep``)."""
    frames: dict[int, tuple[int, dict[int, IterationRecord]]] = {}
    for index, ring in enumerate(material.rings):
        for record in iteration_records(list(chain.from_iterable(ring))):
            entry = frames.setdefault(record.frame_id, (record.t_in, {}))
            entry[1][index] = record
    blocks: dict[tuple[int, int], list[tuple[str, int, int]]] = {}
    for frame, index, name, start, end in material.blocks:
        blocks.setdefault((frame, index), []).append((name, start, end))
    batches = {(mark[0], mark[1]): mark[2:] for mark in material.batches}
    traces = []
    for frame in sorted(frames)[-material.keep :]:
        t_in, records = frames[frame]
        spans = []
        ready = t_in
        for index in sorted(records):
            record = records[index]
            span = StageSpan(
                material.node_ids[index],
                t_ready=ready,
                t_start=record.t_got,
                t_end=record.t_send,
                t_sent=record.t_sent,
                queued=record.queued,
                custom=tuple(blocks.get((frame, index), ())),
            )
            batch = batches.get((frame, index))
            if batch is not None:  # the batch's call, and when the frame joined it
                batch_id, size, joined, start, end = batch
                span = replace(
                    span,
                    t_start=start,
                    t_end=end,
                    batch_id=batch_id,
                    batch_size=size,
                    t_joined=joined,
                )
            spans.append(span)
            ready = record.t_sent
        traces.append(FrameTrace(frame, t_in, tuple(spans)))
    return tuple(traces)

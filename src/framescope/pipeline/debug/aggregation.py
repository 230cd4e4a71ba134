"""The aggregator: drains every node's records in batches and keeps its statistics.

One aggregator per pipeline runs in its own named thread and drains at a fixed
interval (default 100 ms), sooner when a node's backlog is large. While
nothing is recorded it checks less often (every 0.1 s at most) and its
periodic round, with the CPU reading, comes once a second; the first record
brings back the usual interval. A state query drains once more first, so what it
returns is current. Everything the aggregator keeps goes through the shared
statistics engine (:class:`~framescope.stats.RollingStats`).
"""

from __future__ import annotations

import functools
import logging
import threading
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from framescope.clock import Clock, wait_on
from framescope.folds import numpy_columns, numpy_loaded, samples, spans
from framescope.pipeline.debug.framelog import BatchMark, Block, TraceMaterial
from framescope.pipeline.debug.nodestate import (
    EVENTS_PER_ITERATION,
    NodeReading,
    in_micros,
    timing_from,
)
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.events import (
    BATCH_FIELDS,
    ITERATION_FIELDS,
    EventInterval,
    EventType,
    Field,
    RawEvent,
)
from framescope.stats import RollingStats, StatsSnapshot

__all__ = ["Aggregator", "NodeLink", "in_micros", "timing_from"]

logger = logging.getLogger(__name__)

_MAX_OPEN_CUSTOM = 4096
_POLL_S = 0.01
_IDLE_POLL_S = 0.25
"""The longest pause between backlog checks while nothing is recorded (a burst waits no longer).

Each wake of an idle thread costs some 0.1-0.2 ms of CPU on a small VM: at 0.1 s an idle
debugging pipeline spent about 2.2 ms of CPU a second, at 0.25 s about 1.2.
"""
_IDLE_DRAIN_NS = 1_000_000_000
"""The interval of the periodic round (and its CPU reading) while nothing is recorded."""
_EARLY_DRAIN_AT = 512
"""Backlog of a node (records) that triggers a drain before the interval is up.

Folding small batches in pure Python while they are still in the CPU cache
costs less than folding one large batch, so a busy pipeline is drained often.
"""
_EARLY_DRAIN_AT_WITH_NUMPY = 2048
"""The same when the folds use NumPy: each fold then costs mostly a fixed
amount, so batches four times larger cost 60% less per record (measured)."""


def _durations(window: int) -> RollingStats:
    return RollingStats(window, divisor=1_000)  # nanoseconds in, microseconds out


@dataclass(frozen=True)
class NodeLink:
    """What the aggregator needs to know about a node's place in the pipeline.

    ``inbox_length`` and ``capacity`` describe its input queue (None without
    one); ``upstream_sending`` tells whether whoever feeds that queue is
    waiting to put an item in; ``out_capacity`` is the size of the queue the
    node sends to; ``fallback`` gives the stage's own timer when the node
    records no iterations (serial mode).
    """

    node_id: str
    recorder: EventRecorder
    inbox_length: Callable[[], int] | None = None
    capacity: int | None = None
    upstream_sending: Callable[[], bool] | None = None
    out_capacity: int | None = None
    fallback: Callable[[], StatsSnapshot] | None = None


class _NodeAggregate:
    """Everything the aggregator keeps about one node."""

    def __init__(self, window: int, events_kept: int) -> None:
        self.loop = _durations(window)
        self.inputs_get = _durations(window)
        self.outputs_send = _durations(window)
        self.queued = RollingStats(window)
        self.other: dict[str, RollingStats] = {}
        self.open_custom: dict[tuple[str, int], int] = {}
        self.unpaired = 0
        self.recent_iterations: array[int] = array("q")  # flat values of the newest iterations
        self.events_kept = events_kept
        self.recent_custom: deque[RawEvent] = deque(maxlen=events_kept)
        self.window = window

    def absorb_iterations(self, flat: array[int]) -> None:
        """Fold a drained run of flat iteration values into the statistics.

        An iteration starts where the one before it was handed on (the worker
        reads the clock once for both), so its loop time is ``t_sent - t_get``.
        """
        width, window = Field.WIDTH, self.window
        columns = numpy_columns(flat, width)
        if columns is None:
            columns = [flat[field::width] for field in range(width)]
        starts, got = columns[Field.T_GET], columns[Field.T_GOT]
        sends, sent = columns[Field.T_SEND], columns[Field.T_SENT]
        self.loop.add_batch(spans(starts, sent, window))
        self.inputs_get.add_batch(spans(starts, got, window))
        self.outputs_send.add_batch(spans(sends, sent, window))
        self.queued.add_batch(samples(columns[Field.QUEUED], window))
        keep_tail(self.recent_iterations, flat, self.events_kept * width)

    def absorb_custom(
        self, events: list[RawEvent], on_block: Callable[[str, int, int, int | None], None]
    ) -> None:
        for raw in events:
            kind, interval, _status, _queue, source, timestamp, sequence, frame = raw
            if kind != EventType.CUSTOM:
                continue
            key = (source, sequence)
            if interval == EventInterval.START:
                if len(self.open_custom) >= _MAX_OPEN_CUSTOM:
                    self.open_custom.pop(next(iter(self.open_custom)))
                    self.unpaired += 1
                self.open_custom[key] = timestamp
            elif interval == EventInterval.END:
                started = self.open_custom.pop(key, None)
                if started is None:
                    self.unpaired += 1
                    continue
                stats = self.other.get(source)
                if stats is None:
                    stats = self.other[source] = _durations(self.window)
                stats.add(timestamp - started, timestamp)
                on_block(source, started, timestamp, frame)
        self.recent_custom.extend(events)


def keep_tail(kept: array[int], new: array[int], limit: int) -> None:
    """Append ``new`` to ``kept`` and trim ``kept`` to its last ``limit`` values."""
    kept.extend(new[-limit:])
    del kept[:-limit]


class Aggregator:
    """Drains the nodes' records at ``interval_s`` and reads every node on demand.

    A node with a large backlog (a busy pipeline) is drained sooner.

    Args:
        name: the pipeline's name (used in the thread name).
        links: one :class:`NodeLink` per node, in pipeline order.
        clock: the pipeline's clock.
        interval_s: seconds between drains (> 0).
        window: recent samples per statistic.
        events_kept: recent events kept per node for ``NodeState.events``.
    """

    def __init__(
        self,
        name: str,
        links: Sequence[NodeLink],
        clock: Clock,
        *,
        interval_s: float = 0.1,
        window: int = 100,
        events_kept: int = 32,
        trace_every: int = 1,
        trace_frames: int = 1000,
    ) -> None:
        self.links = list(links)
        self._clock = clock
        self._interval_s = interval_s
        self._events_kept = events_kept
        self._trace_every = trace_every
        self._trace_frames = trace_frames
        # Bounded rings of raw material; joined into frame traces only when asked.
        # Per node, immutable chunks of flat iteration values (one per drain): a
        # snapshot shares the chunks instead of copying every value.
        self._trace_rings: list[deque[array[int]]] = [deque() for _ in self.links]
        self._trace_sizes = [0] * len(self.links)
        self._block_ring: deque[Block] = deque(maxlen=trace_frames * 8)
        self._batch_ring: deque[BatchMark] = deque(maxlen=trace_frames * 4)
        self._nodes = {link.node_id: _NodeAggregate(window, events_kept) for link in self.links}
        self._lock = threading.Lock()
        self.after_drain: Callable[[], object] | None = None
        """Called after each timed drain (the CPU accounting's sampling)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"framescope:{name}:aggregator")

    def start(self) -> None:
        """Start draining in the background."""
        self._thread.start()

    def _run(self) -> None:
        interval_ns = round(self._interval_s * 1e9)
        quick = min(self._interval_s, _POLL_S)
        idle_poll = max(quick, _IDLE_POLL_S)  # idle, nothing to drain: the interval waits too
        poll = quick
        recorders = [link.recorder for link in self.links]
        now, stop, clock = self._clock.monotonic_ns, self._stop, self._clock
        due = now() + interval_ns
        main = threading.main_thread()
        while not (wait_on(clock, stop, poll) or stop.is_set()):
            if not main.is_alive():  # a pipeline nobody cleaned up must not hold the exit
                return
            backlog = max(map(EventRecorder.backlog, recorders), default=0)
            # Idle, the checks slow down (a burst is noticed within _IDLE_POLL_S).
            poll = quick if backlog else min(poll * 2, idle_poll)
            if backlog and due - now() > interval_ns:  # recording again: the usual interval
                due = now() + interval_ns
            early = _EARLY_DRAIN_AT_WITH_NUMPY if numpy_loaded() else _EARLY_DRAIN_AT
            if now() < due and backlog < early:
                continue
            due = now() + (interval_ns if backlog else max(interval_ns, _IDLE_DRAIN_NS))
            try:
                if backlog:
                    self.drain()
                if self.after_drain is not None:
                    self.after_drain()
            except Exception:  # keep aggregating: one bad batch must not end debugging
                logger.exception("pipeline aggregator failed on a batch")

    def stop(self, timeout: float | None) -> bool:
        """Stop the thread (after one last drain); True when it ended within ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.drain()
        return not self._thread.is_alive()

    def drain(self) -> None:
        """Fold every node's new records into its statistics."""
        with self._lock:
            for index, link in enumerate(self.links):
                node = self._nodes[link.node_id]
                iterations = link.recorder.drain_iterations()
                if iterations:
                    node.absorb_iterations(iterations)
                    self._trace_iterations(index, iterations)
                marks = link.recorder.drain_batches()
                if marks:
                    self._trace_batches(index, marks)
                custom = link.recorder.drain()
                if custom:
                    node.absorb_custom(custom, functools.partial(self._trace_block, index))

    def _trace_iterations(self, index: int, flat: array[int]) -> None:
        width, every = ITERATION_FIELDS, self._trace_every
        if every != 1:
            frames = flat[Field.FRAME_ID :: width]
            flat = array(
                "q",
                [
                    value
                    for position, frame in enumerate(frames)
                    if not frame % every
                    for value in flat[position * width : (position + 1) * width]
                ],
            )
        if not flat:
            return
        limit = self._trace_frames * width
        ring = self._trace_rings[index]
        # The drained list is this drain's own and never modified again: kept as is.
        chunk = flat if len(flat) <= limit else flat[-limit:]
        ring.append(chunk)
        size = self._trace_sizes[index] + len(chunk)
        while size - len(ring[0]) >= limit:  # the newer chunks still hold ``limit`` values
            size -= len(ring.popleft())
        self._trace_sizes[index] = size

    def _trace_batches(self, index: int, flat: array[int]) -> None:
        """Keep the batch marks of sampled frames (a batched stage's, for the traces)."""
        every, ring = self._trace_every, self._batch_ring
        for at in range(0, len(flat) - BATCH_FIELDS + 1, BATCH_FIELDS):
            frame, batch_id, size, joined, start, end = flat[at : at + BATCH_FIELDS]
            if not frame % every:
                ring.append((frame, index, batch_id, size, joined, start, end))

    def _trace_block(self, index: int, name: str, start: int, end: int, frame: int | None) -> None:
        if frame is not None and not frame % self._trace_every:
            self._block_ring.append((frame, index, name, start, end))

    def read(self) -> tuple[tuple[NodeReading, ...], TraceMaterial]:
        """Drain once, then read every node and copy the trace rings, at one instant.

        The readings are rendered into node states, the material joined into
        frame traces, by the reader.
        """
        self.drain()
        now = self._clock.monotonic_ns()
        with self._lock:
            readings = tuple(self._reading(link, now) for link in self.links)
            material = TraceMaterial(
                tuple(link.node_id for link in self.links),
                tuple(tuple(ring) for ring in self._trace_rings),  # chunk references
                tuple(self._block_ring),
                self._trace_frames,
                tuple(self._batch_ring),
            )
        return readings, material

    def readings(self) -> tuple[NodeReading, ...]:
        """Drain, then read every node now."""
        return self.read()[0]

    def _reading(self, link: NodeLink, now: int) -> NodeReading:
        node = self._nodes[link.node_id]
        loop_stats = node.loop.snapshot()
        if not loop_stats.count and link.fallback is not None:
            loop_stats = in_micros(link.fallback())  # serial mode: the stage's own timer
        # Only the newest records can hold the newest events_kept events.
        records = self._events_kept // EVENTS_PER_ITERATION + 1
        return NodeReading(
            node_id=link.node_id,
            taken_ns=now,
            phase=link.recorder.phase,
            loop=loop_stats,
            inputs_get=node.inputs_get.snapshot(),
            outputs_send=node.outputs_send.snapshot(),
            queued_stats=node.queued.snapshot() if link.inbox_length is not None else None,
            queued=link.inbox_length() if link.inbox_length is not None else None,
            capacity=link.capacity,
            upstream_sending=link.upstream_sending is not None and link.upstream_sending(),
            out_capacity=link.out_capacity,
            other={name: stats.snapshot() for name, stats in node.other.items()},
            recent_iterations=tuple(node.recent_iterations[-records * ITERATION_FIELDS :]),
            recent_custom=tuple(node.recent_custom),
            events_kept=self._events_kept,
            unpaired=node.unpaired,
        )

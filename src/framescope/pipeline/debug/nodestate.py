"""Node states, DepthAI style, rendered from frozen per-node readings of the aggregator.

The aggregator reads each node into a :class:`NodeReading` (statistics
snapshots, queue numbers, the newest records) under its lock; turning that
into a :class:`~framescope.pipeline.NodeState` (timings, queue states,
expanded events) is a pure function, :func:`node_state`, run only when
somebody reads the state.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace

from framescope.pipeline.model.events import (
    EventInterval,
    EventStatus,
    EventType,
    IterationRecord,
    NodePhase,
    PipelineEvent,
    RawEvent,
    iteration_records,
)
from framescope.pipeline.model.state import (
    DurationStats,
    InputQueueState,
    NodeState,
    OutputQueueState,
    PipelineState,
    QueueStats,
    Timing,
)
from framescope.stats import StatsSnapshot

__all__ = [
    "EVENTS_PER_ITERATION",
    "NodeReading",
    "decayed_fps",
    "expand_iteration",
    "in_micros",
    "node_state",
    "pipeline_state",
    "timing_from",
]


def decayed_fps(stats: StatsSnapshot, now_ns: int) -> float:
    """Events per second over the last 5 s before ``now_ns``: 0 within 5 s of the last event.

    While events keep coming this is the node's rate; once they stop it falls
    linearly to 0 over the window (see :meth:`StatsSnapshot.rate`).
    """
    return stats.rate(now_ns)


def timing_from(stats: StatsSnapshot, now_ns: int) -> Timing:
    """Turn a snapshot of durations in microseconds into a :class:`Timing`."""
    if not stats.count:
        return Timing()
    summary = stats.summary()
    return Timing(
        fps=decayed_fps(stats, now_ns),
        duration_stats=DurationStats(
            min_micros=summary.minimum,
            max_micros=summary.maximum,
            average_micros_recent=summary.recent_mean,
            std_dev_micros_recent=summary.stddev,
            min_micros_recent=summary.recent_min,
            max_micros_recent=summary.recent_max,
            median_micros_recent=summary.median,
            p90_micros_recent=summary.p90,
            p99_micros_recent=summary.p99,
        ),
        count=summary.count,
    )


EVENTS_PER_ITERATION = 9
"""Events one iteration record stands for (see :func:`expand_iteration`)."""


def expand_iteration(
    node_id: str, record: IterationRecord, out_capacity: int | None
) -> list[PipelineEvent]:
    """The LOOP, INPUT(_BLOCK) and OUTPUT(_BLOCK) events one iteration record stands for.

    The OUTPUT start is BLOCKED when the queue it sends to was full at that moment.
    """
    sequence, frame, t_get, q_before, t_got, t_send, out_before, t_sent, sent, _ = record
    ok, none = EventStatus.SUCCESS, EventInterval.NONE
    start, end = EventInterval.START, EventInterval.END
    full = out_before is not None and out_capacity is not None and out_before >= out_capacity
    send_status = EventStatus.BLOCKED if full else ok
    done = ok if sent else EventStatus.CANCELLED
    # (type, interval, status, queue size, source, time, frame id known yet)
    rows = (
        (EventType.LOOP, none, ok, None, "loop", t_get, False),
        (EventType.INPUT_BLOCK, start, ok, None, "inputs", t_get, False),
        (EventType.INPUT, start, ok, q_before, "in", t_get, False),
        (EventType.INPUT, end, ok, None, "in", t_got, True),
        (EventType.INPUT_BLOCK, end, ok, None, "inputs", t_got, True),
        (EventType.OUTPUT_BLOCK, start, ok, None, "outputs", t_send, True),
        (EventType.OUTPUT, start, send_status, out_before, "out", t_send, True),
        (EventType.OUTPUT, end, done, None, "out", t_sent, True),
        (EventType.OUTPUT_BLOCK, end, done, None, "outputs", t_sent, True),
    )
    return [
        PipelineEvent(
            node_id, kind, interval, status, queue, source, t, sequence, frame if known else None
        )
        for kind, interval, status, queue, source, t, known in rows
    ]


def in_micros(stats: StatsSnapshot) -> StatsSnapshot:
    """Re-express a snapshot of seconds (a stage's StopWatch) in microseconds."""
    return replace(
        stats,
        divisor=stats.divisor / 1e6,
        total=stats.total * 1e6,
        minimum=stats.minimum * 1e6,
        maximum=stats.maximum * 1e6,
    )


@dataclass(frozen=True, slots=True)
class NodeReading:
    """Everything about one node at one moment that its :class:`NodeState` is made from.

    Durations are statistics in microseconds; ``queued`` is the length of its
    input queue (None without one); ``recent_iterations`` holds the flat values
    of its newest iteration records, ``recent_custom`` its newest CUSTOM events.
    """

    node_id: str
    taken_ns: int
    phase: NodePhase
    loop: StatsSnapshot
    inputs_get: StatsSnapshot
    outputs_send: StatsSnapshot
    queued_stats: StatsSnapshot | None = None
    queued: int | None = None
    capacity: int | None = None
    upstream_sending: bool = False
    out_capacity: int | None = None
    other: dict[str, StatsSnapshot] = field(default_factory=dict)
    recent_iterations: tuple[int, ...] = ()
    recent_custom: tuple[RawEvent, ...] = ()
    events_kept: int = 32
    unpaired: int = 0


def node_state(reading: NodeReading) -> NodeState:
    """Render one node reading as a DepthAI-style node state."""
    now, phase = reading.taken_ns, reading.phase
    get_timing = timing_from(reading.inputs_get, now)
    send_timing = timing_from(reading.outputs_send, now)
    inputs: dict[str, InputQueueState] = {}
    queued, queue_snapshot = reading.queued, reading.queued_stats
    if queued is not None and queue_snapshot is not None:
        if reading.capacity is not None and queued >= reading.capacity and reading.upstream_sending:
            input_state = "BLOCKED"
        elif phase is NodePhase.GETTING_INPUTS and queued == 0:
            input_state = "WAITING"
        else:
            input_state = "IDLE"
        inputs["in"] = InputQueueState(
            state=input_state,
            num_queued=queued,
            timing=get_timing,
            queue_stats=QueueStats(
                max_queued=int(max(queue_snapshot.maximum, queued)),
                min_queued_recent=int(queue_snapshot.recent_min()),
                max_queued_recent=int(queue_snapshot.recent_max()),
                median_queued_recent=int(queue_snapshot.median()),
            ),
        )
    outputs = {
        "out": OutputQueueState(
            state="SENDING" if phase is NodePhase.SENDING_OUTPUTS else "IDLE",
            timing=send_timing,
        )
    }
    events = [
        event
        for record in iteration_records(list(reading.recent_iterations))
        for event in expand_iteration(reading.node_id, record, reading.out_capacity)
    ]
    events.extend(PipelineEvent.from_raw(reading.node_id, raw) for raw in reading.recent_custom)
    events.sort(key=operator.attrgetter("timestamp_ns"))
    return NodeState(
        state=phase.name,
        input_states=inputs,
        output_states=outputs,
        main_loop_timing=timing_from(reading.loop, now),
        inputs_get_timing=get_timing,
        outputs_send_timing=send_timing,
        other_timings={name: timing_from(stats, now) for name, stats in reading.other.items()},
        events=tuple(events[-reading.events_kept :]),
        unpaired_events=reading.unpaired,
    )


def pipeline_state(readings: tuple[NodeReading, ...]) -> PipelineState:
    """Render node readings (in pipeline order) as a :class:`PipelineState`."""
    return PipelineState({reading.node_id: node_state(reading) for reading in readings})

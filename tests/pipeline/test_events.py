from __future__ import annotations

import json
import threading

import pytest

from framescope.clock import FakeClock
from framescope.pipeline.debug.recorder import EventRecorder
from framescope.pipeline.model.events import EventInterval, EventStatus, EventType, PipelineEvent


def events_of(recorder: EventRecorder) -> list[PipelineEvent]:
    return [PipelineEvent.from_raw(recorder.node_id, raw) for raw in recorder.drain()]


def test_start_and_end_pair_by_sequence_number(clock: FakeClock) -> None:
    recorder = EventRecorder("P__S", clock)
    recorder.start("nms")
    clock.advance(0.002)
    recorder.start("nms")  # nested block of the same name
    clock.advance(0.001)
    recorder.end("nms")
    recorder.end("nms")
    recorder.start("nms")
    recorder.end("nms")
    events = events_of(recorder)
    assert [(e.interval, e.sequence_num) for e in events] == [
        (EventInterval.START, 0),
        (EventInterval.START, 1),
        (EventInterval.END, 1),
        (EventInterval.END, 0),
        (EventInterval.START, 2),
        (EventInterval.END, 2),
    ]
    assert all(e.type is EventType.CUSTOM and e.source == "nms" for e in events)
    assert events[2].timestamp_ns - events[1].timestamp_ns == 1_000_000


def test_block_and_measure_record_custom_events(clock: FakeClock) -> None:
    recorder = EventRecorder("P__S", clock)
    recorder.frame_id = 7
    with recorder.block("decode"):
        clock.advance(0.01)

    @recorder.measure("infer")
    def infer(x: int) -> int:
        clock.advance(0.02)
        return x + 1

    assert infer(1) == 2
    with pytest.raises(KeyError), recorder.block("post"):
        raise KeyError("x")
    events = events_of(recorder)
    assert [(e.source, e.interval.name, e.status.name) for e in events] == [
        ("decode", "START", "SUCCESS"),
        ("decode", "END", "SUCCESS"),
        ("infer", "START", "SUCCESS"),
        ("infer", "END", "SUCCESS"),
        ("post", "START", "SUCCESS"),
        ("post", "END", "CANCELLED"),
    ]
    assert {e.frame_id for e in events} == {7}


def test_disabled_recorder_records_nothing(clock: FakeClock) -> None:
    recorder = EventRecorder("P__S", clock, enabled=False)
    with recorder.block("x"):
        pass
    recorder.record(EventType.INPUT, EventInterval.START, "in", queue_size=3)
    assert recorder.drain() == []


def test_runtime_events_carry_queue_size_and_status(clock: FakeClock) -> None:
    recorder = EventRecorder("P__S", clock)
    recorder.record(EventType.OUTPUT, EventInterval.START, "out", queue_size=4)
    recorder.record(
        EventType.OUTPUT, EventInterval.END, "out", status=EventStatus.BLOCKED, queue_size=4
    )
    start, end = events_of(recorder)
    assert (start.queue_size, end.status, end.sequence_num) == (4, EventStatus.BLOCKED, 0)


def test_event_json_round_trip(clock: FakeClock) -> None:
    recorder = EventRecorder("P__S", clock)
    recorder.frame_id = 3
    recorder.record(EventType.INPUT, EventInterval.END, "in", queue_size=2)
    (event,) = events_of(recorder)
    data = json.loads(json.dumps(event.to_dict()))
    assert data["type"] == "INPUT"
    assert PipelineEvent.from_dict(data) == event


def test_drain_loses_nothing_while_the_node_records() -> None:
    recorder = EventRecorder("P__S", FakeClock())
    n = 100_000
    drained: list[object] = []
    done = threading.Event()

    def aggregator() -> None:
        while not done.is_set():
            drained.extend(recorder.drain())

    thread = threading.Thread(target=aggregator)
    thread.start()
    for _ in range(n):
        recorder.record(EventType.LOOP, EventInterval.NONE, "loop")
    done.set()
    thread.join(timeout=10)
    drained.extend(recorder.drain())
    assert len(drained) == n
    assert [raw[6] for raw in drained] == list(range(n))  # in order, no duplicates

"""Capture to glass: each source's latency split against what happened, on a FakeClock.

Every span is made by the test moving the FakeClock at a known point of a
frame's way (the source gives it, it waits in its queue, a stage runs, an
output shows it), so each part of the split must come out exactly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("numpy")

from framescope.capture import RECEIVED, RTCP, Stamps, mark_glass
from framescope.clock import FakeClock
from framescope.pipeline import Pipeline, PipelineSnapshot, Sourced
from framescope.pipeline.model.latency import LATENCY_PARTS, LATENCY_TOTALS
from framescope.video import Frame, SyntheticSource

CAPTURE_S = 0.030  # captured -> received
DECODE_S = 0.010  # received -> decoded
QUEUE_S = 0.007  # decoded -> into the pipeline
STAGE_S = 0.020  # the stage
OUTPUT_S = 0.005  # out -> on the glass


class Camera:
    """Frames stamped as a camera's would be, each given only when the test releases it.

    Frame ``k`` was decoded ``QUEUE_S`` before it is given (it waited in the
    camera's buffer), received ``DECODE_S`` before that and captured
    ``CAPTURE_S`` before that (on the RTCP clock).
    """

    def __init__(self, clock: FakeClock, frames: int) -> None:
        self.clock, self.frames = clock, frames
        self.release = threading.Semaphore(0)

    def __iter__(self) -> Iterator[Frame]:
        clock = self.clock
        for index in range(self.frames):
            self.release.acquire(timeout=30)
            decoded = clock.monotonic_ns() - round(QUEUE_S * 1e9)
            received = clock.wall().timestamp() - QUEUE_S - DECODE_S
            stamps = Stamps(
                clock.monotonic_ns,
                capture_time=received - CAPTURE_S,
                capture_clock=RTCP,
                received_wall=received,
                received_ns=decoded - round(DECODE_S * 1e9),
                decoded_ns=decoded,
            )
            yield Frame(
                None,
                index,
                capture_time=stamps.capture_time,
                capture_clock=RTCP,
                stamps=stamps,
            )


def _stage(clock: FakeClock) -> Any:
    def detect(item: Any) -> Any:
        clock.advance(STAGE_S)  # the stage takes STAGE_S on the pipeline's clock
        return item

    return detect


def _run_released(clock: FakeClock, pipeline: Pipeline, camera: Camera) -> list[Frame]:
    """Each frame: released, taken, through the stage, on the glass OUTPUT_S later.

    The camera gives a frame only when released, so no reading of one frame
    falls between the clock moves made for another.
    """
    results = pipeline.run({"cam": camera})
    out = []
    for _ in range(camera.frames):
        camera.release.release()
        frame = next(results)
        clock.advance(OUTPUT_S)
        mark_glass(frame, "test")
        out.append(frame)
    camera.release.release()  # its iterator ends
    assert list(results) == []
    return out


def test_each_part_of_a_frame_s_age_is_what_happened() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    frames = _run_released(clock, pipeline, Camera(clock, 4))
    latency = pipeline.snapshot().sources["cam"].latency
    pipeline.cleanup()
    assert latency is not None
    expected = {
        "capture": CAPTURE_S,
        "decode": DECODE_S,
        "queue": QUEUE_S,
        "pipeline": STAGE_S,
        "output": OUTPUT_S,
        "to_out": CAPTURE_S + DECODE_S + QUEUE_S + STAGE_S,
        "to_glass": CAPTURE_S + DECODE_S + QUEUE_S + STAGE_S + OUTPUT_S,
    }
    assert set(expected) == {*LATENCY_PARTS, *LATENCY_TOTALS}
    for name, seconds in expected.items():
        figures = latency.figures(name)
        assert figures is not None, name
        assert figures.count == 4, name
        for value in (figures.p50, figures.p90, figures.p99, figures.maximum):
            assert value == pytest.approx(seconds, abs=1e-6), name
    assert latency.clocks == {RTCP: 4}
    assert latency.untimed == 0
    assert [f.stamps.glass_by for f in frames if f.stamps] == ["test"] * 4


def test_a_synthetic_source_is_stamped_generated_and_timed_through_a_threaded_pipeline() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda frame: frame, "Pass")
    pipeline.parallelize()
    source = SyntheticSource(32, 32, frames=5, clock=clock)
    results = list(pipeline.run({"syn": source}))
    latency = pipeline.snapshot().sources["syn"].latency
    pipeline.cleanup()
    assert [frame.capture_clock for frame in results] == ["generated"] * 5
    assert [frame.capture_time for frame in results] == [clock.wall().timestamp()] * 5
    assert latency is not None and latency.clocks == {"generated": 5}
    # Nothing moved the clock: every part is exactly 0, and all five were timed.
    for name in ("capture", "decode", "queue", "pipeline", "to_out"):
        figures = latency.figures(name)
        assert figures is not None and figures.count == 5 and figures.maximum == 0.0, name
    assert latency.figures("output") is None  # no output showed them


def test_items_that_are_not_frames_are_timed_through_the_pipeline() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    # "carry" keeps the item's stamps on the new result; a bare Sourced does not.
    pipeline.add(
        lambda item: item.carry(item.item * 2) if item.item % 2 else Sourced(item.source, 0)
    )
    results = list(pipeline.run({"numbers": range(6)}))
    assert [r.item for r in results] == [0, 2, 0, 6, 0, 10]
    latency = pipeline.snapshot().sources["numbers"].latency
    pipeline.cleanup()
    assert latency is not None
    timed = latency.figures("pipeline")
    assert timed is not None and timed.count == 3
    assert timed.p50 == timed.maximum == pytest.approx(STAGE_S, abs=1e-9)
    assert latency.untimed == 3
    assert latency.clocks == {RECEIVED: 3}
    assert latency.figures("capture") is None  # a received clock says nothing of capture


def test_the_split_goes_to_json_and_back() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    _run_released(clock, pipeline, Camera(clock, 2))
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    back = PipelineSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict())))
    latency, again = snapshot.sources["cam"].latency, back.sources["cam"].latency
    assert latency is not None and again is not None
    assert again.figures("to_glass") == latency.figures("to_glass")
    assert again.clocks == latency.clocks


def test_the_snapshot_prints_each_source_s_split_and_the_page_gets_its_bar() -> None:
    from framescope.live.view import latency_view

    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    _run_released(clock, pipeline, Camera(clock, 2))
    snapshot = pipeline.snapshot()
    pipeline.cleanup()
    lines = str(snapshot).splitlines()
    header = lines.index("source  span      clock  frames  p50 ms  p90 ms  p99 ms  max ms")
    assert lines[header + 1 :] == [
        "cam     capture   rtcp        2   30.00   30.00   30.00   30.00",
        "cam     decode                2   10.00   10.00   10.00   10.00",
        "cam     queue                 2    7.00    7.00    7.00    7.00",
        "cam     pipeline              2   20.00   20.00   20.00   20.00",
        "cam     output                2    5.00    5.00    5.00    5.00",
        "cam     to_out                2   67.00   67.00   67.00   67.00",
        "cam     to_glass              2   72.00   72.00   72.00   72.00",
    ]
    view = latency_view(snapshot.sources["cam"].latency)
    assert view == {
        "clock": "rtcp",
        "parts": [
            {"name": "capture", "p50_ms": 30.0, "p99_ms": 30.0},
            {"name": "decode", "p50_ms": 10.0, "p99_ms": 10.0},
            {"name": "queue", "p50_ms": 7.0, "p99_ms": 7.0},
            {"name": "pipeline", "p50_ms": 20.0, "p99_ms": 20.0},
            {"name": "output", "p50_ms": 5.0, "p99_ms": 5.0},
        ],
        "total": "to_glass",
        "p50_ms": 72.0,
        "p99_ms": 72.0,
    }


def test_the_recorder_folds_in_batches_and_keeps_every_span() -> None:
    from framescope.pipeline.runtime.latency import FOLD_EVERY, LATENCY_WINDOW, LatencyRecorder

    recorder = LatencyRecorder()
    frames = 3 * FOLD_EVERY + LATENCY_WINDOW + 7  # past a fold, past the window, some pending
    for index in range(frames):
        stamps = Stamps(
            lambda: 0, capture_time=0.0, capture_clock=RTCP, received_wall=0.001, received_ns=0
        )
        stamps.in_ns, stamps.out_ns = 1_000, 1_000 + 1_000 * (index + 1)
        recorder.out(stamps)
        if index == FOLD_EVERY + 3:
            assert recorder.read().frames == FOLD_EVERY + 4  # the pending ones folded at a read
    latency = recorder.read()
    pipeline = latency.stats["pipeline"]
    assert pipeline.count == latency.frames == frames
    assert pipeline.maximum == frames * 1_000 / 1e9  # all-time, exact
    assert len(pipeline.samples) == LATENCY_WINDOW  # bounded: the newest only
    assert pipeline.samples[-1] == frames * 1_000
    assert pipeline.distribution is not None and pipeline.distribution.count == frames
    assert latency.clocks == {RTCP: frames}
    capture = latency.figures("capture")
    assert capture is not None and capture.maximum == pytest.approx(0.001)


def test_stamps_do_not_travel_to_another_process() -> None:
    import pickle

    stamps = Stamps(
        lambda: 0, capture_time=1.0, capture_clock=RTCP, received_wall=1.0, received_ns=0
    )
    frame = Frame(None, 0, capture_time=1.0, capture_clock=RTCP, stamps=stamps)
    copy = pickle.loads(pickle.dumps(frame))
    assert copy.stamps is None  # its clock and its recorder stay here
    assert (copy.capture_time, copy.capture_clock) == (1.0, RTCP)
    item = pickle.loads(pickle.dumps(Sourced("cam", 5, stamps)))
    assert item == Sourced("cam", 5) and item.stamps is None


def test_a_frame_that_does_not_say_when_it_was_captured_is_marked_received() -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda frame: frame, "Pass")
    frames = [Frame(None, index) for index in range(3)]
    results = list(pipeline.run({"cam": frames}))
    latency = pipeline.snapshot().sources["cam"].latency
    pipeline.cleanup()
    wall = clock.wall().timestamp()
    assert [(f.capture_time, f.capture_clock) for f in results] == [(wall, RECEIVED)] * 3
    assert latency is not None and latency.clocks == {RECEIVED: 3}
    assert latency.figures("capture") is None  # never passed off as a capture time

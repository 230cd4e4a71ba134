from __future__ import annotations

import threading
from itertools import islice, pairwise

import pytest

from framescope import Pipeline, Stage
from framescope.clock import FakeClock
from framescope.pipeline.model.state import PipelineState, merge_states
from tests.polling import wait_for

from .helpers import Busy, Gate


@pytest.mark.parametrize("debug", [True, False])
def test_all_nodes_idle_with_invalid_timings_before_start(debug: bool) -> None:
    pipeline = Pipeline(debug=debug).add(lambda d: d, "A").add(lambda d: d, "B")
    state = pipeline.get_pipeline_state()
    nodes = state.nodes().detailed().node_states
    assert list(nodes) == ["MainPipeline__A", "MainPipeline__B"]
    for node in nodes.values():
        assert node.state == "IDLE"
        assert not node.main_loop_timing.is_valid()
        assert node.input_states["in"].state == "IDLE"


def test_node_blocked_in_get_is_getting_inputs_with_input_waiting() -> None:
    pipeline = Pipeline(debug=True).add(lambda d: d, "A").parallelize().start()
    node = pipeline.get_pipeline_state().nodes("MainPipeline__A")
    wait_for(
        lambda: (
            pipeline.get_pipeline_state().nodes("MainPipeline__A").summary().state
            == "GETTING_INPUTS"
        ),
        what="the node to wait for input",
    )
    node = pipeline.get_pipeline_state().nodes("MainPipeline__A")
    assert node.summary().state == "GETTING_INPUTS"
    assert node.inputs("in").state == "WAITING"
    assert node.inputs("in").num_queued == 0
    assert pipeline.cleanup() == []


def test_filling_a_queue_then_blocking_the_sender() -> None:
    gate = Gate("B")
    pipeline = Pipeline(debug=True).add(lambda d: d, "A").add(gate, queue_size=4)
    pipeline.parallelize(queue_size=4, input_timeout=None).start()
    pipeline.forward(0)
    gate.entered.wait(10)  # B holds item 0
    seen = []
    for i in range(1, 5):
        pipeline.forward(i)
        wait_for(
            lambda i=i: (
                pipeline.get_pipeline_state().nodes("MainPipeline__B").inputs("in").num_queued == i
            ),
            what=f"{i} queued",
        )
        seen.append(pipeline.get_pipeline_state().nodes("MainPipeline__B").inputs("in").num_queued)
    assert seen == [1, 2, 3, 4]
    pipeline.forward(5)  # A takes it and cannot send it on
    wait_for(
        lambda: (
            pipeline.get_pipeline_state().nodes("MainPipeline__A").summary().state
            == "SENDING_OUTPUTS"
        ),
        what="A to block on its send",
    )
    state = pipeline.get_pipeline_state()
    assert state.nodes("MainPipeline__B").inputs("in").state == "BLOCKED"
    assert state.nodes("MainPipeline__A").outputs("out").state == "SENDING"
    assert state.nodes("MainPipeline__B").detailed().input_states["in"].queue_stats.max_queued == 4
    gate.release.set()
    assert list(islice(pipeline.results(timeout=10), 6)) == [0, 1, 2, 3, 4, 5]
    assert pipeline.cleanup() == []


def test_loop_timing_of_a_100_ms_stage_and_fps_decay() -> None:
    clock = FakeClock()
    pipeline = Pipeline(debug=True, clock=clock).add(Busy("Slow", clock, 0.100))
    pipeline.parallelize(queue_size=32, input_timeout=None)
    for i in range(21):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=10), 21))) == 21
    loop = pipeline.get_pipeline_state().nodes("MainPipeline__Slow").summary().main_loop_timing
    assert loop.is_valid()
    assert loop.duration_stats.average_micros_recent == pytest.approx(100_000, rel=1e-6)
    assert loop.duration_stats.p99_micros_recent == pytest.approx(100_000, rel=1e-6)
    assert loop.fps == pytest.approx(10.0, rel=1e-6)
    clock.advance(60)  # the stage has nothing more to do
    decayed = pipeline.get_pipeline_state().nodes("MainPipeline__Slow").summary().main_loop_timing
    assert decayed.fps < 1.0
    clock.advance(600)
    assert (
        pipeline.get_pipeline_state().nodes("MainPipeline__Slow").summary().main_loop_timing.fps
        < 0.1
    )
    pipeline.cleanup()


def test_custom_block_shows_in_other_timings() -> None:
    clock = FakeClock()

    class Detector(Stage):
        name = "Detector"

        def __call__(self, data: int) -> int:
            with self.events.block("nms"):
                clock.advance(0.005)
            self.events.start("post")
            clock.advance(0.002)
            self.events.end("post")
            return data

    pipeline = Pipeline(debug=True, clock=clock).add(Detector()).parallelize(queue_size=8)
    for i in range(5):
        pipeline.forward(i)
    list(islice(pipeline.results(timeout=10), 5))
    node = pipeline.get_pipeline_state().nodes("MainPipeline__Detector")
    nms = node.other_timings("nms")
    assert nms.count == 5
    assert nms.duration_stats.average_micros_recent == pytest.approx(5_000)
    assert set(node.other_timings()) == {"nms", "post"}
    assert node.detailed().unpaired_events == 0
    pipeline.cleanup()


def test_unpaired_custom_events_are_counted() -> None:
    class Sloppy(Stage):
        name = "Sloppy"

        def __call__(self, data: int) -> int:
            self.events.end("never-started")
            return data

    pipeline = Pipeline(debug=True).add(Sloppy()).serialize()
    pipeline.forward(1)
    node = pipeline.get_pipeline_state().nodes("MainPipeline__Sloppy").detailed()
    assert node.unpaired_events == 1
    pipeline.cleanup()


def test_events_of_a_node_describe_each_iteration() -> None:
    pipeline = Pipeline(debug=True).add(lambda d: d, "A").add(lambda d: d, "B")
    pipeline.parallelize(queue_size=4)
    pipeline.forward(0)
    next(pipeline.results(timeout=10))
    events = pipeline.get_pipeline_state().nodes("MainPipeline__A").detailed().events
    kinds = [(e.type.name, e.interval.name) for e in events]
    assert kinds[:9] == [
        ("LOOP", "NONE"),
        ("INPUT_BLOCK", "START"),
        ("INPUT", "START"),
        ("INPUT", "END"),
        ("INPUT_BLOCK", "END"),
        ("OUTPUT_BLOCK", "START"),
        ("OUTPUT", "START"),
        ("OUTPUT", "END"),
        ("OUTPUT_BLOCK", "END"),
    ]
    assert events[3].frame_id == 0
    assert {e.sequence_num for e in events[:9]} == {0}
    pipeline.cleanup()


def test_state_json_round_trip_and_queries() -> None:
    pipeline = Pipeline(debug=True).add(lambda d: d, "A").add(lambda d: d, "B")
    pipeline.parallelize(queue_size=4)
    for i in range(3):
        pipeline.forward(i)
    list(islice(pipeline.results(timeout=10), 3))
    query = pipeline.get_pipeline_state()
    state = query.nodes().detailed()
    again = PipelineState.from_json(state.to_json())
    assert again == state
    node = state.node_states["MainPipeline__A"]
    assert type(node).from_json(node.to_json()) == node
    summary = query.nodes().summary()
    assert summary.node_states["MainPipeline__A"].events == ()
    assert set(query.nodes().inputs("in")) == {"MainPipeline__A", "MainPipeline__B"}
    assert set(query.nodes("MainPipeline__A", "MainPipeline__B").outputs()) == {
        "MainPipeline__A",
        "MainPipeline__B",
    }
    with pytest.raises(KeyError, match="no node 'Nope'"):
        query.nodes("Nope")
    with pytest.raises(KeyError, match="has no input 'video'"):
        query.nodes("MainPipeline__A").inputs("video")
    pipeline.cleanup()


def test_merge_states_namespaces_and_refuses_collisions() -> None:
    first = Pipeline(debug=True).add(lambda d: d, "A")
    second = Pipeline(debug=True).add(lambda d: d, "A")
    a = first.get_pipeline_state().state
    b = second.get_pipeline_state().state
    with pytest.raises(ValueError, match="appears in more than one state"):
        merge_states(a, b)
    merged = merge_states(a, b, prefixes=["cam1", "cam2"])
    assert list(merged.node_states) == ["cam1__MainPipeline__A", "cam2__MainPipeline__A"]
    other = Pipeline(name="Other", debug=True).add(lambda d: d, "A").get_pipeline_state().state
    assert list(merge_states(a, other).node_states) == ["MainPipeline__A", "Other__A"]
    with pytest.raises(ValueError, match="one entry per state"):
        merge_states(a, b, prefixes=["x"])


def test_debug_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESCOPE_DEBUG", "1")
    assert Pipeline().debug
    monkeypatch.setenv("FRAMESCOPE_DEBUG", "0")
    assert not Pipeline().debug
    assert Pipeline(debug=True).debug


def test_debug_threads_end_at_cleanup() -> None:
    before = set(threading.enumerate())
    pipeline = Pipeline(debug=True, debug_interval=0.001).add(lambda d: d, "A").parallelize()
    pipeline.forward(1)
    next(pipeline.results(timeout=10))
    assert any(t.name == "framescope:MainPipeline:aggregator" for t in threading.enumerate())
    assert pipeline.cleanup() == []
    assert set(threading.enumerate()) - before == set()
    # The final state stays readable after cleanup, with the item that went through.
    final = pipeline.get_pipeline_state().nodes("MainPipeline__A").summary()
    assert final.inputs_get_timing.count == 1


def test_serial_mode_state_uses_the_stage_timers() -> None:
    clock = FakeClock()
    pipeline = Pipeline(debug=True, clock=clock).add(Busy("S", clock, 0.02)).serialize()
    for _ in range(5):
        pipeline.forward(None)
        clock.advance(0.08)
    loop = pipeline.get_pipeline_state().nodes("MainPipeline__S").summary().main_loop_timing
    assert loop.duration_stats.average_micros_recent == pytest.approx(20_000)
    assert loop.fps == pytest.approx(10.0)
    pipeline.cleanup()


def test_bad_debug_interval() -> None:
    with pytest.raises(ValueError, match="debug_interval must be a positive number of seconds"):
        Pipeline(debug_interval=0)
    with pytest.raises(TypeError, match="debug_interval must be a number"):
        Pipeline(debug_interval="fast")  # type: ignore[arg-type]


def test_serial_mode_shows_the_running_stage_and_its_frame() -> None:
    seen: list[tuple[str, str]] = []

    class Inspect(Stage):
        name = "Inspect"

        def __call__(self, data: int) -> int:
            with self.events.block("look"):
                nodes = pipeline.get_pipeline_state().nodes().detailed().node_states
                seen.append((nodes["MainPipeline__Inspect"].state, nodes["MainPipeline__A"].state))
            return data

    pipeline = Pipeline(debug=True).add(lambda d: d, "A").add(Inspect()).serialize()
    for item in range(3):
        pipeline.forward(item)
    node = pipeline.get_pipeline_state().nodes("MainPipeline__Inspect").detailed()
    assert seen == [("PROCESSING", "IDLE")] * 3
    assert node.state == "IDLE"
    assert [e.frame_id for e in node.events if e.source == "look"] == [0, 0, 1, 1, 2, 2]
    pipeline.cleanup()


def test_block_names_past_the_bound_are_folded_into_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()

    class Tracker(Stage):
        name = "Tracker"

        def __call__(self, data: int) -> int:
            with self.events.block(f"track-{data}"):  # a new name for every item
                clock.advance(0.001)
            return data

    pipeline = Pipeline(debug=True, clock=clock, block_names=8).add(Tracker())
    pipeline.parallelize(queue_size=8)
    with caplog.at_level("WARNING", logger="framescope.pipeline.debug.recorder"):
        for i in range(300):
            pipeline.forward(i)
        list(islice(pipeline.results(timeout=10), 300))
    node = pipeline.get_pipeline_state().nodes("MainPipeline__Tracker")
    names = set(node.other_timings())
    assert names == {f"track-{i}" for i in range(8)} | {"other"}
    assert node.other_timings("other").count == 292
    assert node.detailed().unpaired_events == 0
    assert pipeline.counters()["blocks_folded"] == 292
    warnings = [r for r in caplog.records if "distinct block names" in r.getMessage()]
    assert len(warnings) == 1 and "track-8" in warnings[0].getMessage()
    pipeline.cleanup()


def test_block_names_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError, match="block_names"):
        Pipeline(block_names=0)


def test_fps_falls_to_about_zero_once_a_stage_stops() -> None:
    """DepthAI's host test: about 10 fps at 10 Hz, about 0 (within 2) after 7 s idle."""
    clock = FakeClock()
    pipeline = Pipeline(debug=True, clock=clock).add(lambda x: x, "Work").serialize()
    for item in range(60):
        pipeline.forward(item)
        clock.advance(0.1)
    fps = pipeline.get_pipeline_state().nodes("MainPipeline__Work").summary().main_loop_timing.fps
    assert fps == pytest.approx(10, rel=0.05)
    assert pipeline.get_profiles()[1]["MainPipeline__Work"] == pytest.approx(10, rel=0.05)
    readings = []
    for _ in range(14):
        clock.advance(0.5)
        state = pipeline.get_pipeline_state()
        readings.append(state.nodes("MainPipeline__Work").summary().main_loop_timing.fps)
    assert readings[2] > 5  # 1.5 s after: still most of its rate
    assert all(b <= a for a, b in pairwise(readings))  # falls steadily
    assert readings[13] <= 2  # 7 s idle: about 0
    assert readings[10] == 0  # past the 5 s window: nothing
    assert pipeline.get_profiles()[1]["MainPipeline__Work"] == 0
    pipeline.cleanup()

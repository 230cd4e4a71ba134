"""A pipeline's life as one state machine: forward only, and one answer per state."""

from __future__ import annotations

import threading

import pytest

from framescope import FakeClock, Pipeline, Stage
from framescope.pipeline import PipelineClosedError, PipelineStoppedError, StageError
from framescope.pipeline.runtime.lifecycle import Lifecycle, Phase
from tests.polling import wait_for


def test_the_phase_only_moves_forward_and_may_skip() -> None:
    life = Lifecycle("P")
    assert life.phase is Phase.NEW and not life.started
    assert life.advance(Phase.RUNNING)
    assert not life.advance(Phase.RUNNING)  # there already
    assert life.advance(Phase.FINISHED)  # a halt skips INPUT_CLOSED
    assert not life.advance(Phase.INPUT_CLOSED)  # never back
    assert life.phase is Phase.FINISHED and life.input_closed and not life.cleaned_up
    assert life.finished.is_set()


def test_finished_is_set_only_at_the_end() -> None:
    life = Lifecycle("P")
    life.advance(Phase.INPUT_CLOSED)
    assert not life.finished.is_set()
    life.advance(Phase.CLEANED_UP)  # cleaned up before it finished: nothing more comes
    assert life.finished.is_set() and life.cleaned_up
    assert not life.started  # it never reached RUNNING


def test_the_first_reason_of_each_kind_is_kept() -> None:
    life = Lifecycle("P")
    first, second = StageError("A", 1, ValueError("a")), StageError("B", 2, ValueError("b"))
    life.stop(first)
    life.stop(second)
    assert life.stopped_by is first
    assert life.source_failed(OSError("gone"))
    assert not life.source_failed(OSError("again"))
    assert str(life.source_error) == "gone"
    crash = KeyboardInterrupt()
    life.crash(crash)
    life.crash(SystemExit())
    assert life.crashed is crash


def test_check_open_answers_crash_then_cleanup_then_stop() -> None:
    life = Lifecycle("P")
    life.check_open()  # open: nothing raised
    life.stop(StageError("A", 1, ValueError("a")))
    with pytest.raises(PipelineStoppedError):
        life.check_open()
    life.advance(Phase.CLEANED_UP)
    with pytest.raises(PipelineClosedError, match="cleaned up"):
        life.check_open()
    life.crash(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        life.check_open()


def test_refusing_input_says_why() -> None:
    life = Lifecycle("P")
    life.advance(Phase.INPUT_CLOSED)
    with pytest.raises(PipelineClosedError, match="no more input"):
        life.refuse_input()
    life.source_failed(OSError("disk gone"))
    with pytest.raises(PipelineClosedError, match=r"source failed \(OSError: disk gone\)"):
        life.refuse_input()


def test_a_pipeline_walks_its_phases() -> None:
    pipeline = Pipeline(clock=FakeClock()).add(lambda x: x + 1, "Inc")
    life = pipeline._runtime.life
    assert life.phase is Phase.NEW
    pipeline.parallelize()
    pipeline.forward(1)
    assert life.phase is Phase.RUNNING
    pipeline.close()
    assert pipeline.join(5)
    assert life.phase is Phase.FINISHED
    assert list(pipeline.results(timeout=0)) == [2]
    pipeline.cleanup()
    assert life.phase is Phase.CLEANED_UP
    with pytest.raises(PipelineClosedError, match="cleaned up"):
        pipeline.forward(2)


def test_a_stopped_pipeline_refuses_with_the_stop_not_the_close() -> None:
    def broken(x: int) -> int:
        raise ValueError("no")

    with Pipeline(clock=FakeClock()) as pipeline:
        pipeline.add(broken, "Broken", on_error="stop")
        with pytest.raises(PipelineStoppedError):
            pipeline.forward(1)
        assert pipeline._runtime.life.phase is Phase.FINISHED
        pipeline.close()  # after the stop: nothing to do, the answer stays the stop
        with pytest.raises(PipelineStoppedError):
            pipeline.forward(2)


def test_cleaning_up_the_outer_pipeline_ends_the_nested_one() -> None:
    inner = Pipeline(name="Inner").add(lambda x: x, "Same")
    outer = Pipeline(name="Outer").add(inner)
    outer.forward(1)
    outer.cleanup()
    assert inner.closed and inner._tree.life.phase is Phase.CLEANED_UP


def test_cleanup_before_the_start_ends_it_too() -> None:
    pipeline = Pipeline().add(lambda x: x, "Same")
    pipeline.cleanup()
    assert pipeline.closed
    with pytest.raises(PipelineClosedError):
        pipeline.parallelize()


def test_a_pipeline_closed_before_it_started_says_so() -> None:
    pipeline = Pipeline(name="ClosedEarly").add(lambda x: x, "Same")
    pipeline.close()
    assert pipeline.join(5)
    for configure in (pipeline.serialize, pipeline.parallelize):
        with pytest.raises(PipelineClosedError, match="closed before it started"):
            configure()
    with pytest.raises(PipelineClosedError, match="no more input"):
        pipeline.forward(1)
    assert pipeline._runtime.life.phase is Phase.FINISHED and not pipeline._runtime.life.started
    assert not [t for t in threading.enumerate() if t.name.startswith("framescope:ClosedEarly")]
    pipeline.cleanup()
    with pytest.raises(PipelineClosedError, match="cleaned up"):
        pipeline.tap("Same", print)


def test_cleanup_with_drain_after_a_crash_shuts_down_then_raises_it() -> None:
    cleaned: list[str] = []

    class Crashing(Stage):
        def __call__(self, data: int) -> int:
            raise KeyboardInterrupt

        def cleanup(self) -> None:
            cleaned.append("Crashing")

    pipeline = Pipeline(debug=True, name="Crashes").add(Crashing(), "Crashing")
    pipeline.parallelize()
    pipeline.forward(1)
    wait_for(lambda: pipeline._runtime.life.crashed is not None, what="the crash")
    with pytest.raises(KeyboardInterrupt):
        pipeline.cleanup(drain=True)
    assert pipeline.closed and cleaned == ["Crashing"]
    assert not [t for t in threading.enumerate() if t.name.startswith("framescope:Crashes")]


def test_a_nested_pipeline_cleaned_up_first_is_not_cleaned_up_again() -> None:
    cleaned: list[str] = []

    class Counted(Stage):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

        def __call__(self, data: int) -> int:
            return data

        def cleanup(self) -> None:
            cleaned.append(self.label)

    inner = Pipeline(name="Inner").add(Counted("Inside"), "Inside")
    outer = Pipeline(name="Outer").add(inner).add(Counted("Outside"), "Outside")
    outer.forward(1)
    inner.cleanup()
    outer.cleanup()
    assert sorted(cleaned) == ["Inside", "Outside"]

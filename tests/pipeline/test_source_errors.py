"""A source that raises ends the input; its error reaches run(), results() and join()."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framescope import Pipeline
from framescope.pipeline import PipelineClosedError, PipelineSnapshot, merge_snapshots
from framescope.video import Frame, VideoSource

from ..video.helpers import write_clip

MODES = ["serial", "parallel"]


class SourceBrokeError(RuntimeError):
    """What the failing sources of these tests raise."""


def five_then_raise() -> Iterator[int]:
    yield from range(5)
    raise SourceBrokeError("lost the camera after 5 frames")


def build(mode: str, **options: object) -> Pipeline:
    pipeline = Pipeline(**options).add(lambda x: x * 10, "Times10")  # type: ignore[arg-type]
    return pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=2)


def assert_source_failed(pipeline: Pipeline, forwarded: int, error_text: str) -> None:
    counts = pipeline.counters()
    assert counts["source_errors"] == 1
    assert counts["forwarded"] == counts["completed"] == forwarded and counts["in_flight"] == 0
    snapshot = pipeline.snapshot()
    assert snapshot.source_error is not None and error_text in snapshot.source_error
    diagnosis = pipeline.diagnose()
    assert diagnosis.verdict == "source failed"
    assert str(diagnosis).startswith(f"Source failed: {snapshot.source_error}")
    assert f"after {forwarded} item(s) went in" in diagnosis.reasons[0]


@pytest.mark.parametrize("mode", MODES)
def test_run_yields_the_results_before_the_source_failed_then_raises(mode: str) -> None:
    pipeline = build(mode)
    got: list[int] = []
    with pytest.raises(SourceBrokeError, match="lost the camera"):
        for result in pipeline.run(five_then_raise()):
            got.append(result)
    assert got == [0, 10, 20, 30, 40]
    assert_source_failed(pipeline, 5, "SourceBrokeError: lost the camera after 5 frames")
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_input_generator_raises_from_results_and_join(mode: str) -> None:
    pipeline = build(mode, input_generator=five_then_raise())
    pipeline.start_loop(0)
    results = pipeline.results(timeout=30)
    assert [next(results) for _ in range(5)] == [0, 10, 20, 30, 40]
    with pytest.raises(SourceBrokeError):
        next(results)
    with pytest.raises(SourceBrokeError):
        pipeline.join(30)
    with pytest.raises(SourceBrokeError):  # asked again, the answer is the same
        list(pipeline.results(timeout=0))
    assert_source_failed(pipeline, 5, "lost the camera")
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_join_waits_for_the_items_inside_then_raises(mode: str) -> None:
    pipeline = build(mode, input_generator=five_then_raise())
    pipeline.start_loop(0)
    with pytest.raises(SourceBrokeError):
        pipeline.join(30)
    assert pipeline.counters()["completed"] == 5  # every item before the failure is out
    results = pipeline.results(timeout=0)
    assert [next(results) for _ in range(5)] == [0, 10, 20, 30, 40]  # none lost, in order
    with pytest.raises(SourceBrokeError):
        next(results)
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_after_a_source_failed_forward_says_why_and_drained_cleanup_does_not_raise(
    mode: str,
) -> None:
    pipeline = build(mode, input_generator=five_then_raise())
    pipeline.start_loop(0)
    with pytest.raises(SourceBrokeError):
        pipeline.join(30)
    with pytest.raises(PipelineClosedError, match="its source failed \\(SourceBrokeError: lost"):
        pipeline.forward(99)
    assert pipeline.cleanup(timeout=10, drain=True) == []


def test_a_source_failure_survives_the_snapshot_json_and_merges() -> None:
    pipeline = build("serial")
    with pytest.raises(SourceBrokeError):
        list(pipeline.run(five_then_raise()))
    snapshot = pipeline.snapshot()
    again = PipelineSnapshot.from_dict(snapshot.to_dict())
    assert (
        again.source_error
        == snapshot.source_error
        == ("SourceBrokeError: lost the camera after 5 frames")
    )
    healthy = Pipeline(name="Other").add(lambda x: x).serialize()
    healthy.forward(1)
    merged = merge_snapshots(snapshot, healthy.snapshot())
    assert merged.source_error == f"MainPipeline: {snapshot.source_error}"
    assert merged.counters["source_errors"] == 1
    assert merge_snapshots(healthy.snapshot()).source_error is None


@pytest.mark.parametrize("mode", MODES)
def test_run_over_a_file_that_is_no_video_raises_and_the_snapshot_says_so(
    mode: str, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    pipeline = build(mode)
    with pytest.raises((ValueError, OSError)) as raised:
        list(pipeline.run(VideoSource(str(bad))))
    counts = pipeline.counters()
    assert counts["source_errors"] == 1 and counts["forwarded"] == 0
    snapshot = pipeline.snapshot()
    assert snapshot.source_error is not None
    assert snapshot.source_error.startswith(type(raised.value).__name__)
    assert pipeline.diagnose().verdict == "source failed"
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_frames_of_a_real_clip_before_the_failure_come_out(mode: str, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, size=(160, 120))

    def frames_then_raise() -> Iterator[Frame]:
        for frame in VideoSource(str(clip)):
            if frame.index == 7:
                raise SourceBrokeError("the disk went away at frame 7")
            yield frame

    pipeline = Pipeline().add(lambda frame: frame.index, "Index")
    pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=2)
    got: list[int] = []
    with pytest.raises(SourceBrokeError, match="frame 7"):
        got.extend(pipeline.run(frames_then_raise()))
    assert got == list(range(7))
    assert_source_failed(pipeline, 7, "the disk went away at frame 7")
    assert pipeline.cleanup() == []


@pytest.mark.parametrize("mode", MODES)
def test_stage_errors_keep_their_policy_when_the_source_ends_well(mode: str) -> None:
    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    pipeline = Pipeline().add(fail_on_two, "F", on_error="skip")
    pipeline.serialize() if mode == "serial" else pipeline.parallelize(queue_size=2)
    assert list(pipeline.run(range(5))) == [0, 1, 3, 4]
    counts = pipeline.counters()
    assert counts["failed"] == 1 and counts["source_errors"] == 0
    assert pipeline.snapshot().source_error is None
    assert pipeline.cleanup() == []


def test_a_reader_woken_by_the_end_of_the_results_still_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The results close last: a reader they wake already sees the pipeline finished."""
    pipeline = build("parallel")
    results = pipeline._runtime.results
    close = results.close

    def close_then_pause() -> None:
        close()
        time.sleep(0.2)  # whatever comes after the close comes late

    monkeypatch.setattr(results, "close", close_then_pause)
    with pytest.raises(SourceBrokeError):
        list(pipeline.run(five_then_raise()))
    pipeline.cleanup()

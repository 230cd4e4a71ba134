"""Many sources into one pipeline: names carried, order per source, health states on a FakeClock."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.pipeline import (
    Pipeline,
    PipelineSnapshot,
    SnapshotFormatError,
    Sourced,
    SourceState,
    SourceTransition,
)
from tests.polling import holds_within, wait_for


class Gate:
    """An iterable that gives ``before`` items, then waits inside ``next()`` until released."""

    def __init__(self, before: int, after: int = 0) -> None:
        self.before, self.after = before, after
        self.release = threading.Event()
        self.waiting = threading.Event()

    def __iter__(self) -> Iterator[int]:
        yield from range(self.before)
        self.waiting.set()
        self.release.wait(30)
        yield from range(self.before, self.before + self.after)


class Failing:
    """Gives ``count`` items, then raises."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self) -> Iterator[int]:
        yield from range(self.count)
        raise OSError("camera unplugged")


def _pipeline(clock: FakeClock, threaded: bool, stage: Any = None) -> Pipeline:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(stage if stage is not None else (lambda item: item), "Pass")
    if threaded:
        pipeline.parallelize()
    return pipeline


@pytest.mark.parametrize("threaded", [False, True])
def test_many_sources_carry_names_keep_order_per_source_and_count(
    clock: FakeClock, threaded: bool
) -> None:
    pipeline = _pipeline(clock, threaded)
    sources = {"a": range(50), "b": range(100, 103), "c": [f"c{i}" for i in range(20)]}
    try:
        results = list(pipeline.run(sources))
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    assert all(isinstance(result, Sourced) for result in results)
    by_source = {name: [r.item for r in results if r.source == name] for name in sources}
    assert by_source == {name: list(items) for name, items in sources.items()}
    # "b" ended long before "a": the others went on to their own ends.
    assert {name: s.state for name, s in snapshot.sources.items()} == dict.fromkeys(
        sources, SourceState.ENDED
    )
    for name, items in sources.items():
        reading = snapshot.sources[name]
        assert (reading.frames, reading.results, reading.dropped) == (len(items), len(items), 0)
    assert snapshot.counters["forwarded"] == snapshot.counters["completed"] == 73


def test_a_plain_iterable_runs_as_before(clock: FakeClock) -> None:
    pipeline = _pipeline(clock, threaded=True)
    try:
        assert list(pipeline.run(range(5))) == [0, 1, 2, 3, 4]
        assert pipeline.snapshot().sources == {}
    finally:
        pipeline.cleanup()


def test_frames_carry_their_source_name(clock: FakeClock) -> None:
    from framescope.video import SyntheticSource

    pipeline = _pipeline(clock, threaded=True)
    sources = {
        "cam1": SyntheticSource(32, 32, frames=4, clock=clock),
        "cam2": SyntheticSource(32, 32, frames=6, clock=clock),
    }
    try:
        frames = list(pipeline.run(sources))
    finally:
        pipeline.cleanup()
    assert sorted((f.source, f.index) for f in frames) == sorted(
        [("cam1", i) for i in range(4)] + [("cam2", i) for i in range(6)]
    )


@pytest.mark.parametrize("threaded", [False, True])
def test_a_failing_source_is_failed_with_its_reason_and_the_others_go_on(
    clock: FakeClock, threaded: bool
) -> None:
    changes: list[SourceTransition] = []
    pipeline = _pipeline(clock, threaded)
    try:
        results = list(
            pipeline.run({"bad": Failing(3), "good": range(40)}, on_source_state=changes.append)
        )
        sources = pipeline.snapshot().sources
    finally:
        pipeline.cleanup()
    assert [r.item for r in results if r.source == "good"] == list(range(40))
    assert [r.item for r in results if r.source == "bad"] == [0, 1, 2]
    assert sources["bad"].state is SourceState.FAILED
    assert sources["bad"].reason == "OSError: camera unplugged"
    assert sources["good"].state is SourceState.ENDED
    bad = [(c.old, c.new) for c in changes if c.source == "bad"]
    assert bad == [
        (SourceState.STARTING, SourceState.RUNNING),
        (SourceState.RUNNING, SourceState.FAILED),
    ]
    assert sources["bad"].transitions == {"running": 1, "failed": 1}


def test_a_source_silent_inside_next_is_stalled_within_the_bound_then_running(
    clock: FakeClock,
) -> None:
    changes: list[SourceTransition] = []
    silent = Gate(before=2, after=3)
    pipeline = _pipeline(clock, threaded=True)
    run = pipeline.run(
        {"cam": silent, "other": range(3)}, stall_after=2.0, on_source_state=changes.append
    )
    try:
        got = [next(run) for _ in range(5)]
        assert silent.waiting.wait(10)
        last_frame = clock.monotonic_ns()
        feeds = pipeline._runtime.sources
        assert feeds is not None
        rounds = feeds.rounds
        clock.advance(1.9)  # below stall_after: not stalled
        wait_for(lambda: feeds.rounds > rounds, what="a watcher round")
        assert pipeline.snapshot().sources["cam"].state is SourceState.RUNNING
        clock.advance(0.1 + feeds.check_every)
        wait_for(lambda: pipeline.snapshot().sources["cam"].state is SourceState.STALLED)
        stalled = next(c for c in changes if c.new is SourceState.STALLED)
        assert stalled.source == "cam"
        assert 2.0 <= (stalled.at_ns - last_frame) / 1e9 <= 2.0 + feeds.check_every
        assert pipeline.snapshot().sources["cam"].last_frame_age == pytest.approx(
            2.0 + feeds.check_every
        )
        silent.release.set()
        got += list(run)
    finally:
        run.close()
        pipeline.cleanup()
    assert sorted(r.item for r in got if r.source == "cam") == [0, 1, 2, 3, 4]
    cam = [(c.old, c.new) for c in changes if c.source == "cam"]
    assert cam == [
        (SourceState.STARTING, SourceState.RUNNING),
        (SourceState.RUNNING, SourceState.STALLED),
        (SourceState.STALLED, SourceState.RUNNING),
        (SourceState.RUNNING, SourceState.ENDED),
    ]


def test_nothing_is_stalled_during_the_warmup(clock: FakeClock) -> None:
    silent = Gate(before=0, after=1)
    pipeline = _pipeline(clock, threaded=True)
    run = pipeline.run({"cam": silent}, stall_after=1.0, warmup=5.0)
    try:
        thread = threading.Thread(target=lambda: list(run), name="framescope-test:reader")
        thread.start()
        assert silent.waiting.wait(10)
        feeds = pipeline._runtime.sources
        assert feeds is not None
        rounds = feeds.rounds
        clock.advance(4.9)
        wait_for(lambda: feeds.rounds > rounds, what="a watcher round")
        assert pipeline.snapshot().sources["cam"].state is SourceState.STARTING
        clock.advance(0.5)
        wait_for(lambda: pipeline.snapshot().sources["cam"].state is SourceState.STALLED)
        silent.release.set()
        thread.join(10)
    finally:
        silent.release.set()
        pipeline.cleanup()


def test_a_slow_stage_makes_every_source_blocked_never_stalled(clock: FakeClock) -> None:
    go = threading.Event()

    def slow(item: Any) -> Any:
        go.wait(30)
        return item

    changes: list[SourceTransition] = []
    pipeline = _pipeline(clock, threaded=True, stage=slow)
    run = pipeline.run(
        {name: range(30) for name in ("a", "b", "c")},
        stall_after=1.0,
        on_source_state=changes.append,
    )
    reader = threading.Thread(target=lambda: list(run), name="framescope-test:reader")
    try:
        reader.start()
        feeds = None
        wait_for(lambda: pipeline._runtime.sources is not None)
        feeds = pipeline._runtime.sources
        assert feeds is not None
        # 40 rounds: 10 s of the clock or more, well past stall_after. A step the watcher
        # missed (its first slot is set when its thread starts) is followed by another.
        for _ in range(400):
            if feeds.rounds >= 40:
                break
            rounds = feeds.rounds
            clock.advance(feeds.check_every)
            holds_within(lambda rounds=rounds: feeds.rounds > rounds, 1.0)
        assert feeds.rounds >= 40
        states = {n: s.state for n, s in pipeline.snapshot().sources.items()}
        assert states == dict.fromkeys("abc", SourceState.BLOCKED)
        go.set()
        reader.join(30)
    finally:
        go.set()
        pipeline.cleanup()
    assert not any(c.new is SourceState.STALLED for c in changes)
    assert {s.state for s in pipeline.snapshot().sources.values()} == {SourceState.ENDED}


def test_the_callback_is_called_once_per_transition_and_may_raise(clock: FakeClock) -> None:
    calls: list[SourceTransition] = []

    def callback(change: SourceTransition) -> None:
        calls.append(change)
        raise RuntimeError("callback bug")

    pipeline = _pipeline(clock, threaded=False)
    try:
        results = list(pipeline.run({"a": range(3), "b": range(2)}, on_source_state=callback))
        sources = pipeline.snapshot().sources
    finally:
        pipeline.cleanup()
    assert len(results) == 5
    assert sorted((c.source, c.new.value) for c in calls) == [
        ("a", "ended"),
        ("a", "running"),
        ("b", "ended"),
        ("b", "running"),
    ]
    assert (sources["a"].callback_errors, sources["b"].callback_errors) == (2, 2)


@pytest.mark.parametrize("threaded", [False, True])
def test_breaking_out_leaves_no_thread(clock: FakeClock, threaded: bool) -> None:
    pipeline = _pipeline(clock, threaded)
    endless = {name: iter(lambda: 1, None) for name in ("a", "b")}
    try:
        for count, _ in enumerate(pipeline.run(endless)):
            if count == 20:
                break
        alive = [
            t.name for t in threading.enumerate() if t.name.startswith("framescope:Cams:source")
        ]
        assert alive == []
        sources = pipeline.snapshot().sources
        assert sum(s.frames for s in sources.values()) >= 21
        # Not read any more: ended, said so, never left looking alive (and healthy).
        for source in sources.values():
            assert source.state is SourceState.ENDED, source
            assert source.reason == "the run was stopped"
    finally:
        pipeline.cleanup()


def test_a_stage_error_is_counted_for_its_source(clock: FakeClock) -> None:
    def picky(item: Sourced) -> Sourced:
        if item.source == "b" and item.item == 1:
            raise ValueError("no")
        return item

    pipeline = _pipeline(clock, threaded=False, stage=picky)
    try:
        with pytest.raises(Exception, match="no"):
            list(pipeline.run({"b": range(3)}))
        assert pipeline.snapshot().sources["b"].failed == 1
    finally:
        pipeline.cleanup()


@pytest.mark.parametrize(
    ("sources", "kwargs", "error"),
    [
        ({}, {}, ValueError),
        ({"a": 3}, {}, TypeError),
        ({1: range(2)}, {}, TypeError),
        ({"a": range(2)}, {"stall_after": 0}, ValueError),
        ({"a": range(2)}, {"warmup": -1}, ValueError),
        ({"a": range(2)}, {"on_source_state": 3}, TypeError),
        (range(2), {"stall_after": 1.0}, TypeError),
    ],
)
def test_bad_arguments_are_refused(
    clock: FakeClock, sources: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    pipeline = _pipeline(clock, threaded=False)
    try:
        with pytest.raises(error):
            pipeline.run(sources, **kwargs)
    finally:
        pipeline.cleanup()


def test_the_sources_go_to_json_and_back(clock: FakeClock) -> None:
    pipeline = _pipeline(clock, threaded=False)
    try:
        list(pipeline.run({"a": range(3), "b": Failing(1)}))
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    data = json.loads(snapshot.to_json())
    back = PipelineSnapshot.from_dict(data)
    assert back.sources == snapshot.sources
    assert back.sources["b"].reason == "OSError: camera unplugged"
    data["sources"][1]["state"] = "asleep"
    with pytest.raises(SnapshotFormatError, match=r"^sources\[1\]\.state: expected one of"):
        PipelineSnapshot.from_dict(data)
    data["sources"][1]["state"] = "failed"
    data["sources"][1]["name"] = "a"
    with pytest.raises(SnapshotFormatError, match=r"^sources\[1\]\.name: 'a' appears twice"):
        PipelineSnapshot.from_dict(data)


def test_the_snapshot_prints_a_row_per_source(clock: FakeClock) -> None:
    pipeline = _pipeline(clock, threaded=False)
    try:
        list(pipeline.run({"door": range(3), "yard": Failing(1)}))
        clock.advance(2.0)
        text = str(pipeline.snapshot())
    finally:
        pipeline.cleanup()
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("source"))
    assert lines[head].split()[:3] == ["source", "state", "for"]
    door, yard = lines[head + 1].split(), lines[head + 2].split()
    assert door[:4] == ["door", "ended", "2.0", "3"]
    assert yard[:4] == ["yard", "failed", "2.0", "1"]
    assert lines[head + 2].endswith("OSError: camera unplugged")


def test_a_video_source_waiting_to_reconnect_is_reconnecting(clock: FakeClock) -> None:
    pytest.importorskip("av")
    from framescope.video import VideoSource
    from tests.video.helpers import free_port

    # Nothing listens on the port: each open is refused at once, then the source backs off
    # on the fake clock, saying it is reconnecting.
    camera = VideoSource(
        f"tcp://127.0.0.1:{free_port()}", format="mpegts", reconnect=True, clock=clock
    )
    changes: list[SourceTransition] = []
    pipeline = _pipeline(clock, threaded=True)
    run = pipeline.run({"cam": camera, "other": range(3)}, on_source_state=changes.append)
    reader = threading.Thread(target=lambda: list(run), name="framescope-test:reader")
    try:
        reader.start()
        wait_for(lambda: camera.reconnecting, what="the source's back-off")
        feeds = pipeline._runtime.sources
        assert feeds is not None
        rounds = feeds.rounds
        clock.advance(feeds.check_every)
        wait_for(lambda: feeds.rounds > rounds, what="a watcher round")
        assert pipeline.snapshot().sources["cam"].state is SourceState.RECONNECTING
    finally:
        camera.close()
        reader.join(30)
        pipeline.cleanup()
    cam = [(c.old, c.new) for c in changes if c.source == "cam"]
    assert cam == [
        (SourceState.STARTING, SourceState.RECONNECTING),
        (SourceState.RECONNECTING, SourceState.ENDED),
    ]
    assert pipeline.snapshot().sources["other"].state is SourceState.ENDED


class Reconnecting(Gate):
    """A camera that gives ``before`` items, then reconnects (``reconnecting``) until released."""

    def __init__(self, before: int, after: int = 0) -> None:
        super().__init__(before, after)
        self.reconnecting = False
        self.last_error: str | None = None

    def __iter__(self) -> Iterator[int]:
        yield from range(self.before)
        self.last_error = "ConnectionRefusedError: refused"
        self.reconnecting = True
        self.waiting.set()
        self.release.wait(30)
        self.reconnecting = False
        yield from range(self.before, self.before + self.after)


def test_a_source_reconnecting_past_stall_after_is_stalled(clock: FakeClock) -> None:
    camera = Reconnecting(before=2, after=2)
    changes: list[SourceTransition] = []
    pipeline = _pipeline(clock, threaded=True)
    run = pipeline.run({"cam": camera}, stall_after=2.0, on_source_state=changes.append)
    try:
        got = [next(run) for _ in range(2)]
        assert camera.waiting.wait(10)
        last_frame = clock.monotonic_ns()
        feeds = pipeline._runtime.sources
        assert feeds is not None
        rounds = feeds.rounds
        clock.advance(feeds.check_every)  # a drop seen at once: reconnecting, not yet stalled
        wait_for(lambda: feeds.rounds > rounds, what="a watcher round")
        assert pipeline.snapshot().sources["cam"].state is SourceState.RECONNECTING
        clock.advance(2.0)  # still reconnecting, and no frame for stall_after: stalled
        wait_for(lambda: pipeline.snapshot().sources["cam"].state is SourceState.STALLED)
        rounds = feeds.rounds
        clock.advance(feeds.check_every)
        wait_for(lambda: feeds.rounds > rounds, what="a watcher round")
        assert pipeline.snapshot().sources["cam"].state is SourceState.STALLED  # it stays so
        camera.release.set()
        got += list(run)
    finally:
        camera.release.set()
        run.close()
        pipeline.cleanup()
    assert [r.item for r in got] == [0, 1, 2, 3]
    assert [(c.old, c.new) for c in changes] == [
        (SourceState.STARTING, SourceState.RUNNING),
        (SourceState.RUNNING, SourceState.RECONNECTING),
        (SourceState.RECONNECTING, SourceState.STALLED),
        (SourceState.STALLED, SourceState.RUNNING),
        (SourceState.RUNNING, SourceState.ENDED),
    ]
    stalled = changes[2]
    assert 2.0 <= (stalled.at_ns - last_frame) / 1e9 <= 2.0 + feeds.check_every
    assert stalled.reason == (
        f"no frame for {(stalled.at_ns - last_frame) / 1e9:.3g} s;"
        " reconnecting after ConnectionRefusedError: refused"
    )


class Closable:
    """A camera whose read, after ``before`` items, waits until the camera is closed."""

    def __init__(self, before: int) -> None:
        self.before = before
        self.closed = threading.Event()
        self.waiting = threading.Event()

    def __iter__(self) -> Iterator[int]:
        yield from range(self.before)
        self.waiting.set()
        self.closed.wait(30)  # a network read that ends when the camera is closed

    def close(self) -> None:
        self.closed.set()


def test_breaking_out_closes_a_source_waiting_inside_its_read(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    camera = Closable(before=3)
    inside = threading.Event()

    def generator() -> Iterator[int]:
        yield from range(3)
        inside.set()
        camera.closed.wait(30)  # let go with the camera, so the stop needs no wait

    pipeline = _pipeline(clock, threaded=True)
    try:
        # A generator is an iterator, run by its thread: it is not closed from another one.
        run = pipeline.run({"cam": camera, "plain": generator()})
        got = [next(run) for _ in range(6)]
        assert camera.waiting.wait(10) and inside.wait(10)
        with caplog.at_level(logging.WARNING, "framescope.pipeline"):
            run.close()  # the run is broken out of: its sources' threads stop
        assert camera.closed.is_set()
        alive = [t.name for t in threading.enumerate() if t.name == "framescope:Cams:source:cam"]
        assert alive == []
        assert [r.getMessage() for r in caplog.records if "closing" in r.getMessage()] == []
    finally:
        camera.close()
        pipeline.cleanup()
    assert sorted(r.item for r in got if r.source == "cam") == [0, 1, 2]


def test_the_pipeline_s_drops_are_counted_per_source(clock: FakeClock) -> None:
    go = threading.Event()

    def gated(item: Any) -> Any:
        go.wait(30)
        return item

    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(gated, "Gated")
    pipeline.parallelize(overflow="drop_newest")
    run = pipeline.run({"a": range(20), "b": range(20)})
    results: list[Sourced] = []
    reader = threading.Thread(target=lambda: results.extend(run), name="framescope-test:reader")
    try:
        reader.start()
        wait_for(
            lambda: {s.state for s in pipeline.snapshot().sources.values()} == {SourceState.ENDED},
            what="both sources ended",
        )
        go.set()
        reader.join(30)
        snapshot = pipeline.snapshot()
    finally:
        go.set()
        pipeline.cleanup()
    sources = snapshot.sources
    assert sum(s.dropped for s in sources.values()) == snapshot.counters["dropped_newest"] > 0
    for name, source in sources.items():
        kept = [r.item for r in results if r.source == name]
        assert source.frames == 20
        assert source.frames - source.dropped == source.results == len(kept)
        assert kept == sorted(kept)  # in order per source, with gaps where it was dropped


@pytest.mark.integration
def test_two_synthetic_cameras_at_real_time() -> None:
    from framescope.video import SyntheticSource

    pipeline = Pipeline(name="Cams")
    pipeline.add(lambda frame: frame, "Pass")
    pipeline.parallelize()
    seen: dict[str, list[int]] = {"cam1": [], "cam2": []}
    states: list[SourceTransition] = []
    cameras = {
        "cam1": SyntheticSource(64, 48, fps=30, frames=30, realtime=True),
        "cam2": SyntheticSource(64, 48, fps=20, frames=10, realtime=True),
    }
    try:
        for frame in pipeline.run(cameras, on_source_state=states.append):
            seen[frame.source].append(frame.index)
        sources = pipeline.snapshot().sources
    finally:
        pipeline.cleanup()
    assert seen == {"cam1": list(range(30)), "cam2": list(range(10))}
    for name in cameras:
        assert sources[name].state is SourceState.ENDED
        assert sources[name].fps is not None and sources[name].fps > 0
        assert sources[name].last_frame_age is not None
    for name in cameras:
        entered = [c.new for c in states if c.source == name]
        assert entered[0] is SourceState.RUNNING and entered[-1] is SourceState.ENDED
        assert SourceState.STALLED not in entered  # a camera paced at its rate is never silent


def test_each_transition_is_logged_once_a_failure_with_its_traceback(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = _pipeline(clock, threaded=False)
    with caplog.at_level(logging.INFO, logger="framescope.pipeline.runtime.sources"):
        try:
            list(pipeline.run({"bad": Failing(1), "good": range(2)}))
        finally:
            pipeline.cleanup()
    lines = sorted(
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == "framescope.pipeline.runtime.sources"
    )
    assert lines == [
        (
            "ERROR",
            "pipeline 'Cams': source 'bad' running -> failed (OSError: camera unplugged)",
            True,
        ),
        ("INFO", "pipeline 'Cams': source 'bad' starting -> running", False),
        ("INFO", "pipeline 'Cams': source 'good' running -> ended", False),
        ("INFO", "pipeline 'Cams': source 'good' starting -> running", False),
    ]


def test_fps_and_last_frame_age_are_read_on_the_pipeline_s_clock(clock: FakeClock) -> None:
    def paced(period: float, count: int) -> Iterator[int]:
        for index in range(count):
            clock.advance(period)  # the frame comes `period` after the one before
            yield index

    pipeline = _pipeline(clock, threaded=False)
    try:
        assert len(list(pipeline.run({"cam": paced(0.1, 20)}))) == 20
        clock.advance(0.5)
        cam = pipeline.snapshot().sources["cam"]
    finally:
        pipeline.cleanup()
    assert cam.fps == pytest.approx(10.0)
    assert cam.last_frame_age == pytest.approx(0.5)
    assert cam.since == pytest.approx(0.5)  # ended with its last frame

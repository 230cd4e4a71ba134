"""The heartbeat file: written atomically, every interval of the pipeline's clock, with its fields."""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framescope.clock import FakeClock
from framescope.health import HEARTBEAT_FORMAT, Heartbeat, check_heartbeat
from framescope.pipeline import Pipeline
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.sources import SourceSnapshot, SourceState
from framescope.stats import StatsSnapshot
from tests.polling import wait_for

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).timestamp()


class Snapshots:
    """A snapshot source (what a Pipeline is to a reader) that gives what a test sets."""

    def __init__(self, *sources: SourceSnapshot) -> None:
        self.sources = sources

    def snapshot(self) -> PipelineSnapshot:
        return PipelineSnapshot(
            pipeline="Cams",
            latency=StatsSnapshot(window=1),
            sources={s.name: s for s in self.sources},
        )


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def test_written_at_start_then_every_interval_of_the_pipeline_s_clock(
    clock: FakeClock, tmp_path: Path
) -> None:
    pipeline = Pipeline(name="Cams", clock=clock).add(lambda x: x, "Pass")
    path = tmp_path / "heartbeat.json"
    heartbeat = Heartbeat(pipeline, path, interval=5.0).start()
    try:
        assert heartbeat.writes == 1 and read(path)["time"] == START
        for beat in (1, 2, 3):
            clock.advance(2.5)
            clock.advance(2.5)
            wait_for(lambda beat=beat: heartbeat.writes == beat + 1, what=f"write {beat + 1}")
            assert read(path)["time"] == START + 5.0 * beat  # written when due, not later
        assert heartbeat.write_errors == 0
    finally:
        assert heartbeat.close()
    assert not any(t.name.startswith("framescope-heartbeat") for t in threading.enumerate())


def test_closing_writes_the_state_at_the_end_once(clock: FakeClock, tmp_path: Path) -> None:
    pipeline = Pipeline(name="Cams", clock=clock).add(lambda x: x, "Pass").serialize()
    path = tmp_path / "heartbeat.json"
    with Heartbeat(pipeline, path, interval=5.0) as heartbeat:
        assert read(path)["frames"] == 0
        for i in range(3):
            pipeline.forward(i)
        clock.advance(1.0)
    assert heartbeat.writes == 2  # the first, and the last at the close
    last = read(path)
    assert last["time"] == START + 1.0 and last["frames"] == 3
    assert heartbeat.close() and heartbeat.writes == 2  # closing again writes nothing
    pipeline.cleanup()


def test_the_fields_per_pipeline_and_per_source(clock: FakeClock, tmp_path: Path) -> None:
    def paced(period: float, count: int) -> Iterator[int]:
        for index in range(count):
            clock.advance(period)
            yield index

    pipeline = Pipeline(name="Cams", clock=clock).add(lambda x: x, "Pass")
    try:
        assert len(list(pipeline.run({"cam": paced(0.1, 20)}))) == 20
        clock.advance(0.5)
        path = tmp_path / "heartbeat.json"
        health = Heartbeat(pipeline, path, interval=1.0).write()
        latency = pipeline.snapshot().latency  # the same instant: the clock stands still
    finally:
        pipeline.cleanup()
    data = read(path)
    assert health.healthy and data["status"] == "ok" and data["problems"] == []
    assert data["format"] == HEARTBEAT_FORMAT and data["pid"] == os.getpid()
    assert data["pipeline"] == "Cams" and data["interval"] == 1.0
    assert data["time"] == pytest.approx(START + 2.5)  # 20 frames 0.1 s apart, then 0.5 s
    assert data["frames"] == 20
    # 19 gaps over the 2.2 s from the first result to one mean gap before the reading:
    # the rate over the last 5 s falls once results stop, as the pipeline's fps does.
    assert data["fps"] == latency.rate(clock.monotonic_ns()) == pytest.approx(19 / 2.2, rel=0.01)
    assert data["last_frame_age"] == pytest.approx(0.5)
    cam = data["sources"]["cam"]
    assert cam["state"] == "ended" and cam["frames"] == 20
    assert cam["fps"] == pytest.approx(10.0) and cam["last_frame_age"] == pytest.approx(0.5)


def test_an_unhealthy_pipeline_is_written_as_such(clock: FakeClock, tmp_path: Path) -> None:
    stalled = SourceSnapshot("cam2", SourceState.STALLED, 1.0, reason="no frame for 6.0 s")
    path = tmp_path / "hb.json"
    Heartbeat(Snapshots(stalled), path, clock=clock).write()
    data = read(path)
    assert data["time"] == START  # a source without wall time: the heartbeat's clock
    assert data["status"] == "unhealthy"
    assert [(p["name"], p["state"]) for p in data["problems"]] == [("cam2", "stalled")]
    assert check_heartbeat(path, 10, now=START + 1) == (
        False,
        "unhealthy: source cam2 stalled (no frame for 6.0 s)",
    )


def test_each_write_replaces_the_file_whole_and_a_failed_one_leaves_the_old(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hb.json"
    heartbeat = Heartbeat(Snapshots(), path, clock=clock)
    heartbeat.write()
    first = path.stat().st_ino
    clock.advance(1.0)
    heartbeat.write()
    assert path.stat().st_ino != first  # a new file renamed over the old, never rewritten
    before = path.read_bytes()

    def refuse(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("framescope.health.os.replace", refuse)
    clock.advance(1.0)
    heartbeat._beat()
    assert heartbeat.write_errors == 1 and heartbeat.writes == 2
    assert path.read_bytes() == before and read(path)["time"] == START + 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hb.json"]  # no temporary left


def test_a_failing_write_is_counted_and_logged_and_the_next_one_goes_on(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FileNotFoundError):  # the first write says what is wrong at once
        Heartbeat(Snapshots(), tmp_path / "no" / "hb.json", clock=clock).start()
    (tmp_path / "no").mkdir()
    heartbeat = Heartbeat(Snapshots(), tmp_path / "no" / "hb.json", interval=1.0, clock=clock)
    heartbeat.start()
    try:
        (tmp_path / "no" / "hb.json").unlink()
        (tmp_path / "no").rmdir()
        clock.advance(1.0)
        wait_for(lambda: heartbeat.write_errors == 1, what="a failed write counted")
        assert "heartbeat: cannot write" in caplog.text
        (tmp_path / "no").mkdir()
        clock.advance(1.0)
        wait_for(lambda: heartbeat.writes == 2, what="the next write")
        assert read(tmp_path / "no" / "hb.json")["time"] == START + 2.0
    finally:
        assert heartbeat.close()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pipeline must be a Pipeline"):
        Heartbeat(object(), tmp_path / "hb.json")
    with pytest.raises(TypeError, match="path must be a str or a path, got int"):
        Heartbeat(Snapshots(), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval"):
        Heartbeat(Snapshots(), tmp_path / "hb.json", interval=0)
    with pytest.raises(TypeError, match="clock"):
        Heartbeat(Snapshots(), tmp_path / "hb.json", clock=5)  # type: ignore[arg-type]


def test_check_says_fresh_stale_missing_and_not_a_heartbeat(
    clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "hb.json"
    Heartbeat(Snapshots(), path, clock=clock).write()
    assert check_heartbeat(path, 10, now=START + 9.5) == (
        True,
        "ok: Cams, 0.0 fps, written 9.5 s ago",
    )
    assert check_heartbeat(path, 10, now=START + 12) == (
        False,
        f"stale: written 12.0 s ago (more than 10 s) by pid {os.getpid()}",
    )
    healthy, line = check_heartbeat(tmp_path / "none.json", 10, now=START)
    assert (
        not healthy and line == f"cannot read {tmp_path / 'none.json'}: No such file or directory"
    )
    (tmp_path / "half.json").write_text('{"format": "framescope-hea')
    healthy, line = check_heartbeat(tmp_path / "half.json", 10, now=START)
    assert not healthy and line.startswith(f"{tmp_path / 'half.json'} is not a heartbeat file")
    (tmp_path / "other.json").write_text('{"time": 1}')
    assert not check_heartbeat(tmp_path / "other.json", 10, now=START)[0]

"""Recording a pipeline into a run file and reading it back (a fake clock drives the times)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from framescope import Pipeline, load_run, record
from framescope.clock import FakeClock
from framescope.runs import RunFormatError
from framescope.runs.runfile import RunFile, read_records
from tests import polling


def timed_pipeline(clock: FakeClock, **options: object) -> Pipeline:
    """Decode takes 2 ms, Detect 5 ms of the fake clock; item 7 fails in Detect."""

    def decode(item: int) -> int:
        clock.advance(0.002)
        return item

    def detect(item: int) -> int:
        clock.advance(0.005)
        if item == 7:
            raise ValueError("bad frame")
        return item

    pipeline = Pipeline(name="Cam", clock=clock, **options)  # type: ignore[arg-type]
    return pipeline.add(decode, "Decode").add(detect, "Detect", on_error="skip")


def test_each_interval_holds_what_happened_in_it(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = timed_pipeline(clock)
    recording = record(pipeline, tmp_path / "run.fsrun", interval=3600, label="v1")
    assert not recording.take()  # not started: nothing written yet
    for item in range(5):
        pipeline.forward(item)  # starts it: counted from the last look before that
    assert recording.take()
    for item in range(5, 9):
        pipeline.forward(item)
    recording.take()
    pipeline.cleanup()
    assert recording.close()
    run = load_run(tmp_path / "run.fsrun")
    assert run.label == "v1" and run.stage_keys == ("Cam__Decode", "Cam__Detect")
    assert run.header["pipeline"] == "Cam" and run.header["mode"] == "serial"
    assert not run.torn and run.end is not None and run.end.counters["forwarded"] == 9
    first, second = run.intervals[:2]
    assert first["span"] == pytest.approx(5 * 0.007)
    assert first["pipeline"]["completed"] == 5
    assert first["stages"]["Cam__Decode"]["samples_ns"] == [2_000_000] * 5
    assert first["stages"]["Cam__Detect"]["samples_ns"] == [5_000_000] * 5
    assert second["stages"]["Cam__Detect"]["failures"] == 1
    assert second["pipeline"]["completed"] == 3 and second["pipeline"]["failed"] == 1
    assert first["pipeline"]["samples_ns"] == [7_000_000] * 5  # end to end
    assert run.seconds == pytest.approx(9 * 0.007)


def test_the_recorder_thread_takes_an_interval_each_interval_of_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = timed_pipeline(clock).start()
    with record(pipeline, tmp_path / "run.fsrun", interval=1.0) as recording:
        assert recording._file is not None  # running already: recorded from now on
        for second in (1, 2, 3):
            for item in range(10):
                pipeline.forward(item)  # 70 ms of the clock
            clock.advance(0.93)
            polling.wait_for(lambda n=second: recording.intervals == n, what=f"interval {second}")
    pipeline.cleanup()
    run = load_run(tmp_path / "run.fsrun")
    assert [i["pipeline"]["completed"] for i in run.intervals] == [9, 9, 9]  # item 7 fails
    assert [i["pipeline"]["failed"] for i in run.intervals] == [1, 1, 1]
    assert [i["span"] for i in run.intervals] == pytest.approx([1.0, 1.0, 1.0])


def test_pipeline_record_writes_the_file_and_closes_it_at_cleanup(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = timed_pipeline(clock, record=tmp_path / "cam.fsrun")
    for item in range(3):
        pipeline.forward(item)
    pipeline.cleanup()
    run = load_run(tmp_path / "cam.fsrun")
    assert run.end is not None and run.end.counters["completed"] == 3
    assert run.label == "cam.fsrun"


def test_a_file_cut_short_by_a_crash_is_read_up_to_the_cut(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = timed_pipeline(clock).start()
    path = tmp_path / "run.fsrun"
    recording = record(pipeline, path, interval=3600)
    recording.take()
    for item in range(4):
        pipeline.forward(item)
        recording.take()
    whole = path.read_bytes()  # the writer never closed: no end record
    path.write_bytes(whole + gzip.compress(b'{"kind": "interval"')[:-9])  # a member cut short
    run = load_run(path)
    assert run.torn and run.end is None and len(run.intervals) == 4
    recording.close()
    pipeline.cleanup()


def test_long_runs_are_compacted_two_intervals_into_one(tmp_path: Path) -> None:
    path = tmp_path / "long.fsrun"
    header = {"format": "framescope-run", "version": 1, "stages": [{"key": "A"}]}
    runfile = RunFile(path, header, max_intervals=8, keep_samples=3)
    runfile.open()
    for n in range(1, 10):
        runfile.write(
            {
                "kind": "interval", "t": float(n), "span": 1.0,
                "pipeline": {"completed": n, "samples_ns": [n] * 4},
                "stages": {"A": {"count": n, "failures": 1, "samples_ns": [n] * 4}},
            }
        )  # fmt: skip
    runfile.close()
    assert runfile.compactions == 1
    intervals = [r for r in read_records(path)[0] if r["kind"] == "interval"]
    assert [i["span"] for i in intervals] == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert sum(i["stages"]["A"]["count"] for i in intervals) == sum(range(1, 10))
    assert sum(i["stages"]["A"]["failures"] for i in intervals) == 9
    assert intervals[0]["stages"]["A"]["samples_ns"] == [1, 1, 2]  # thinned to keep_samples
    assert [i["t"] for i in intervals][:2] == [2.0, 4.0]


def test_what_is_not_a_run_says_so(tmp_path: Path) -> None:
    (tmp_path / "text.fsrun").write_text("hello")
    with pytest.raises(RunFormatError, match="is not a framescope run"):
        load_run(tmp_path / "text.fsrun")
    (tmp_path / "other.fsrun").write_bytes(gzip.compress(json.dumps({"kind": "x"}).encode()))
    with pytest.raises(RunFormatError, match="no run header"):
        load_run(tmp_path / "other.fsrun")
    header = {"kind": "header", "format": "framescope-run", "version": 99}
    (tmp_path / "new.fsrun").write_bytes(gzip.compress(json.dumps(header).encode()))
    with pytest.raises(RunFormatError, match="format version 99; this framescope reads version 1"):
        load_run(tmp_path / "new.fsrun")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"interval": 0}, ValueError, "interval"),
        ({"label": 3}, TypeError, "label must be a str"),
        ({"max_intervals": 2}, ValueError, "max_intervals must be at least 4"),
    ],
)
def test_bad_recording_options_name_the_argument(
    tmp_path: Path, options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        record(Pipeline(), tmp_path / "x.fsrun", **options)  # type: ignore[arg-type]


def test_a_path_that_cannot_be_written_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="file"):
        record(Pipeline(), tmp_path / "file" / "run.fsrun")  # a file where a folder should be


def test_every_interval_has_the_machine_probe_so_compare_adjusts(tmp_path: Path) -> None:
    """The first interval (a pipeline seen before it started) and the last (at close) too."""
    from framescope import compare

    paths = []
    for name in ("a", "b"):
        clock = FakeClock()
        pipeline = timed_pipeline(clock)
        recording = record(pipeline, tmp_path / f"{name}.fsrun", interval=3600)
        assert not recording.take()
        for item in range(5):
            pipeline.forward(item)
        assert recording.take()
        for item in range(5, 9):
            pipeline.forward(item)
        pipeline.cleanup()
        assert recording.close()
        paths.append(tmp_path / f"{name}.fsrun")
    run = load_run(paths[0])
    assert len(run.intervals) == 2
    assert all(isinstance(interval["probe_ns"], int) for interval in run.intervals)
    assert compare(*paths, adjust=True).machine is not None  # the runs have every probe
    assert compare(*paths).machine is None  # as measured, by default


def _record_items(path: Path, items: range, **options: object) -> None:
    """Record ``items`` through a fresh timed pipeline into ``path`` (a fake clock)."""
    clock = FakeClock()
    pipeline = timed_pipeline(clock)
    recording = record(pipeline, path, interval=3600, **options)  # type: ignore[arg-type]
    recording.take()
    for item in items:
        pipeline.forward(item)
    recording.take()
    pipeline.cleanup()
    assert recording.close()


def test_recordings_appended_in_turns_make_one_run(tmp_path: Path) -> None:
    path = tmp_path / "turns.fsrun"
    _record_items(path, range(5), label="first", append=True)  # no file yet: starts it
    _record_items(path, range(3), label="second", append=True)
    _record_items(path, range(4), label="third", append=True)
    run = load_run(path)
    assert run.label == "first"  # the run's header is its first recording's
    assert [s["label"] for s in run.segments] == ["second", "third"]
    assert sum(i["pipeline"]["completed"] for i in run.intervals) == 5 + 3 + 4
    times = [i["t"] for i in run.intervals]
    assert times == sorted(times) and len(set(times)) == len(times)  # one time line
    assert run.segments[0]["t"] == pytest.approx(5 * 0.007)  # where the second starts
    assert run.seconds == pytest.approx(12 * 0.007)
    assert run.end is not None and run.end.counters["forwarded"] == 4  # the last recording's
    _record_items(path, range(2))  # not appending: a new run
    assert sum(i["pipeline"]["completed"] for i in load_run(path).intervals) == 2


def test_appending_to_what_is_not_a_run_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "notes.fsrun").write_text("not a run")
    with pytest.raises(ValueError, match=r"append: .*notes.fsrun.* is not a framescope run"):
        record(Pipeline(), tmp_path / "notes.fsrun", append=True)
    assert (tmp_path / "notes.fsrun").read_text() == "not a run"  # left as it was
    with pytest.raises(TypeError, match="append must be a bool"):
        record(Pipeline(), tmp_path / "x.fsrun", append="yes")  # type: ignore[arg-type]


def test_appending_after_a_crash_drops_the_torn_end(tmp_path: Path) -> None:
    path = tmp_path / "crashed.fsrun"
    _record_items(path, range(5))
    path.write_bytes(path.read_bytes() + gzip.compress(b'{"kind": "interval"')[:-9])
    assert load_run(path).torn
    _record_items(path, range(3), append=True)
    run = load_run(path)
    assert not run.torn and len(run.segments) == 1
    assert sum(i["pipeline"]["completed"] for i in run.intervals) == 8


def test_compaction_keeps_appended_segments_in_place(tmp_path: Path) -> None:
    path = tmp_path / "long.fsrun"
    header = {"format": "framescope-run", "version": 1, "stages": [{"key": "A"}]}

    def interval(n: int) -> dict[str, object]:
        part = {"count": 1, "samples_ns": [n], "on_cpu_s": 0.5}
        return {"kind": "interval", "t": float(n), "span": 1.0,
                "pipeline": {"completed": 1, "samples_ns": [n]}, "stages": {"A": part}}  # fmt: skip

    first = RunFile(path, header, max_intervals=100)
    first.open()
    for n in range(1, 4):
        first.write(interval(n))
    first.close({"kind": "end", "snapshot": {}})
    second = RunFile(path, {**header, "label": "again"}, max_intervals=6)
    second.open(append=True)
    assert second.offset_s == 3.0 and second.intervals == 3
    for n in range(4, 8):
        second.write(interval(n))  # the 7th interval compacts the oldest half
    second.close()
    assert second.compactions == 1
    records = read_records(path)[0]
    kinds = [r["kind"] if r["kind"] != "interval" else r["span"] for r in records]
    # The first recording's three: two merged, one alone before its end; the segment stays.
    assert kinds == ["header", 2.0, 1.0, "end", "segment", 1.0, 1.0, 1.0, 1.0]
    assert records[1]["stages"]["A"]["on_cpu_s"] == 1.0  # CPU seconds add up
    assert records[0].get("label") is None and records[4]["label"] == "again"


def _recorded_on_fake_cpu(path: Path) -> tuple[FakeClock, Any, Pipeline, Any]:
    """A threaded one-stage pipeline ("Cam__Work") whose CPU seconds a test sets, recorded."""
    from framescope.pipeline.lowlevel import FakeCpuSource

    clock = FakeClock()
    cpu = FakeCpuSource(clock=clock)
    cpu.set("Cam__Work", on_cpu=0.0)
    pipeline = Pipeline(name="Cam", clock=clock, cpu_source=cpu)
    pipeline.add(lambda item: item, "Work").parallelize(queue_size=4)
    return clock, cpu, pipeline, record(pipeline, path, interval=3600)


def _finished(pipeline: Pipeline, recording: Any) -> tuple[Any, list[float | None]]:
    """The run once both are closed, and each interval's CPU seconds of its stage."""
    pipeline.close()
    pipeline.join(5)
    pipeline.cleanup()
    recording.close()
    run = load_run(recording.path)
    return run, [i["stages"]["Cam__Work"].get("on_cpu_s") for i in run.intervals]


def test_each_interval_has_its_stages_cpu_seconds_and_both_probes(tmp_path: Path) -> None:
    clock, cpu, pipeline, recording = _recorded_on_fake_cpu(tmp_path / "cpu.fsrun")
    results = pipeline.results()
    pipeline.forward(0)
    assert next(results) == 0
    recording.take()
    cpu.set("Cam__Work", on_cpu=1.5)  # its thread ran 1.5 s for the next three items
    for item in range(1, 4):
        pipeline.forward(item)
        assert next(results) == item
    clock.advance(1.0)
    recording.take()
    run, seconds = _finished(pipeline, recording)
    known = [s for s in seconds if s is not None]
    assert all(s >= 0 for s in known) and sum(known) == pytest.approx(1.5)  # each once
    assert all(isinstance(i["probe_cpu_ns"], int) and i["probe_cpu_ns"] > 0 for i in run.intervals)


def test_runs_recorded_in_turns_compare_as_wholes(tmp_path: Path) -> None:
    """Three turns each of a version whose Detect takes 5 ms and one where it takes 6 ms."""
    from framescope import compare

    def turn(path: Path, detect_s: float) -> None:
        clock = FakeClock()
        pipeline = Pipeline(name="Cam", clock=clock)
        pipeline.add(lambda item: clock.advance(0.002) or item, "Decode")
        pipeline.add(lambda item: clock.advance(detect_s) or item, "Detect")
        recording = record(pipeline, path, interval=0.05, append=True)
        for item in range(40):
            pipeline.forward(item)
            recording.take()
        pipeline.cleanup()
        assert recording.close()

    for _ in range(3):
        turn(tmp_path / "before.fsrun", 0.005)
        turn(tmp_path / "after.fsrun", 0.006)
    before = load_run(tmp_path / "before.fsrun")
    assert (
        len(before.segments) == 2
        and sum(i["stages"]["Cam__Detect"]["count"] for i in before.intervals) == 120
    )
    comparison = compare(before, load_run(tmp_path / "after.fsrun"))
    detect = comparison.part("Cam__Detect").changes["p50"]
    assert detect.change == pytest.approx(0.2) and detect.verdict == "slower"
    assert comparison.part("Cam__Decode").verdict == "no change"


def _interval_record(n: int) -> dict[str, object]:
    return {"kind": "interval", "t": float(n), "span": 1.0,
            "pipeline": {"completed": 1, "samples_ns": [n]},
            "stages": {"A": {"count": 1, "samples_ns": [n], "on_cpu_s": 0.5}}}  # fmt: skip


def test_turns_of_one_interval_each_stay_bounded(tmp_path: Path) -> None:
    """Pairs merge across the start of a turn; superseded ends go: the file stays small."""
    path = tmp_path / "short.fsrun"
    header = {"format": "framescope-run", "version": 1, "stages": [{"key": "A"}]}
    rewrites = 0
    for n in range(1, 41):
        runfile = RunFile(path, header, max_intervals=8)
        runfile.open(append=True)
        runfile.write(_interval_record(n))
        runfile.close({"kind": "end", "snapshot": {"n": n}})
        rewrites += runfile.compactions
    records = read_records(path)[0]
    intervals = [r for r in records if r["kind"] == "interval"]
    assert len(intervals) <= 8 and rewrites <= 40 // 2  # not a rewrite per write
    assert sum(i["span"] for i in intervals) == 40.0  # every second still counted
    assert sum(i["stages"]["A"]["on_cpu_s"] for i in intervals) == 20.0
    ends = [r for r in records if r["kind"] == "end"]
    assert ends[-1]["snapshot"] == {"n": 40} and len(ends) <= 9  # the last one's end kept


def test_an_appended_turn_that_crashed_has_no_end(tmp_path: Path) -> None:
    path = tmp_path / "run.fsrun"
    _record_items(path, range(3), append=True)
    assert load_run(path).end is not None
    header = {"format": "framescope-run", "version": 1, "pipeline": "Cam", "stages": []}
    crashed = RunFile(path, header)
    crashed.open(append=True)  # a segment, then the process dies: no end of its own
    crashed.write(_interval_record(9))
    crashed.close()  # no end record, as after a crash
    run = load_run(path)
    assert len(run.segments) == 1 and run.end is None  # not the earlier turn's end


def test_appending_another_pipeline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.fsrun"
    _record_items(path, range(3))
    other = Pipeline(name="Cam").add(lambda item: item, "Decode").add(lambda item: item, "Other")
    with pytest.raises(ValueError, match=r"append: .* holds a run of pipeline 'Cam' with stages"):
        record(other, path, append=True)
    renamed = Pipeline(name="Door").add(lambda item: item, "Decode")
    with pytest.raises(ValueError, match="record another version into a file of its own"):
        record(renamed, path, append=True)
    assert len(load_run(path).intervals) >= 1  # left as it was


def test_a_bad_interval_leaves_an_existing_run_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.fsrun"
    _record_items(path, range(3))
    size = path.stat().st_size
    with pytest.raises(ValueError, match="interval"):
        record(Pipeline(), path, interval=-1)
    assert path.stat().st_size == size


def test_cpu_seconds_after_a_stage_went_unread_are_not_counted_twice(tmp_path: Path) -> None:
    """The recorder's own memory of each stage's last reading, not the snapshot before."""
    clock, cpu, pipeline, recording = _recorded_on_fake_cpu(tmp_path / "cpu.fsrun")
    results = pipeline.results()

    def interval(on_cpu: float | None) -> None:
        if on_cpu is None:
            cpu.forget("Cam__Work")  # its thread unreadable
        else:
            cpu.set("Cam__Work", on_cpu=on_cpu)  # its thread's CPU seconds so far
        for _ in range(2):
            pipeline.forward(0)
            assert next(results) == 0
        clock.advance(10.0)  # past the CPU window: an unread stage reads as not known
        recording.take()

    for on_cpu in (0.0, 2.0, None, 3.0, 3.5, 4.0):
        interval(on_cpu)
    _, seconds = _finished(pipeline, recording)
    known = [s for s in seconds if s]
    # 2 s; nothing while unread nor while its first reading after that is taken (the
    # accounting keeps no time across the gap); then 0.5 s twice. Never the run's
    # total again (what a stage unread in the snapshot before would have given).
    assert known == [2.0, 0.5, 0.5] and None in seconds

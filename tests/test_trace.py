from __future__ import annotations

import gzip
import json
import os
import stat
import threading
from collections import Counter, defaultdict
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from framescope import Pipeline, Stage
from framescope.clock import FakeClock
from framescope.pipeline import SourceState
from framescope.pipeline.model.traces import FrameTrace, StageSpan
from framescope.trace import chrome_trace
from tests.pipeline.helpers import Busy, Gate


class Detect(Stage):
    """Advances the fake clock inside a custom block, so the block nests in the call."""

    name = "Detect"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __call__(self, data: Any) -> Any:
        self.clock.advance(0.001)
        with self.events.block("nms"):
            self.clock.advance(0.002)
        self.clock.advance(0.001)
        return data


def run_traced(tmp_path: Path, name: str, **kwargs: Any) -> tuple[Pipeline, dict[str, Any]]:
    clock = FakeClock()
    pipeline = Pipeline(debug=True, clock=clock, **kwargs)
    pipeline.add(Busy("Decode", clock, 0.005)).add(Detect(clock)).add(Busy("Draw", clock, 0.001))
    pipeline.parallelize(queue_size=16)
    for i in range(10):
        pipeline.forward(i)
    assert len(list(islice(pipeline.results(timeout=10), 10))) == 10
    path = pipeline.export_trace(tmp_path / name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        document = json.load(handle)
    return pipeline, document


@pytest.mark.parametrize("name", ["trace.json", "trace.json.gz"])
def test_trace_is_valid_json_with_a_track_per_stage(tmp_path: Path, name: str) -> None:
    pipeline, document = run_traced(tmp_path, name)
    events = document["traceEvents"]
    threads = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"MainPipeline__Decode", "MainPipeline__Detect", "MainPipeline__Draw"} <= threads
    stage_slices = [e for e in events if e.get("cat") == "stage"]
    assert len(stage_slices) == 30
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in stage_slices)
    begins = [e for e in events if e.get("cat") == "frame" and e["ph"] == "b"]
    ends = [e for e in events if e.get("cat") == "frame" and e["ph"] == "e"]
    assert [e["args"]["frame"] for e in begins] == list(range(10))
    assert [e["id"] for e in ends] == list(range(10))
    assert all("latency_ms" in e["args"] for e in begins)  # every one finished
    assert any(e["ph"] == "C" and e["name"] == "queue depth" for e in events)
    assert any(e["ph"] == "C" and e["name"] == "fps" for e in events)
    pipeline.cleanup()


def test_custom_blocks_nest_inside_their_stage_slice(tmp_path: Path) -> None:
    pipeline, document = run_traced(tmp_path, "t.json")
    events = document["traceEvents"]
    stages = {(e["tid"], e["args"]["frame"]): e for e in events if e.get("cat") == "stage"}
    customs = [e for e in events if e.get("cat") == "custom"]
    assert len(customs) == 10
    for block in customs:
        parent = stages[(block["tid"], block["args"]["frame"])]
        assert parent["name"] == "Detect"
        assert parent["ts"] <= block["ts"]
        assert block["ts"] + block["dur"] <= parent["ts"] + parent["dur"] + 1e-6
        assert block["dur"] == pytest.approx(2_000)
    pipeline.cleanup()


def test_flows_connect_each_frame_end_to_end(tmp_path: Path) -> None:
    pipeline, document = run_traced(tmp_path, "t.json")
    events = document["traceEvents"]
    tids = {e["args"]["name"]: e["tid"] for e in events if e.get("name") == "thread_name"}
    expected_tids = [tids[f"MainPipeline__{n}"] for n in ("Decode", "Detect", "Draw")]
    flows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "flow":
            flows[e["id"]].append(e)
    assert sorted(flows) == list(range(10))
    for chain in flows.values():
        assert [e["ph"] for e in chain] == ["s", "t", "f"]
        assert [e["tid"] for e in chain] == expected_tids
        assert [e["ts"] for e in chain] == sorted(e["ts"] for e in chain)
    pipeline.cleanup()


def test_frame_traces_report_waits_processing_and_latency() -> None:
    clock = FakeClock()
    pipeline = Pipeline(debug=True, clock=clock)
    pipeline.add(Busy("A", clock, 0.010)).add(Busy("B", clock, 0.030)).parallelize(queue_size=8)
    for i in range(4):
        pipeline.forward(i)
    list(islice(pipeline.results(timeout=10), 4))
    traces = pipeline.frame_traces()
    assert [t.frame_id for t in traces] == [0, 1, 2, 3]
    for trace in traces:
        a, b = trace.spans
        assert a.busy_ns == 10_000_000
        assert b.busy_ns == 30_000_000
        assert trace.latency_ns >= a.busy_ns + b.busy_ns
        assert trace.latency_ns == a.wait_ns + a.busy_ns + (
            a.t_sent - a.t_end
        ) + b.wait_ns + b.busy_ns + (b.t_sent - b.t_end)
    pipeline.cleanup()


def test_sampling_and_ring_buffer_keep_memory_flat() -> None:
    pipeline = Pipeline(debug=True, trace_every=3, trace_frames=4).add(lambda d: d, "A")
    pipeline.parallelize(queue_size=64)
    for i in range(30):
        pipeline.forward(i)
    list(islice(pipeline.results(timeout=10), 30))
    assert [t.frame_id for t in pipeline.frame_traces()] == [18, 21, 24, 27]
    pipeline.cleanup()


def test_traces_need_debugging() -> None:
    pipeline = Pipeline(debug=False).add(lambda d: d, "A")
    with pytest.raises(RuntimeError, match="needs debugging on"):
        pipeline.export_trace("x.json")
    with pytest.raises(RuntimeError, match="has not started yet"):
        Pipeline(debug=True).add(lambda d: d).frame_traces()
    with pytest.raises(ValueError, match="trace_every must be a positive integer \\(>= 1\\)"):
        Pipeline(trace_every=0)


def test_write_trace_is_atomic_and_does_not_follow_a_link(tmp_path: Path) -> None:
    from framescope.trace import write_trace

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    link = tmp_path / "trace.json"
    link.symlink_to(elsewhere)
    write_trace(link, {"traceEvents": []})
    assert not link.is_symlink()  # the link was replaced by the file ...
    assert elsewhere.read_text() == "keep me"  # ... not written through
    assert json.loads(link.read_text()) == {"traceEvents": []}
    with pytest.raises(TypeError):
        write_trace(link, {"traceEvents": [object()]})  # cannot be written: nothing changes
    assert json.loads(link.read_text()) == {"traceEvents": []}
    write_trace(tmp_path / "t.json.gz", {"traceEvents": [1]})
    with gzip.open(tmp_path / "t.json.gz", "rt") as handle:
        assert json.load(handle) == {"traceEvents": [1]}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere.txt",
        "t.json.gz",
        "trace.json",
    ]


def test_no_slice_partially_overlaps_another_on_any_thread_track(tmp_path: Path) -> None:
    pipeline, document = run_traced(tmp_path, "t.json")
    pipeline.cleanup()
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in document["traceEvents"]:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    assert len(tracks) == 3  # the stages' tracks; whole frames are async slices
    for slices in tracks.values():
        open_ends: list[float] = []
        for start, end in sorted(slices, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start + 1e-6:
                open_ends.pop()
            # nested inside the enclosing slice, or after it: never across its end
            assert not open_ends or end <= open_ends[-1] + 1e-6, (start, end, open_ends)
            open_ends.append(end)
    frames = [e for e in document["traceEvents"] if e.get("cat") == "frame"]
    in_flight = 0
    for e in sorted(frames, key=lambda e: (e["ts"], e["ph"] == "b")):
        in_flight += 1 if e["ph"] == "b" else -1
        assert in_flight >= 0
    assert in_flight == 0


def test_frames_still_in_flight_are_marked_unfinished(tmp_path: Path) -> None:
    clock = FakeClock()
    gate = Gate()
    pipeline = Pipeline(debug=True, clock=clock).add(Busy("Decode", clock, 0.001)).add(gate)
    pipeline.parallelize(queue_size=4)
    for i in range(3):
        pipeline.forward(i)
    assert gate.entered.wait(10)
    path = pipeline.export_trace(tmp_path / "open.json")
    begins = [
        e
        for e in json.loads(path.read_text())["traceEvents"]
        if e.get("cat") == "frame" and e["ph"] == "b"
    ]
    assert begins and all(e["args"].get("unfinished") is True for e in begins)
    assert not any("latency_ms" in e["args"] for e in begins)
    gate.release.set()
    pipeline.cleanup()


@pytest.mark.parametrize("items", [356, 1500])
def test_every_frame_through_a_threaded_pipeline_has_its_slice_on_every_stage(items: int) -> None:
    pipeline = Pipeline(debug=True, trace_every=1, trace_frames=2000)
    for name in ("A", "B", "C", "D"):
        pipeline.add(lambda d: d, name)
    pipeline.parallelize(queue_size=4, input_timeout=None)
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.extend(pipeline.results(timeout=30)))
    reader.start()
    for i in range(items):
        pipeline.forward(i)
    pipeline.close()
    assert pipeline.join(30)
    reader.join(30)
    assert len(results) == items
    snapshot = pipeline.snapshot()
    document = chrome_trace(snapshot.traces, snapshot.node_ids)
    slices = Counter(e["name"] for e in document["traceEvents"] if e.get("cat") == "stage")
    assert slices == dict.fromkeys(("A", "B", "C", "D"), items)
    pipeline.cleanup()


def test_a_written_trace_has_the_mode_any_new_file_gets(tmp_path: Path) -> None:
    from framescope.trace import write_trace

    mask = os.umask(0o027)
    try:
        path = write_trace(tmp_path / "t.json", {"traceEvents": []})
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # not the private 0600 of a temporary file


def test_export_trace_replaces_a_file_only_when_told(tmp_path: Path) -> None:
    pipeline = Pipeline(debug=True).add(lambda x: x, "Step").parallelize()
    assert list(pipeline.run(range(5))) == [0, 1, 2, 3, 4]
    kept = tmp_path / "trace.json"
    kept.write_text("an earlier trace")
    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True to replace it"):
        pipeline.export_trace(kept)
    assert kept.read_text() == "an earlier trace"
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        pipeline.export_trace(kept, overwrite="yes")  # type: ignore[arg-type]
    path = pipeline.export_trace(kept, overwrite=True)
    assert json.loads(path.read_text())["traceEvents"]
    pipeline.cleanup()


def _cpu_counters(document: dict[str, Any]) -> dict[str, list[tuple[float, dict[str, float]]]]:
    tracks: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
    for event in document["traceEvents"]:
        if event["ph"] == "C" and event["name"].endswith(" cpu"):
            tracks[event["name"]].append((event["ts"], event["args"]))
    return dict(tracks)


def test_cpu_readings_become_a_counter_track_per_stage() -> None:
    start = 5_000_000_000
    cpu = {
        "Cam__Detect": [
            (start, 0.9, 0.0, 0.0),  # its interval began before the readings kept: left out
            (start + 500_000_000, 0.5, 0.2, 0.1),
            (start + 1_000_000_000, 0.25, 0.5, 0.125),
        ],
        "Cam__Draw": [(start, 0.3, None, None), (start + 250_000_000, 0.1, None, None)],
        "Cam__Idle": [(start, 0.0, 0.0, 0.0)],  # one reading: no interval to draw
    }
    document = chrome_trace([], ["Cam__Detect", "Cam__Draw", "Cam__Idle"], cpu=cpu)
    json.dumps(document)
    assert _cpu_counters(document) == {
        # each reading drawn from the one before (ts in microseconds from the first)
        "Cam__Detect cpu": [
            (0.0, {"on_cpu": 50.0, "waiting": 20.0, "blocked": 10.0}),
            (500_000.0, {"on_cpu": 25.0, "waiting": 50.0, "blocked": 12.5}),
        ],
        "Cam__Draw cpu": [(0.0, {"on_cpu": 10.0})],  # waiting and blocked not known
    }
    assert _cpu_counters(chrome_trace([], ["Cam__Detect"])) == {}


def test_export_trace_draws_each_stage_s_cpu_readings(tmp_path: Path, clock: FakeClock) -> None:
    from framescope.pipeline.runtime.cpu import FakeCpuSource

    source = FakeCpuSource(cores=2)
    source.set("Cam__Detect", on_cpu=0.0, waiting=0.0)
    source.set("Cam__Infer#0", on_cpu=0.0, waiting=0.0)
    source.set("Cam__Infer#1", on_cpu=0.0, waiting=0.0)
    pipeline = Pipeline(name="Cam", debug=True, clock=clock, cpu_source=source)
    pipeline.add(lambda x: x, "Detect").add(lambda x: x, "Infer", replicas=2).parallelize()
    try:
        assert list(pipeline.run(range(4))) == [0, 1, 2, 3]
        for step in range(1, 4):
            # Set before the clock moves: the aggregator's readings see them too.
            source.set("Cam__Detect", on_cpu=0.2 * step, waiting=0.1 * step)
            source.set("Cam__Infer#0", on_cpu=0.4 * step, waiting=0.0)
            source.set("Cam__Infer#1", on_cpu=0.1 * step, waiting=0.05 * step)
            clock.advance(0.5)
            pipeline.snapshot()  # a reading
        written = pipeline.export_trace(tmp_path / "trace.json")
        stages = {s.key: s.cpu for s in pipeline.snapshot().stages}
    finally:
        pipeline.cleanup()
    tracks = _cpu_counters(json.loads(written.read_text()))
    assert set(tracks) == {f"{key} cpu" for key in stages}
    for key, split in stages.items():
        assert split is not None and len(split.series) >= 3, key
        drawn = [args["on_cpu"] for _, args in tracks[f"{key} cpu"]]
        assert drawn == [round(point[1] * 100, 1) for point in split.series[1:]], key
    # The last readings: Detect 0.2 s on a CPU and 0.1 s waiting in every 0.5 s.
    assert tracks["Cam__Detect cpu"][-1][1] == {"on_cpu": 40.0, "waiting": 20.0, "blocked": 0.0}
    assert tracks["Cam__Infer#0 cpu"][-1][1]["on_cpu"] == 80.0
    assert tracks["Cam__Infer cpu"][-1][1]["on_cpu"] == 50.0  # the replicas' average


def test_each_source_of_a_many_source_run_is_a_track_of_its_states(tmp_path: Path) -> None:
    from framescope.pipeline import SourceSnapshot

    ms = 1_000_000
    cam = SourceSnapshot(
        "cam",
        SourceState.STALLED,
        since=0.5,
        reason="no frame for 5 s",
        history=(
            (1_000 * ms, SourceState.STARTING),
            (1_040 * ms, SourceState.RUNNING),
            (9_000 * ms, SourceState.STALLED),
        ),
    )
    # A frame also went through a node the list does not name: it gets a track of its own.
    span = StageSpan("P__Extra", 1_000 * ms, 1_000 * ms, 1_001 * ms, 1_001 * ms, 0)
    frame = FrameTrace(0, 1_000 * ms, (span,))
    document = chrome_trace([frame], ["P__Detect"], sources={"cam": cam}, now_ns=9_500 * ms)
    events = document["traceEvents"]
    named = [(e["tid"], e["args"]["name"]) for e in events if e["name"] == "thread_name"]
    assert len({tid for tid, _ in named}) == len(named)  # every track its own number
    names = dict(named)
    tid = next(t for t, name in names.items() if name == "source cam")
    assert tid not in (0, 1)  # its own track, after the frames' and the stage's
    slices = [(e["name"], e["ts"], e["dur"]) for e in events if e.get("cat") == "source"]
    assert slices == [
        ("starting", 0.0, 40_000.0),
        ("running", 40_000.0, 7_960_000.0),
        ("stalled", 8_000_000.0, 500_000.0),  # up to the snapshot's reading
    ]
    last = [e for e in events if e.get("cat") == "source"][-1]
    assert last["args"] == {"source": "cam", "reason": "no frame for 5 s"}


def test_export_trace_draws_the_sources_of_a_run(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = Pipeline(name="Yard", clock=clock, debug=True).add(lambda item: item, "Detect")
    try:
        assert len(list(pipeline.run({"a": range(3), "b": range(2)}))) == 5
        path = pipeline.export_trace(tmp_path / "trace.json")
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
    events = json.loads(path.read_text())["traceEvents"]
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"source a", "source b"} <= tracks
    states = [e["name"] for e in events if e.get("cat") == "source"]
    assert states.count("ended") == 2 and states.count("running") == 2
    assert [state for _, state in snapshot.sources["a"].history] == [
        SourceState.STARTING,
        SourceState.RUNNING,
        SourceState.ENDED,
    ]
    back = type(snapshot).from_dict(json.loads(json.dumps(snapshot.to_dict())))
    assert back.sources["a"].history == snapshot.sources["a"].history

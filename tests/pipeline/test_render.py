"""States, snapshots and timings print as short tables, and as rich tables."""

from __future__ import annotations

import json
import re
from itertools import islice

import pytest

from framescope import Pipeline
from framescope.clock import FakeClock
from framescope.pipeline.model.query import PipelineStateQuery
from framescope.pipeline.model.state import PipelineState, Timing, merge_states

from .helpers import Gate


def busy_pipeline(clock: FakeClock) -> Pipeline:
    def work(item: int) -> int:
        clock.advance(0.004)
        return item

    pipeline = Pipeline(name="Cam", debug=True, clock=clock).add(work, "Detect")
    pipeline.add(lambda x: x, "Draw").parallelize(queue_size=4)
    for item in range(20):
        pipeline.forward(item)
    list(islice(pipeline.results(timeout=10), 20))
    return pipeline


def test_a_state_prints_as_a_table(clock: FakeClock) -> None:
    pipeline = busy_pipeline(clock)
    state = pipeline.get_pipeline_state()
    text = str(state)
    lines = text.splitlines()
    assert re.split(" {2,}", lines[0]) == [
        "node",
        "state",
        "loop fps",
        "loop p50 ms",
        "loop p90 ms",
        "queue",
        "input",
    ]
    assert lines[1].startswith("Cam__Detect") and lines[2].startswith("Cam__Draw")
    assert "object at" not in text and len(text) < 400
    summary = str(state.nodes().summary())
    assert summary == text  # the summary prints the same table
    node = str(state.nodes("Cam__Detect").detailed())
    assert node.startswith("GETTING_INPUTS; loop 250.0 fps, p50 4.00 ms") and "input in:" in node
    pipeline.cleanup()


def test_a_timing_without_samples_prints_a_dash_and_writes_null() -> None:
    assert str(Timing()) == "-"
    state = Pipeline(name="P").add(lambda x: x, "A").get_pipeline_state()  # not started
    data = json.loads(state.to_json())
    assert data["node_states"]["P__A"]["main_loop_timing"]["duration_stats"]["min_micros"] is None
    assert PipelineStateQuery.from_json(state.to_json()) == state
    assert "-" in str(state).splitlines()[1]


def test_the_state_a_pipeline_gives_serialises_and_merges(clock: FakeClock) -> None:
    pipeline = busy_pipeline(clock)
    state = pipeline.get_pipeline_state()
    again = PipelineStateQuery.from_json(state.to_json())
    assert again == state and again.node_states.keys() == state.node_states.keys()
    merged = merge_states(state, again, prefixes=["box1", "box2"])
    assert set(merged.node_states) == {
        "box1__Cam__Detect",
        "box1__Cam__Draw",
        "box2__Cam__Detect",
        "box2__Cam__Draw",
    }
    assert isinstance(PipelineState.from_json(state.to_json()), PipelineState)
    pipeline.cleanup()


def test_a_snapshot_prints_its_headline_and_stages(clock: FakeClock) -> None:
    pipeline = busy_pipeline(clock)
    text = str(pipeline.snapshot())
    head, machine, columns, *rows = text.splitlines()
    assert head.startswith("Cam (parallel): 20 completed of 20 forwarded, 0 failed, 0 dropped")
    assert machine.startswith("machine: ")
    assert columns.split()[:4] == ["stage", "state", "input", "fps"]
    detect = next(row for row in rows if row.startswith("Cam__Detect"))
    assert "4.00" in detect  # p50 processing 4 ms
    assert "0/4" in detect  # queue n/size
    pipeline.cleanup()


def test_rich_tables_colour_waiting_and_blocked() -> None:
    rich_console = pytest.importorskip("rich.console")
    gate = Gate()
    pipeline = Pipeline(name="Cam", debug=True).add(gate).add(lambda x: x, "After")
    pipeline.parallelize(queue_size=1)
    pipeline.forward(0)
    assert gate.entered.wait(10)
    pipeline.forward(1)
    console = rich_console.Console(record=True, width=120, color_system="truecolor")
    console.print(pipeline.get_pipeline_state())
    console.print(pipeline.snapshot())
    text = console.export_text(clear=False)
    assert "Cam__Gate" in text and "WAITING" in text and "PROCESSING" in text
    assert "\x1b[" in console.export_text(styles=True)  # coloured
    gate.release.set()
    pipeline.cleanup()


def test_watch_shows_the_live_table_until_stopped() -> None:
    import io
    import threading

    from framescope.live import watch

    pipeline = Pipeline(name="Cam").add(lambda x: x, "Detect").parallelize(queue_size=2)
    list(pipeline.run(range(5)))
    out = io.StringIO()
    stop = threading.Event()
    views = []

    class Counting(io.StringIO):
        def write(self, text: str) -> int:
            views.append(text)
            if len(views) >= 4:
                stop.set()
            return out.write(text)

    watch(pipeline, refresh=0.01, out=Counting(), stop=stop, use_rich=False)
    text = out.getvalue()
    assert text.count("Cam (parallel): 5 completed of 5 forwarded") >= 2
    assert "Cam__Detect" in text
    pipeline.cleanup()


def _columns(table: str) -> dict[str, dict[str, str]]:
    """A text table's cells by row key and column name (columns split on two spaces)."""
    header, *rows = table.splitlines()
    names = re.split(" {2,}", header.strip())
    cells = {}
    for row in rows:
        values = row.split()
        cells[values[0]] = dict(zip(names, values, strict=True))
    return cells


def test_fps_and_p50_p90_mean_processing_in_the_terminal_the_demo_and_the_browser(
    clock: FakeClock,
) -> None:
    import io
    import threading

    from framescope.demo import render_state
    from framescope.live import watch
    from framescope.live.view import page_view
    from framescope.pipeline.views.tables import SNAPSHOT_COLUMNS

    pipeline = busy_pipeline(clock)  # Detect takes 4 ms per call, Draw none
    snapshot = pipeline.snapshot()
    out, stop = io.StringIO(), threading.Event()
    stop.set()  # one view
    watch(pipeline, refresh=0.01, out=out, stop=stop, use_rich=False)
    terminal = out.getvalue().strip().split("\n", 2)[2]
    demo = render_state(snapshot).split("\n", 2)[2]
    browser = {stage["key"]: stage for stage in page_view(snapshot)["stages"]}
    for table in (terminal, demo):
        assert tuple(re.split(" {2,}", table.splitlines()[0])) == SNAPSHOT_COLUMNS
        rows = _columns(table)
        assert rows["Cam__Detect"]["p50 ms"] == rows["Cam__Detect"]["p90 ms"] == "4.00"
        assert rows["Cam__Draw"]["p50 ms"] == rows["Cam__Draw"]["p90 ms"] == "0.00"
        for key in ("Cam__Detect", "Cam__Draw"):
            assert float(rows[key]["p50 ms"]) == pytest.approx(browser[key]["p50_ms"], abs=0.005)
            assert float(rows[key]["fps"]) == pytest.approx(browser[key]["fps"], abs=0.05)
    # The node state table's loop figures say so: no bare "p50 ms" that means something else.
    state_header = str(snapshot.state).splitlines()[0]
    assert "loop p50 ms" in state_header and "  p50 ms" not in state_header
    pipeline.cleanup()


def test_a_stage_that_received_nothing_reads_zero_fps(clock: FakeClock) -> None:
    from framescope.live.view import page_view

    def fail(item: int) -> int:
        clock.advance(0.002)
        raise ValueError("no")

    pipeline = Pipeline(name="Cam", debug=True, clock=clock).add(fail, "Fail", on_error="skip")
    pipeline.add(lambda x: x, "Never").parallelize(queue_size=4)
    for item in range(5):
        pipeline.forward(item)
    pipeline.close()
    assert pipeline.join(10)
    snapshot = pipeline.snapshot()
    never = _columns(str(snapshot).split("\n", 2)[2])["Cam__Never"]
    assert (never["fps"], never["p50 ms"], never["p90 ms"]) == ("0.0", "-", "-")
    assert _columns(str(snapshot.state))["Cam__Never"]["loop fps"] == "0.0"
    assert next(s for s in page_view(snapshot)["stages"] if s["key"] == "Cam__Never")["fps"] == 0.0
    pipeline.cleanup()


def test_the_stage_table_shows_where_each_stage_s_time_goes(clock: FakeClock) -> None:
    from ..cpu_figures import measured_pipeline

    pipeline, _ = measured_pipeline(clock)
    try:
        text = str(pipeline.snapshot())
    finally:
        pipeline.cleanup()
    head, machine, table = text.split("\n", 2)
    assert head.startswith("Cam (parallel): 8 completed of 8 forwarded")
    assert (
        machine == "machine: 4 cores, 50% busy (all processes), load 1.50, this process 0.70 cores"
    )
    split = {key: row["cpu/wait/blk"] for key, row in _columns(table).items()}
    assert split == {
        "Cam__Detect": "50/20/10%",
        "Cam__Infer": "20/10/0%",
        "Cam__Infer#0": "30/10/0%",
        "Cam__Infer#1": "10/10/0%",
        "Cam__Draw": "10/?/?%",  # only CPU time known: the rest is not guessed
    }


def test_a_serial_pipeline_s_stages_read_not_measured(clock: FakeClock) -> None:
    from framescope.pipeline.model.cpu import MachineLoad
    from framescope.pipeline.views.tables import machine_text

    pipeline = Pipeline(name="Cam", clock=clock).add(lambda x: x, "Detect")
    assert list(pipeline.run(range(3))) == [0, 1, 2]
    rows = _columns(str(pipeline.snapshot()).split("\n", 2)[2])
    assert rows["Cam__Detect"]["cpu/wait/blk"] == "-"
    pipeline.cleanup()
    unknown = MachineLoad(cores=None, window_s=1.0, cpu_busy=None, load1=None, process_cores=None)
    assert (
        machine_text(unknown)
        == "machine: ? cores, ?% busy (all processes), load ?, this process ? cores"
    )
    assert machine_text(None) == "machine: not measured"


def test_the_terminal_live_view_shows_the_split_and_the_machine(clock: FakeClock) -> None:
    import io
    import threading

    from framescope.live import watch

    from ..cpu_figures import measured_pipeline

    rich_console = pytest.importorskip("rich.console")
    pipeline, _ = measured_pipeline(clock)
    try:
        out, stop = io.StringIO(), threading.Event()
        stop.set()  # one view
        watch(pipeline, refresh=0.01, out=out, stop=stop, use_rich=False)
        console = rich_console.Console(record=True, width=160)
        console.print(pipeline.snapshot())
    finally:
        pipeline.cleanup()
    text = out.getvalue()
    assert "machine: 4 cores, 50% busy (all processes), load 1.50, this process 0.70 cores" in text
    assert _columns(text.strip().split("\n", 2)[2])["Cam__Detect"]["cpu/wait/blk"] == "50/20/10%"
    drawn = console.export_text()
    assert "cpu/wait/blk" in drawn and "50/20/10%" in drawn and "10/?/?%" in drawn
    assert "machine: 4 cores, 50% busy" in drawn


def test_a_queried_node_prints_as_its_state() -> None:
    from framescope import Pipeline

    with Pipeline(debug=True) as pipeline:
        pipeline.add(lambda x: x, "Detect").parallelize()
        pipeline.forward(1)
        pipeline.close()
        assert pipeline.join(10)
        state = pipeline.get_pipeline_state()
        node = state.nodes("MainPipeline__Detect")
        assert str(node) == str(node.detailed())
        assert "loop" in str(node) and "NodeQuery object" not in str(node)
        assert repr(node).startswith("<NodeQuery MainPipeline__Detect ")

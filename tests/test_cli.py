from __future__ import annotations

import datetime
import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from framescope import __version__
from framescope.cli import main
from framescope.clock import FakeClock
from framescope.timepiece_demo import run_timepiece_demo
from tests.polling import holds_within, wait_for


def test_demo_on_a_fake_clock_reports_what_it_measured(clock: FakeClock) -> None:
    out = io.StringIO()
    frames = run_timepiece_demo(
        out, seconds=3.0, fps=25.0, report_interval=1.0, clock=clock, sleep=clock.advance, seed=1
    )
    text = out.getvalue()
    assert frames == 75  # the loop holds exactly 40 ms per frame on a fake clock
    reports = re.findall(r"frames=(\d+) fps=([\d.]+)", text)
    assert [int(n) for n, _ in reports] == [25, 25, 24]  # 74 intervals between 75 ticks
    assert all(float(fps) == pytest.approx(25.0) for _, fps in reports)
    assert "frame period: <Ticker intervals=[0.0400, 0.0400, 0.0400, 0.0400, 0.0400, ...]" in text
    assert "<StopWatch name=frame intervals=[" in text
    assert "\n    <StopWatch name=decode " in text
    assert "\n        <StopWatch name=model " in text
    assert re.search(r"frame time: mean=\d+\.\d\dms median=.* p99=\d+\.\d\dms", text)


def test_demo_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fps must be a positive number"):
        run_timepiece_demo(io.StringIO(), fps=0)


def test_cli_parses_demo_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["timepiece-demo", "--seconds", "-1"])
    assert exit_info.value.code == 2
    assert "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--fps", "fast"])
    assert "expected a number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--replicas", "0"])
    assert "must be 1 or more" in capsys.readouterr().err


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"framescope {__version__}"


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "framescope", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == f"framescope {__version__}"


@pytest.mark.integration  # runs the demo: an encoder process
def test_pipeline_demo_runs_and_names_the_bottleneck(tmp_path: Path) -> None:
    import gzip
    import json

    from framescope.demo import run_demo

    out = io.StringIO()
    report = run_demo(
        out,
        seconds=1.5,
        refresh=0.5,
        trace_path=tmp_path / "demo.json.gz",
        live=False,
        out_dir=tmp_path,
    )
    trace = report.trace
    text = out.getvalue()
    assert text.count("Demo__Infer ") >= 2  # two live views
    assert "Stage-bound: Demo__Infer holds the pipeline back" in text
    assert f"Trace written to {trace}" in text
    with gzip.open(trace, "rt") as handle:
        events = json.load(handle)["traceEvents"]
    assert any(e.get("cat") == "stage" and e["name"] == "Infer" for e in events)
    assert any(e.get("cat") == "custom" and e["name"] == "backbone" for e in events)
    # The annotated result is a real video file, decodable, of the frames that went out.
    from framescope.video import VideoSource

    line = next(line for line in text.splitlines() if line.startswith("Annotated video"))
    path = line.split(" written to ", 1)[1].rsplit(" (", 1)[0]
    sent = int(line.rsplit("(", 1)[1].split()[0])
    assert sent > 0 and sent == report.frames_written == report.frames_read
    assert path == str(tmp_path / "annotated.mp4")
    assert sum(1 for _ in VideoSource(path)) == sent
    # Every frame that went out has its slice on every stage of the trace.
    slices = Counter(e["name"] for e in events if e.get("cat") == "stage")
    stages = ("Preprocess", "Infer", "Postprocess", "Annotate", "Output")
    assert slices == dict.fromkeys(stages, sent)
    assert "Losses: none" in text


@pytest.mark.integration  # runs the demo: an encoder process
def test_cli_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.json"
    arguments = ["demo", "--seconds", "1.5", "--refresh", "0.5", "--trace", str(trace)]
    assert main([*arguments, "--out", str(tmp_path)]) == 0
    assert "Stage-bound:" in capsys.readouterr().out
    assert json.loads(trace.read_text())["traceEvents"]


@pytest.mark.integration  # runs the demo: an encoder process
def test_cli_demo_with_replicas_shows_them_and_their_gain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.json"
    arguments = ["demo", "--seconds", "2", "--replicas", "2", "--trace", str(trace)]
    arguments += ["--out", str(tmp_path)]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "Infer on 2 replicas" in out
    assert "Demo__Infer#0" in out and "Demo__Infer#1" in out  # in the live state table
    assert "Demo__Infer runs on 2 replicas, together" in out  # the diagnosis: gain per replica


@pytest.mark.integration  # runs the demo: an encoder process
def test_demo_serve_shows_the_pipeline_in_a_live_view(tmp_path: Path) -> None:
    import re
    import threading
    import urllib.request

    from framescope.demo import run_demo

    class Lines(io.StringIO):
        url: str | None = None

        def write(self, text: str) -> int:
            found = re.search(r"Live view: open (\S+)", text)
            if found:
                self.url = found.group(1)
            return super().write(text)

    out = Lines()
    runner = threading.Thread(
        target=run_demo,
        args=(out,),
        kwargs={
            "seconds": 2.0,
            "refresh": 0.5,
            "trace_path": tmp_path / "t.json",
            "serve": True,
            "out_dir": tmp_path,
        },
    )
    runner.start()
    wait_for(lambda: out.url is not None, 30, "the live view's address")
    url = out.url
    assert url is not None

    def infer_shown() -> bool:
        with urllib.request.urlopen(url + "view.json", timeout=5) as response:
            shown = json.loads(response.read())
        return "Demo__Infer" in {stage["key"] for stage in shown["stages"]}

    assert holds_within(infer_shown, 10, every=0.05)
    runner.join(60)
    assert "framescope demo --serve" not in out.getvalue()  # it was served


@pytest.mark.integration  # an encoder process and a live view
def test_demo_serve_with_replicas_shows_each_phase_at_the_same_address(tmp_path: Path) -> None:
    import re
    import threading
    import urllib.request

    from framescope.demo import run_demo

    out = io.StringIO()
    runner = threading.Thread(
        target=run_demo,
        args=(out,),
        kwargs={"seconds": 3.0, "serve": True, "replicas": 2, "out_dir": tmp_path},
    )
    runner.start()
    seen: set[str] = set()
    try:

        def looked() -> bool:
            """Whether phase 2's replica was seen, or the run (or its view) ended."""
            if not runner.is_alive():
                return True
            found = re.search(r"Live view: open (\S+)", out.getvalue())
            if found:
                try:
                    with urllib.request.urlopen(found.group(1) + "view.json", timeout=5) as answer:
                        seen.update(stage["key"] for stage in json.loads(answer.read())["stages"])
                except OSError:  # the view closed at the end of the run
                    return True
            return "Demo__Infer#1" in seen

        holds_within(looked, 60, every=0.1)
    finally:
        runner.join(60)
    assert not runner.is_alive()
    assert "Demo__Infer" in seen and "Demo__Infer#1" in seen  # phase 1, then phase 2's replica
    assert out.getvalue().count("Live view: open ") == 1


def _heartbeat(path: Path, age: float, *sources: Any) -> None:
    """A heartbeat file written ``age`` seconds ago (the wall time of its clock)."""
    from framescope.health import Heartbeat
    from tests.test_health import Snapshots

    wall = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
    Heartbeat(Snapshots(*sources), path, clock=FakeClock(wall=wall)).write()


def test_health_exits_0_for_a_fresh_healthy_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _heartbeat(tmp_path / "hb.json", 1.0)
    assert main(["health", str(tmp_path / "hb.json"), "--max-age", "15"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"framescope health: ok: Cams, 0\.0 fps, written 1\.\d s ago\n", out)


def test_health_exits_1_with_one_line_for_stale_missing_and_unhealthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framescope.pipeline.model.sources import SourceSnapshot, SourceState

    _heartbeat(tmp_path / "stale.json", 20.0)
    assert main(["health", str(tmp_path / "stale.json"), "--max-age", "15"]) == 1
    assert re.fullmatch(
        r"framescope health: stale: written 20\.\d s ago .*\n", capsys.readouterr().err
    )
    assert main(["health", str(tmp_path / "none.json"), "--max-age", "15"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("framescope health: cannot read ") and err.count("\n") == 1
    failed = SourceSnapshot("cam3", SourceState.FAILED, 1.0, reason="OSError: unplugged")
    _heartbeat(tmp_path / "sick.json", 0.0, failed)
    assert main(["health", str(tmp_path / "sick.json"), "--max-age", "15"]) == 1
    assert capsys.readouterr().err == (
        "framescope health: unhealthy: source cam3 failed (OSError: unplugged)\n"
    )


def test_health_needs_a_positive_max_age(tmp_path: Path) -> None:
    for bad in ([], ["--max-age", "0"], ["--max-age", "soon"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["health", str(tmp_path / "hb.json"), *bad])
        assert exit_info.value.code == 2


def test_health_runs_as_the_command_a_healthcheck_calls(tmp_path: Path) -> None:
    _heartbeat(tmp_path / "hb.json", 0.0)
    command = [sys.executable, "-m", "framescope", "health", str(tmp_path / "hb.json")]
    done = subprocess.run(
        [*command, "--max-age", "30"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("framescope health: ok: Cams")
    (tmp_path / "hb.json").unlink()
    done = subprocess.run(
        [*command, "--max-age", "30"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1 and "cannot read" in done.stderr


def test_the_demo_without_its_extras_says_what_to_install_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "framescope.demo", None)  # as if numpy/PyAV were missing
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "framescope demo: error:" in err
    assert "pip install 'framescope[demo]'" in err

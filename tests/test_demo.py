"""The ``framescope demo`` on real clips: every size, codec and rate, bad inputs, Ctrl-C, --out."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from framescope.cli import main
from framescope.demo import Infer, Preprocess, default_out_dir, run_demo
from tests.polling import holds_within
from tests.video.helpers import free_port

REPO = Path(__file__).resolve().parents[1]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="needs Debian's ffmpeg")

# (name, width, height, fps, encoder arguments, extension, with an audio track)
CLIPS = [
    ("h264-720p-audio", 1280, 720, 30, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4", True),
    ("hevc-360p", 640, 360, 25, ["-c:v", "libx265", "-pix_fmt", "yuv420p"], "mp4", False),
    ("h264-444-odd", 641, 359, 30, ["-c:v", "libx264", "-pix_fmt", "yuv444p"], "mp4", False),
    (
        "vp9-240p-15fps",
        320,
        240,
        15,
        ["-c:v", "libvpx-vp9", "-deadline", "realtime"],
        "webm",
        False,
    ),
    ("mjpeg-cif", 352, 288, 30, ["-c:v", "mjpeg", "-pix_fmt", "yuvj422p"], "mkv", False),
]


def make_clip(
    path: Path,
    width: int,
    height: int,
    fps: float,
    codec: list[str],
    *,
    audio: bool = False,
    seconds: float = 1.0,
    extra: tuple[str, ...] = (),
) -> Path:
    """A short clip of ffmpeg's moving test pattern."""
    assert FFMPEG is not None
    command = [FFMPEG, "-loglevel", "error", "-y", "-f", "lavfi"]
    pattern = f"testsrc2=size={width + width % 2}x{height + height % 2}:rate={fps}"
    # testsrc2 makes even sizes only: an odd size is cut from the next even one.
    command += ["-i", f"{pattern},crop={width}:{height}:0:0", "-t", str(seconds)]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:a", "aac"]
    subprocess.run([*command, *codec, *extra, str(path)], check=True, timeout=120)
    return path


def decoded(path: str | Path) -> tuple[int, int, list[float]]:
    """Width, height and every frame's time of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
        return stream.codec_context.width, stream.codec_context.height, times


def summary_counts(text: str) -> tuple[int, int, int]:
    found = re.search(r"Frames: (\d+) read from .*?, (\d+) written, (\d+) failed", text)
    assert found, text
    read, written, failed = (int(n) for n in found.groups())
    return read, written, failed


def assert_plays_at(times: list[float], fps: float) -> None:
    """The frames are 1/fps apart: the video plays at the source's speed."""
    assert times == sorted(times)
    span = times[-1] - times[0]
    assert span == pytest.approx((len(times) - 1) / fps, abs=1.5 / fps)


# -- any input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"), [(1280, 720), (640, 360), (641, 359), (16, 16), (3, 2)]
)
def test_the_stand_in_model_takes_any_frame_size(width: int, height: int) -> None:
    frame = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    item = Infer(layers=2)(Preprocess()({"frame": frame}))
    assert item["tensor"].shape == (120, 160, 3)
    assert item["scores"].shape == (120,)


@pytest.mark.integration  # runs the demo: an encoder process
@needs_ffmpeg
@pytest.mark.parametrize("clip", CLIPS, ids=[clip[0] for clip in CLIPS])
def test_demo_runs_on_any_size_codec_and_rate(
    tmp_path: Path, clip: tuple[str, int, int, int, list[str], str, bool]
) -> None:
    name, width, height, fps, codec, extension, audio = clip
    video = make_clip(tmp_path / f"{name}.{extension}", width, height, fps, codec, audio=audio)
    out = io.StringIO()
    report = run_demo(out, seconds=1.0, refresh=0.5, live=False, video=video, out_dir=tmp_path)
    text = out.getvalue()
    read, written, failed = summary_counts(text)
    assert (read, written, failed) == (report.frames_read, report.frames_written, 0)
    assert read > 0 and written == read  # every frame read went out
    assert "Losses: none" in text
    even = (width - width % 2, height - height % 2)
    assert report.input_size is not None
    was = "x".join(map(str, report.input_size))
    cut = f", {even[0]}x{even[1]}: cut from {was}, H.264 needs even sides"
    said = f"({written} frames{cut if even != report.input_size else ''})"
    assert f"Annotated video written to {tmp_path / 'annotated.mp4'} {said}" in text
    out_width, out_height, times = decoded(tmp_path / "annotated.mp4")
    assert (out_width, out_height) == even
    assert len(times) == written
    assert_plays_at(times, fps)


@pytest.mark.integration  # runs the demo: an encoder process
@needs_ffmpeg
def test_demo_on_a_variable_frame_rate_clip_keeps_its_times(tmp_path: Path) -> None:
    # Frames 1/30 s apart, then 1/10 s apart: the output keeps each frame's own time.
    video = tmp_path / "vfr.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.time_base = stream.time_base = __import__("fractions").Fraction(1, 90)
        for index, pts in enumerate([0, 3, 6, 9, 12, 21, 30, 39, 48, 57]):
            image = np.full((240, 320, 3), index * 20, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    report = run_demo(
        io.StringIO(), seconds=0.5, refresh=0.5, live=False, video=video, out_dir=tmp_path
    )
    assert report.frames_written == report.frames_read > 10  # it looped
    _, _, times = decoded(tmp_path / "annotated.mp4")
    gaps = np.round(np.diff(times[:10]) * 90).astype(int).tolist()
    assert gaps == [3, 3, 3, 3, 9, 9, 9, 9, 9]


@pytest.mark.integration  # runs the demo: an encoder process
def test_the_default_demo_plays_at_the_clips_speed(tmp_path: Path) -> None:
    report = run_demo(io.StringIO(), seconds=1.0, refresh=0.5, live=False, out_dir=tmp_path)
    _, _, times = decoded(report.output)
    assert len(times) == report.frames_written == report.frames_read
    assert_plays_at(times, 30)  # the 30 fps test clip, looped: times keep rising


# -- --replicas N: one replica, then N, measured -------------------------------------------

_PHASE_ROW = re.compile(
    r"^  (\d+) replicas? +(\d+) frames through Infer in +([\d.]+) s: +([\d.]+)/s$", re.M
)


@pytest.mark.integration  # an encoder process
def test_replicas_2_measures_one_replica_then_two_on_the_same_input(tmp_path: Path) -> None:
    out = io.StringIO()
    report = run_demo(out, seconds=2.0, refresh=0.5, live=False, replicas=2, out_dir=tmp_path)
    text = out.getvalue()
    phases = report.phases
    assert [phase.replicas for phase in phases] == [1, 2]
    # without redraws, where each phase starts is said once, before its tables
    first, second = text.index("Phase 1 of 2: Infer on 1 replica\n"), text.index("Phase 2 of 2")
    assert first < text.index("t = ") < second
    rows = _PHASE_ROW.findall(text)
    assert len(rows) == 2, text
    for phase, (replicas, frames, seconds, fps) in zip(phases, rows, strict=True):
        assert int(replicas) == phase.replicas
        # what it prints is what it counted and timed ...
        assert int(frames) == phase.infer_frames
        assert float(seconds) == pytest.approx(phase.seconds, abs=0.0051)
        # ... and the rate is those frames over that time, within the printed rounding
        rounding = 0.051 + phase.infer_frames / float(seconds) ** 2 * 0.0051
        assert float(fps) == pytest.approx(phase.infer_frames / float(seconds), abs=rounding)
        assert phase.fps == phase.infer_frames / phase.seconds
        # every frame the phase took went through Infer and came out (a clean run)
        assert phase.infer_frames == phase.frames_in == phase.frames_out > 0
        assert phase.frames_lost == 0
        assert phase.seconds >= 0.9  # each phase ran its half of the 2 s
    ratio = re.search(
        r"Measured: 2 replicas did ([\d.]+)x what 1 did \(the diagnosis below estimated", text
    )
    assert ratio, text
    assert float(ratio.group(1)) == pytest.approx(phases[1].fps / phases[0].fps, abs=0.0051)
    # The frame accounting covers both phases: the summary adds them up.
    read, written, failed = summary_counts(text)
    assert read == report.frames_read == sum(phase.frames_in for phase in phases)
    assert written == report.frames_written == sum(phase.frames_out for phase in phases)
    assert failed == report.frames_failed == 0
    # The claim is the diagnosis of the 2-replica phase, quoted as it printed it.
    assert "Diagnosis of the last phase (Infer on 2 replicas):" in text
    assert report.diagnosis is not None and report.claims
    quoted = text.split("What the diagnosis of the 2-replica phase claimed:\n", 1)[1]
    for claim in report.claims:
        assert f"    {claim}\n" in quoted
        assert claim.removeprefix("Suggestion: ") in report.diagnosis.report()
    # One output across both phases: the second phase's frames follow the first's.
    _, _, times = decoded(tmp_path / "annotated.mp4")
    assert len(times) == written
    assert_plays_at(times, 30)


def test_record_writes_the_last_phase_s_run_for_report_and_compare(tmp_path: Path) -> None:
    from framescope.runs import load_run

    out = io.StringIO()
    path = tmp_path / "demo.fsrun"
    report = run_demo(
        out, seconds=2.0, refresh=0.5, live=False, replicas=2, out_dir=tmp_path, record=path
    )
    run = load_run(path)
    assert run.label == "demo, Infer on 2 replicas" and run.end is not None
    infer = [s for s in run.header["stages"] if s["stage"] == "Infer"]
    assert infer[0]["replicas"] == 2
    recorded = sum(i["stages"]["Demo__Infer"]["count"] for i in run.intervals)
    assert recorded == report.phases[1].infer_frames  # every frame of the phase, none before
    assert f"Run recorded in {path}: framescope report {path} (pip install" in out.getvalue()


def test_a_phase_takes_no_frame_after_it_closed_and_the_next_goes_on() -> None:
    from framescope.demo.phases import PhaseInput

    frames = iter(range(5))
    first = PhaseInput(frames)
    assert [next(first), next(first)] == [0, 1]
    first.close()
    with pytest.raises(StopIteration):
        next(first)
    second = PhaseInput(frames)
    assert list(second) == [2, 3, 4]
    assert (first.taken, second.taken, first.ended, second.ended) == (2, 3, False, True)


def test_a_run_that_ends_in_the_first_phase_compares_nothing() -> None:
    from framescope.demo import DemoPhase
    from framescope.demo.phases import compare_phases

    one = DemoPhase(1, frames_in=50, frames_out=50, frames_lost=0, infer_frames=50, seconds=2.0)
    text = compare_phases([one], ("Demo__Infer runs on 2 replicas ...",), 2)
    assert "   50 frames through Infer in  2.00 s:    25.0/s" in text
    assert "ended before the 2-replica phase: nothing to compare" in text
    assert "Measured:" not in text and "claimed" not in text
    two = DemoPhase(2, frames_in=60, frames_out=60, frames_lost=0, infer_frames=60, seconds=2.0)
    text = compare_phases([one, two], (), 2)
    assert "Measured: 2 replicas did 1.20x what 1 did (the diagnosis below" in text
    assert "The diagnosis of the 2-replica phase made no claim about replicas." in text
    claim = "Demo__Infer runs on 2 replicas, together 30.0/s: about 1.44x what one replica would"
    text = compare_phases([one, two], (claim,), 2)
    assert "Estimate 1.44x against measured 1.20x: 20% high." in text


# -- inputs it cannot read -----------------------------------------------------------------


def _bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("not a video\n")
    (folder / "a-folder.mp4").mkdir()
    files = {
        "missing": folder / "missing.mp4",
        "empty": folder / "empty.mp4",
        "not a video": folder / "notes.mp4",
        "a folder": folder / "a-folder.mp4",
    }
    if FFMPEG is not None:
        audio = folder / "audio-only.m4a"
        subprocess.run(
            [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", str(audio)],
            check=True,
            timeout=60,
        )
        files["audio only"] = audio
    return files


def test_a_video_it_cannot_read_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, video in _bad_inputs(tmp_path / "in").items():
        out = tmp_path / "out"
        assert main(["demo", "--video", str(video), "--out", str(out)]) == 1, kind
        captured = capsys.readouterr()
        assert captured.out == "", kind
        lines = captured.err.splitlines()
        assert len(lines) == 1, (kind, captured.err)
        assert lines[0].startswith("framescope demo: error: --video"), kind
        assert str(video) in lines[0], kind
        assert not out.exists(), kind  # nothing written


_AS_NOBODY = """
import os, sys
import framescope.demo, framescope.video  # loaded first: nobody cannot read root's Python
import gettext, locale, shutil, textwrap, traceback  # what argparse and error paths load late
from framescope.cli import main
os.setgid(65534); os.setuid(65534)  # nobody: the mode bits now apply
sys.exit(main(sys.argv[1:]))
"""


def test_an_unreadable_video_is_one_line_and_exit_1(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="framescope-"))  # a folder anyone enters
    try:
        shared.chmod(0o777)
        video = shared / "locked.mp4"
        video.write_bytes(b"\x00" * 64)
        video.chmod(0)
        arguments = ["demo", "--video", str(video), "--out", str(shared / "out")]
        # root reads any file: as root the command runs as nobody, in a child process
        code = (
            _AS_NOBODY
            if os.geteuid() == 0
            else "import sys; from framescope.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, *arguments],
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "XDG_CACHE_HOME": str(shared)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert str(video) in done.stderr and "cannot be read (permission denied)" in done.stderr
        assert not (shared / "out").exists()
    finally:
        shutil.rmtree(shared)


@pytest.mark.integration  # runs the demo: an encoder process
@needs_ffmpeg
def test_a_damaged_video_is_named_in_the_summary_with_the_frames_read(tmp_path: Path) -> None:
    video = make_clip(
        tmp_path / "cut.mp4",
        320,
        240,
        30,
        ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
        seconds=0.5,
        extra=("-movflags", "+faststart"),  # the index first: the cut leaves it whole
    )
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # it ends at about half its stated duration
    out = io.StringIO()
    report = run_demo(out, seconds=1.0, refresh=0.5, live=False, video=video, out_dir=tmp_path)
    text = out.getvalue()
    assert report.input_problem is not None
    line = next(line for line in text.splitlines() if line.startswith("Input: "))
    assert f"{report.frames_read} frames were read" in line
    assert "ended before its stated duration" in line or "error" in line


# -- restreaming to nobody ----------------------------------------------------------------


@pytest.mark.integration  # runs the demo: an encoder process
def test_restream_to_a_receiver_that_is_not_there_counts_every_frame_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/nobody"
    arguments = ["demo", "--seconds", "2", "--refresh", "0.5", "--out", str(tmp_path)]
    assert main([*arguments, "--restream", url]) == 1  # a fault shows in the exit status
    captured = capsys.readouterr()
    read, written, failed = summary_counts(captured.out)
    assert read > 0 and written == 0 and failed == read  # every frame read is accounted lost
    assert re.search(rf"Output failed: {re.escape(url)}: .*Connection refused", captured.out)
    assert f"Nothing was restreamed (no frame reached {url})" in captured.out
    losses = re.search(r"Losses: failed (\d+)", captured.out)
    assert losses and int(losses.group(1)) > 0  # the verdict counts them
    assert "Failing:" in captured.out
    # The command shows the output's warning on stderr; no per-frame tracebacks.
    assert f"streaming to {url} failed" in captured.err
    assert "Traceback" not in captured.err
    # and the library keeps only its NullHandler once the command returned
    handlers = logging.getLogger("framescope").handlers
    assert [type(handler) for handler in handlers] == [logging.NullHandler]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("bogus://x", "expected a URL starting rtmp://"),
        ("annotated.mp4", "expected a URL starting rtmp://"),
        ("ftp://example.com/x", "expected a URL starting rtmp://"),
    ],
)
def test_a_bad_restream_url_is_a_usage_error(
    url: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--restream", url, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --restream" in err and says in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


# -- where it writes --------------------------------------------------------------------


@pytest.mark.integration  # runs the demo: an encoder process
def test_each_run_overwrites_the_same_out_folder(tmp_path: Path) -> None:
    seen = []
    for _ in range(2):
        report = run_demo(io.StringIO(), seconds=0.5, refresh=0.5, live=False, out_dir=tmp_path)
        assert report.trace == tmp_path / "trace.json.gz"
        assert report.output == str(tmp_path / "annotated.mp4")
        seen.append(sorted(path.name for path in tmp_path.iterdir()))
    assert seen == [[".framescope-demo", "annotated.mp4", "input.mp4", "trace.json.gz"]] * 2


@pytest.mark.integration  # runs the demo: an encoder process
def test_the_default_out_folder_is_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_out_dir() == tmp_path / "cache" / "framescope" / "demo"
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("framescope-demo-*"))
    assert main(["demo", "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    folder = default_out_dir()
    assert f"Annotated video written to {folder / 'annotated.mp4'}" in out
    assert f"Trace written to {folder / 'trace.json.gz'}" in out
    assert sorted(p.name for p in folder.iterdir()) == [
        ".framescope-demo",
        "annotated.mp4",
        "input.mp4",
        "trace.json.gz",
    ]
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("framescope-demo-*")) == before
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_out_dir() == Path.home() / ".cache" / "framescope" / "demo"


@pytest.mark.integration  # runs the demo: an encoder process
def test_trace_goes_where_asked_and_the_rest_to_out(tmp_path: Path) -> None:
    run_demo(io.StringIO(), seconds=0.5, refresh=0.5, live=False, out_dir=tmp_path)
    assert (tmp_path / "trace.json.gz").exists()  # the last run's
    trace = tmp_path / "elsewhere" / "t.json"
    trace.parent.mkdir()
    report = run_demo(
        io.StringIO(), seconds=0.5, refresh=0.5, live=False, trace_path=trace, out_dir=tmp_path
    )
    assert report.trace == trace and json.loads(trace.read_text())["traceEvents"]
    assert not (tmp_path / "trace.json.gz").exists()  # nothing stale passes for this run's


@pytest.mark.integration  # runs the demo: an encoder process
def test_a_run_on_another_video_leaves_no_stale_clip_or_trace(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    run_demo(io.StringIO(), seconds=0.5, refresh=0.5, live=False, out_dir=folder)
    video = tmp_path / "mine.mp4"
    shutil.copy(folder / "input.mp4", video)
    out = io.StringIO()
    trace = tmp_path / "t.json"
    run_demo(
        out, seconds=0.5, refresh=0.5, live=False, video=video, trace_path=trace, out_dir=folder
    )
    assert sorted(path.name for path in folder.iterdir()) == [".framescope-demo", "annotated.mp4"]
    # The closing hints run the same video into the same folder.
    again = f"framescope demo --video {video} --out {folder}"
    assert f"To watch it live in a browser: {again} --serve" in out.getvalue()
    # The test clip given as the video is read, not removed.
    run_demo(io.StringIO(), seconds=0.5, refresh=0.5, live=False, out_dir=folder)
    given = folder / "input.mp4"
    report = run_demo(
        io.StringIO(), seconds=0.5, refresh=0.5, live=False, video=given, out_dir=folder
    )
    assert given.exists() and report.frames_written > 0


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--out", "a-file", "cannot make the folder (File exists)"),
        ("--trace", "missing/t.json", "no such folder"),
        ("--trace", ".", "is a folder"),
    ],
)
def test_a_folder_it_cannot_write_is_one_line_and_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    flag: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    arguments = ["demo", "--seconds", "0.5", "--out", str(tmp_path / "out"), flag, value]
    if flag == "--out":
        arguments = ["demo", "--seconds", "0.5", flag, value]
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and value in err and "Traceback" not in err
    assert not (tmp_path / "out" / "annotated.mp4").exists()


@pytest.mark.integration  # runs the demo: an encoder process
def test_a_live_redraw_keeps_the_header(tmp_path: Path) -> None:
    out = io.StringIO()
    run_demo(out, seconds=1.0, refresh=0.5, live=True, out_dir=tmp_path)
    screens = out.getvalue().split("\x1b[H\x1b[2J")[1:]
    assert len(screens) >= 2
    assert all(screen.startswith("framescope demo: ") for screen in screens)
    assert all("watch which stage holds the others back" in screen for screen in screens)


def test_the_command_sets_one_blas_thread_before_it_reads_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Checking --restream loads PyAV, which loads NumPy, which reads these once.
    from framescope import cli

    seen: list[str | None] = []

    class Recording(argparse.ArgumentParser):
        def parse_args(self, *args: object, **kwargs: object) -> argparse.Namespace:  # type: ignore[override]
            seen.append(os.environ.get("OPENBLAS_NUM_THREADS"))
            raise SystemExit(2)

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setattr(cli, "build_parser", Recording)
    with pytest.raises(SystemExit):
        cli.main(["demo"])
    assert seen == ["1"]


# -- Ctrl-C --------------------------------------------------------------------------------


def _read_lines(stream: io.TextIOBase, into: list[str]) -> None:
    for line in stream:
        into.append(line)


@pytest.mark.integration  # runs the demo: an encoder process
def test_ctrl_c_stops_reports_and_writes_the_trace(tmp_path: Path) -> None:
    """As in a terminal: SIGINT to the command's process group after its first live table."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "framescope",
            "demo",
            "--seconds",
            "120",
            "--refresh",
            "0.2",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        start_new_session=True,  # its own process group, as a terminal's command has
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:

        def drawing() -> bool:
            assert process.poll() is None, "".join(lines)
            return any(line.startswith("t = ") for line in lines)

        assert holds_within(drawing, 60, every=0.05), "".join(lines)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: to the whole group, children too
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    reader.join(10)
    err = process.stderr.read()
    process.stderr.close()
    process.stdout.close()
    text = "".join(lines)
    assert status == 130, (text, err)
    assert "Traceback" not in err and "Traceback" not in text
    assert "Interrupted: stopping the pipeline." in text
    assert re.search(r"^(Stage-bound|Source-bound|Failing|Dropping|Stalled)", text, re.M)
    read, written, failed = summary_counts(text)
    assert written == read and failed == 0  # the encoder process finished the file
    trace = tmp_path / "trace.json.gz"
    assert f"Trace written to {trace}" in text
    with gzip.open(trace, "rt") as handle:
        assert json.load(handle)["traceEvents"]
    _, _, times = decoded(tmp_path / "annotated.mp4")  # finished: it decodes
    assert len(times) == written


# -- logging -------------------------------------------------------------------------------


def _readme_logging_calls() -> list[str]:
    text = (REPO / "README.md").read_text()
    heading = "## Seeing framescope's log in your own program"
    if heading not in text:
        return []
    section = text.split(heading, 1)[1].split("\n## ")[0]
    return re.findall(r"`(logging\.[^`]+\))`", " ".join(section.split()))


@pytest.mark.parametrize("call", _readme_logging_calls())
def test_the_readme_says_how_to_see_framescopes_log(call: str) -> None:
    program = (
        "import logging\nimport framescope\n"
        "logging.getLogger('framescope.video.spyglass').warning('restream failed')\n"
        f"{call}\n"
        "logging.getLogger('framescope.video.spyglass').warning('restream failed again')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        check=True,
    )
    assert "restream failed again" in done.stderr
    assert "restream failed\n" not in done.stderr  # before: only the NullHandler


def test_the_readme_note_names_both_ways() -> None:
    assert len(_readme_logging_calls()) == 2


def test_the_command_shows_framescopes_warnings_on_stderr_only_while_it_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from framescope import cli

    def warn(*args: object, **kwargs: object) -> int:
        logging.getLogger("framescope.video.source").warning("video source x failed; reconnecting")
        logging.getLogger("framescope.video.source").info("not shown: below WARNING")
        logging.getLogger("elsewhere").warning("not framescope's")
        return 0

    monkeypatch.setattr("framescope.timepiece_demo.run_timepiece_demo", warn)
    assert cli.main(["timepiece-demo"]) == 0
    err = capsys.readouterr().err
    assert "framescope: WARNING: video source x failed; reconnecting" in err
    assert "not shown" not in err and "not framescope's" not in err
    handlers = logging.getLogger("framescope").handlers
    assert [type(handler) for handler in handlers] == [logging.NullHandler]
    assert not logging.getLogger().handlers or all(
        type(handler).__module__.startswith("_pytest") for handler in logging.getLogger().handlers
    )


def test_demo_help_says_what_it_does_and_writes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for promised in (
        "--out DIR",
        "~/.cache/framescope/demo",
        "input.mp4 (the test clip), annotated.mp4 and trace.json.gz",
        "--video FILE",
        "--restream URL",
        "Ctrl-C ends it early",
        "1 when the video cannot be read",
        "130 when interrupted",
        "threads that run the slow stage, Infer",
        "two phases on the same input, each half of --seconds: Infer on 1 replica, then on N",
        "their ratio (the fact)",
    ):
        assert promised in text, promised


def test_video_frames_checks_the_video_at_once_and_yields_timed_items(tmp_path: Path) -> None:
    from framescope.demo import DemoError, demo_clip, video_frames

    with pytest.raises(DemoError, match=r"missing\.mp4"):
        video_frames(tmp_path / "missing.mp4")  # not deferred to the first next()
    frames = video_frames(demo_clip(tmp_path, seconds=0.5))
    items = [next(frames) for _ in range(40)]  # 15 frames a loop: it loops
    assert [item["index"] for item in items] == list(range(40))
    times = [item["time"] for item in items]
    assert times == pytest.approx([index / 30 for index in range(40)])
    frames.close()


def test_the_detection_box_surrounds_the_test_clips_grey_square() -> None:
    from framescope.demo import Annotate, Postprocess
    from framescope.video import SyntheticSource

    source = SyntheticSource(1280, 720, 30)
    image = source.image(45)
    grey = np.all(image == 128, axis=2)
    rows, columns = np.flatnonzero(grey.any(axis=1)), np.flatnonzero(grey.any(axis=0))
    item = Postprocess()(Preprocess()({"frame": image}))
    top, left, bottom, right = item["box"]
    cell = (720 / 120, 1280 / 160)  # one cell of the model's grid, in pixels
    assert abs(top - rows[0]) <= cell[0] and abs(bottom - rows[-1] - 1) <= cell[0]
    assert abs(left - columns[0]) <= cell[1] and abs(right - columns[-1] - 1) <= cell[1]
    drawn = Annotate()(item)["frame"]
    green = np.all(drawn == (0, 255, 0), axis=2)
    assert green.sum() > 4 * 2 * (bottom - top)  # lines at least 2 px wide on all sides
    assert not green[rows[0] + 8 : rows[-1] - 8, columns[0] + 8 : columns[-1] - 8].any()


def test_a_frame_without_a_grey_region_gets_no_box() -> None:
    from framescope.demo import Annotate, Postprocess

    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, :320] = (0, 0, 255)
    item = Postprocess()(Preprocess()({"frame": frame}))
    assert item["box"] is None
    assert np.array_equal(Annotate()(item)["frame"], frame)


@pytest.mark.integration  # runs the demo: an encoder process
def test_the_video_read_is_never_a_file_the_run_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    run_demo(io.StringIO(), seconds=0.5, refresh=0.5, live=False, out_dir=folder)
    annotated = folder / "annotated.mp4"
    size = annotated.stat().st_size
    assert main(["demo", "--seconds", "0.5", "--video", str(annotated), "--out", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "this run writes its annotated video there" in err
    trace = tmp_path / "t.mp4"
    shutil.copy(annotated, trace)
    arguments = ["demo", "--video", str(trace), "--trace", str(trace), "--out", str(folder)]
    assert main(arguments) == 1
    assert "this run writes its trace there" in capsys.readouterr().err
    assert annotated.stat().st_size == size  # neither read nor written over


def test_a_folder_the_demo_did_not_make_keeps_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "input.mp4"
    mine.write_bytes(b"a user's own file")
    assert main(["demo", "--seconds", "0.5", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "which framescope demo did not write" in err
    assert mine.read_bytes() == b"a user's own file"


@pytest.mark.integration  # runs the demo: an encoder process
def test_a_trace_it_cannot_write_is_said_after_the_report_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import framescope.demo.run as demo_run

    def refuse(path: object, document: object) -> Path:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(demo_run, "write_trace", refuse)
    assert main(["demo", "--seconds", "0.5", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Frames: " in out and "Annotated video written to" in out  # the report still came
    assert f"Trace not written: {tmp_path / 'trace.json.gz'}: Permission denied" in out


def test_frames_the_output_dropped_are_said_apart_from_the_pipelines_losses() -> None:
    from framescope.demo.run import DemoReport, _summary

    report = DemoReport(trace=Path("t.json.gz"), output="out.mp4", frames_read=463)
    report.frames_written, report.frames_failed = 389, 74
    report.failures = {"dropped by the output": 74}
    text = _summary(report, restream=False, source="a.mp4")
    assert summary_counts(text) == (463, 389, 74)
    assert "the output dropped 74 frames: its encoder did not keep up" in text
    assert "neither written nor counted" not in text


class _FullGlass:
    """A SpyGlass stand-in whose queue is full until a test lets the encoder take a frame."""

    def __init__(self) -> None:
        from framescope.video import SpyGlassState

        self.state = SpyGlassState.STREAMING
        self.queue_size, self.backlog = 2, 2
        self.width = self.height = None
        self.uri, self.last_error = "file.mp4", None
        self.put_frames: list[object] = []

    def put(self, frame: object, *, time: float | None = None) -> bool:
        self.put_frames.append(frame)
        self.backlog += 1
        return True


def test_output_to_a_file_waits_for_room_rather_than_drop_a_frame() -> None:
    from framescope.demo.stages import Output

    glass = _FullGlass()
    output = Output(glass, stop=False, wait=True)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (output({"frame": "f1"}), done.set()), daemon=True)
    thread.start()
    assert not holds_within(done.is_set, 0.2)  # the queue is full: it waits
    assert glass.put_frames == []
    glass.backlog = 1  # the encoder took a frame
    assert holds_within(done.is_set, 10)
    assert glass.put_frames == ["f1"]
    thread.join(5)


def test_output_stops_waiting_when_the_spyglass_fails() -> None:
    from framescope.demo.stages import Output, OutputFailedError
    from framescope.video import SpyGlassState

    glass = _FullGlass()
    output = Output(glass, stop=False, wait=True)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            output({"frame": "f1"})
        except OutputFailedError as error:
            errors.append(error)

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    glass.last_error = "encoder died"
    glass.state = SpyGlassState.ERROR
    thread.join(10)
    assert not thread.is_alive() and len(errors) == 1 and glass.put_frames == []

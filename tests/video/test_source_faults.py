"""VideoSource on bad, damaged and cut files, and closed from another thread."""

from __future__ import annotations

import itertools
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("av")

import av

from framescope.video import SyntheticSource, VideoSource, VideoWriter

from .helpers import REPO, write_clip

pytestmark = pytest.mark.integration

FFMPEG = shutil.which("ffmpeg")


def damage(clip: Path, out: Path, size: int = 64 * 1024) -> Path:
    """The clip with ``size`` bytes in its middle overwritten by noise."""
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = random.Random(7).randbytes(size)
    out.write_bytes(bytes(data))
    return out


def cut(clip: Path, out: Path, share: float) -> Path:
    """The first ``share`` of the clip's bytes, as a copy cut short would be."""
    data = clip.read_bytes()
    out.write_bytes(data[: int(len(data) * share)])
    return out


# -- opening ---------------------------------------------------------------------------


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48_000)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.rate = 48_000
        for index in range(10):
            frame.pts = index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        (lambda p: p.write_text("not a video\n" * 50), r"is not a video file FFmpeg can read"),
        (audio_only, r"has no video stream \(audio only\)"),
        (lambda p: p.mkdir(), r"is a directory, not a video file"),
    ],
    ids=["empty", "text", "audio-only", "directory"],
)
def test_a_file_that_is_no_video_is_a_clear_value_error(
    tmp_path: Path, make: object, reason: str
) -> None:
    path = tmp_path / "input.m4a"
    make(path)  # type: ignore[operator]
    source = VideoSource(path)
    for attempt in (source.open, lambda: next(iter(source))):
        with pytest.raises(ValueError, match=rf"^uri: '{path}' {reason}") as caught:
            attempt()
        assert type(caught.value) is ValueError  # not PyAV's own error
        assert "\n" not in str(caught.value)


def test_a_file_that_goes_missing_before_it_opens(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "gone.mp4", frames=5)
    source = VideoSource(path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"^uri: no such video file: '{path}'$"):
        source.open()
    with pytest.raises(FileNotFoundError, match="no such video file"):
        list(source)


UNREADABLE = """
import os, sys
from framescope.video import VideoSource
os.setgid(65534); os.setuid(65534)  # nobody: the mode bits now apply
for path in sys.argv[1:]:
    try:
        VideoSource(path).open()
    except ValueError as error:
        print(type(error).__name__, error)
"""


def test_an_unreadable_file_is_a_clear_value_error(tmp_path: Path) -> None:
    hidden = write_clip(tmp_path / "hidden.mp4", frames=5)  # in a folder only its owner enters
    hidden.chmod(0)
    shared = Path(tempfile.mkdtemp(prefix="framescope-"))  # a folder anyone enters
    try:
        shared.chmod(0o755)
        locked = shutil.copy(hidden, shared / "locked.mp4")
        Path(locked).chmod(0)
        paths = [str(hidden), str(locked)]
        if os.geteuid() != 0:
            for path in paths:
                with pytest.raises(ValueError, match=r"cannot be read \(permission denied\)$"):
                    VideoSource(path).open()
            return
        # root reads any file: the check runs as nobody, in a child process.
        done = subprocess.run(
            [sys.executable, "-c", UNREADABLE, *paths],
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(shared)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"ValueError uri: '{path}' cannot be read (permission denied)" for path in paths
    ]


# -- stream time -----------------------------------------------------------------------


@pytest.mark.skipif(FFMPEG is None, reason="Debian's ffmpeg writes the raw H.264 stream")
def test_frames_without_timestamps_get_times_from_the_rate(tmp_path: Path) -> None:
    path = tmp_path / "raw.h264"  # an elementary stream: no timestamps at all
    subprocess.run(
        [
            FFMPEG or "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120",
            "-r",
            "25",
            "-frames:v",
            "20",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    with av.open(str(path)) as container:
        assert all(frame.time is None for frame in container.decode(video=0))
    frames = list(itertools.islice(VideoSource(path, loop=True), 45))
    assert [frame.time for frame in frames] == pytest.approx([i / 25 for i in range(45)])
    assert all(isinstance(frame.pts, int) for frame in frames)
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames[:20]))  # type: ignore[operator]
    assert f"{frames[-1].time:.2f}" == "1.76"  # formats, as users do


# -- damage ----------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "at_least"), [(".mp4", 250), (".ts", 250), (".mkv", 200)])
def test_a_damaged_file_is_read_past_its_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str, at_least: int
) -> None:
    clip = write_clip(tmp_path / f"clip{suffix}", frames=300, size=(640, 480), fps=30)
    damaged = damage(clip, tmp_path / f"damaged{suffix}")
    source = VideoSource(damaged)
    with caplog.at_level(logging.WARNING, "framescope.video.source"):
        frames = list(source)
    assert at_least <= len(frames) == source.frames_read <= 300
    assert source.expected_frames == 300
    assert source.decode_errors >= 1
    assert source.last_error is not None and "damaged data" in source.last_error
    assert not source.ended_early  # it was read to its end
    times = [frame.time for frame in frames]
    assert times[-1] == pytest.approx(299 / 30, abs=0.01)
    assert all(b > a for a, b in itertools.pairwise(times))
    summary = [r.getMessage() for r in caplog.records if "frames (" in r.getMessage()]
    assert summary == [
        f"video file '{damaged}': read {len(frames)} of 300 frames (10.0 of 10.0 s); "
        f"{source.decode_errors} damaged packet{'s' * (source.decode_errors != 1)}"
    ]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_file_cut_short_says_it_ended_early(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str
) -> None:
    clip = tmp_path / f"clip{suffix}"
    options = {"movflags": "+faststart"} if suffix == ".mp4" else {}  # the index up front
    with VideoWriter(str(clip), fps=30, options=options) as writer:
        for image in SyntheticSource(320, 240, 30, frames=300):
            writer.write(image)
    short = cut(clip, tmp_path / f"short{suffix}", 0.4)
    source = VideoSource(short)
    with caplog.at_level(logging.WARNING, "framescope.video.source"):
        frames = list(source)
    assert 90 <= len(frames) <= 150
    assert source.expected_frames == 300
    assert source.ended_early
    (summary,) = [r.getMessage() for r in caplog.records if "frames (" in r.getMessage()]
    # (an MP4's last packet, cut in two, is flagged as damaged too)
    assert summary.startswith(
        f"video file '{short}': read {len(frames)} of 300 frames ({len(frames) / 30:.1f} of 10.0 s); "
    )
    assert summary.endswith("; it ends before its stated duration")
    whole = VideoSource(clip)
    assert len(list(whole)) == 300 and not whole.ended_early and whole.decode_errors == 0


# -- closing from another thread -------------------------------------------------------

CLOSE_RACE = """
import random, sys, threading
from framescope.video import VideoSource
random.seed(int(sys.argv[3]))
failures = []
for attempt in range(int(sys.argv[2])):
    source = VideoSource(sys.argv[1])
    started = threading.Event()
    def read():
        try:
            for frame in source:
                started.set()
        except BaseException as error:
            failures.append(repr(error))
        finally:
            started.set()
    reader = threading.Thread(target=read)
    reader.start()
    started.wait(30)
    threading.Event().wait(random.uniform(0, 0.03))  # land the close anywhere in a read
    source.close()
    reader.join(30)
    if reader.is_alive():
        failures.append("reader still running")
        break
print("failures", failures, flush=True)
"""


def test_close_from_another_thread_never_crashes(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "hd.mp4", frames=60, size=(1280, 720), fps=30)
    done = subprocess.run(
        [sys.executable, "-c", CLOSE_RACE, str(clip), "100", "1"],
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "failures []"


@pytest.mark.skipif(FFMPEG is None, reason="Debian's ffmpeg muxes the audio track")
def test_an_audio_track_longer_than_the_video_is_no_early_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = tmp_path / "talk.mp4"
    subprocess.run(
        [
            FFMPEG or "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=30:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(clip),
        ],
        check=True,
        timeout=120,
    )
    source = VideoSource(clip)
    with caplog.at_level(logging.WARNING, logger="framescope"):
        frames = list(source)
    assert len(frames) == source.expected_frames == 60
    assert source.duration == pytest.approx(2.0, abs=0.05)  # the video's, not the audio's
    assert not source.ended_early
    assert not [r for r in caplog.records if "ends before" in r.getMessage()]


def test_a_looped_damaged_file_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clip = write_clip(tmp_path / "clip.ts", frames=60, size=(320, 240), fps=30)
    damaged = damage(clip, tmp_path / "damaged.ts", size=8 * 1024)
    source = VideoSource(damaged, loop=True)
    with caplog.at_level(logging.WARNING, "framescope.video.source"):
        frames = list(itertools.islice(source, 200))  # more than three passes
    source.close()
    assert len(frames) == 200 and source.decode_errors >= 3
    summary = [r for r in caplog.records if "frames (" in r.getMessage()]
    assert len(summary) == 1

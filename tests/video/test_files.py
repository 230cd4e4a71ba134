"""Video files and HLS: written with VideoWriter, read back with VideoSource and PyAV."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

pytest.importorskip("av")

import av
import numpy as np

from framescope.clock import FakeClock
from framescope.video import Frame, SyntheticSource, VideoSource, VideoWriter

from .helpers import write_clip


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts", ".webm"])
def test_a_clip_round_trips_through_a_file(tmp_path: Path, suffix: str) -> None:
    path = write_clip(tmp_path / f"clip{suffix}", frames=45, size=(320, 240), fps=30)
    source = VideoSource(path).open()
    assert (source.width, source.height) == (320, 240)
    assert source.fps == pytest.approx(30, rel=0.01)
    assert source.duration == pytest.approx(1.5, abs=0.1)
    frames = list(source)
    assert len(frames) == 45
    assert [frame.index for frame in frames] == list(range(45))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    times = [frame.time for frame in frames]
    assert times[0] == pytest.approx(0, abs=0.001)
    assert times[-1] == pytest.approx(44 / 30, abs=0.002)
    assert all(b > a for a, b in itertools.pairwise(times))
    assert all(frame.wall_time is not None for frame in frames)
    # Frames differ (the pattern moves), and decoding kept the pattern's colours.
    assert not np.array_equal(frames[0].image, frames[30].image)
    expected = SyntheticSource(320, 240, 30).image(0)
    assert np.abs(frames[0].image.astype(int) - expected).mean() < 12


def test_frames_of_another_size_are_scaled_to_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "scaled.mp4"
    with VideoWriter(str(path), fps=30, width=320, height=240) as writer:
        for frame in SyntheticSource(640, 480, 30, frames=10):
            writer.write(frame)
        writer.write(np.zeros((240, 320, 3), np.uint8))  # the right size: not scaled
    assert writer.frames_written == 11 and writer.frames_resized == 10
    sizes = {(f.width, f.height) for f in VideoSource(path)}
    assert sizes == {(320, 240)}


def test_bare_images_are_stamped_by_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "uneven.mkv"
    gaps = [0.0, 0.1, 0.01, 0.5, 0.04]  # frames arriving unevenly
    with VideoWriter(str(path), fps=25, clock=clock) as writer:
        for gap in gaps:
            clock.advance(gap)
            writer.write(np.full((64, 64, 3), 90, np.uint8))
    times = [frame.time for frame in VideoSource(path)]
    expected = list(itertools.accumulate(gaps[1:], initial=0.0))
    assert times == pytest.approx(expected, abs=0.002)  # plays at the speed it happened


def test_an_hls_playlist_with_rolling_segments(tmp_path: Path) -> None:
    playlist = tmp_path / "live" / "stream.m3u8"
    with VideoWriter(str(playlist), fps=30, gop=30, options={"hls_time": "1"}) as writer:
        for frame in SyntheticSource(160, 120, 30, frames=150):
            writer.write(frame)
    assert playlist.exists()
    segments = sorted(playlist.parent.glob("stream_*.ts"))
    assert 3 <= len(segments) <= 6  # rolling: at most hls_list_size kept
    assert "#EXTM3U" in playlist.read_text()
    with av.open(str(playlist)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded > 60


def test_realtime_paces_a_file_at_its_rate(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "paced.mp4", frames=30, fps=30)
    clock = FakeClock(autojump=True)
    started = clock.monotonic_ns()
    frames = list(VideoSource(path, realtime=True, clock=clock))
    assert len(frames) == 30
    assert (clock.monotonic_ns() - started) / 1e9 == pytest.approx(29 / 30, abs=0.01)


def test_loop_starts_again_with_rising_time(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "loop.mp4", frames=10, fps=10)
    frames = list(itertools.islice(VideoSource(path, loop=True), 25))
    assert [frame.index for frame in frames] == list(range(25))
    times = [frame.time for frame in frames]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[20] == pytest.approx(2.0, abs=0.01)


def test_a_pipeline_runs_a_file_to_its_end(tmp_path: Path) -> None:
    from framescope import Pipeline

    path = write_clip(tmp_path / "run.mp4", frames=40)
    pipeline = Pipeline().add(lambda f: f.index, "Index").parallelize(queue_size=4)
    assert list(pipeline.run(VideoSource(path))) == list(range(40))
    pipeline.cleanup()


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such video file"):
        VideoSource(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="camera number"):
        VideoSource(-1)
    with pytest.raises(TypeError, match="uri must be a path, a URL or a camera number, got float"):
        VideoSource(3.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uri must be a path"):
        VideoSource("  ")
    with pytest.raises(ValueError, match="extension"):
        VideoWriter(str(tmp_path / "out.xyz"))
    with pytest.raises(ValueError, match="scheme"):
        VideoWriter("srt://127.0.0.1:9000")
    with pytest.raises(ValueError, match="codec"):
        VideoWriter(str(tmp_path / "out.mp4"), codec="no-such-codec")
    with pytest.raises(ValueError, match="width must be even"):
        VideoWriter(str(tmp_path / "out.mp4"), width=321, height=240)
    with VideoWriter(str(tmp_path / "out.mp4")) as writer:
        with pytest.raises(TypeError, match="numpy image"):
            writer.write("not a frame")
        with pytest.raises(ValueError, match="H x W x 3"):
            writer.write(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="even"):
        SyntheticSource(33, 24)


def test_frame_knows_its_size() -> None:
    frame = Frame(np.zeros((24, 32, 3), np.uint8), 0)
    assert (frame.width, frame.height) == (32, 24)

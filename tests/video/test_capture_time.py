"""When a VideoSource's frames were captured: a file's creation_time, an RTSP camera's RTCP clock."""

from __future__ import annotations

import datetime
import itertools
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("av")

from framescope.clock import FakeClock
from framescope.pipeline import Pipeline
from framescope.video import VideoSource
from tests.video.helpers import RtspCamera, gstreamer_rtsp_missing, write_clip

CREATED = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
FPS = 30  # the test camera's rate (tests/video/rtsp_server.py)


def _clip_created(path: Path) -> Path:
    """Ten frames at 10 fps, their container stamped with CREATED."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed")
    subprocess.run(
        [
            *(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10"),
            *("-frames:v", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
            *("-metadata", "creation_time=2024-05-01T12:00:00.000000Z", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path


def test_a_file_s_frames_are_captured_at_its_creation_time_plus_their_stream_time(
    tmp_path: Path,
) -> None:
    frames = list(VideoSource(_clip_created(tmp_path / "created.mp4")))
    assert len(frames) == 10
    assert {frame.capture_clock for frame in frames} == {"file"}
    for frame in frames:
        assert frame.capture_time == pytest.approx(CREATED.timestamp() + frame.index / 10, abs=1e-6)
        assert frame.stamps is not None and frame.stamps.capture_time == frame.capture_time
        assert frame.stamps.received_ns <= frame.stamps.decoded_ns


def test_a_file_s_clock_says_when_it_was_recorded_not_how_old_a_frame_is(tmp_path: Path) -> None:
    # Its frames were "captured" in 2024: their age on arrival is no part of the split.
    pipeline = Pipeline(name="Files").add(lambda frame: frame, "Pass")
    try:
        frames = list(pipeline.run({"clip": VideoSource(_clip_created(tmp_path / "old.mp4"))}))
        latency = pipeline.snapshot().sources["clip"].latency
    finally:
        pipeline.cleanup()
    assert {frame.capture_clock for frame in frames} == {"file"}
    assert latency is not None and latency.clocks == {"file": 10}
    assert latency.figures("capture") is None
    to_out = latency.figures("to_out")
    spans = [
        (f.stamps.out_ns - f.stamps.received_ns) / 1e9
        for f in frames
        if f.stamps is not None and f.stamps.out_ns is not None
    ]
    assert to_out is not None and to_out.count == 10 and to_out.maximum == max(spans)


def test_a_file_paced_in_real_time_is_received_when_due_and_captured_on_its_file_clock(
    tmp_path: Path,
) -> None:
    clock = FakeClock(autojump=True)  # the pacer's waits move the clock to each frame's time
    source = VideoSource(_clip_created(tmp_path / "paced.mp4"), realtime=True, clock=clock)
    frames = list(source)
    assert {frame.capture_clock for frame in frames} == {"file"}
    received = [frame.stamps.received_ns for frame in frames if frame.stamps is not None]
    assert [b - a for a, b in itertools.pairwise(received)] == [100_000_000] * 9  # 10 fps
    assert frames[3].capture_time == pytest.approx(CREATED.timestamp() + 0.3, abs=1e-6)


def test_hls_is_stamped_received_ffmpeg_does_not_expose_program_date_time(
    tmp_path: Path,
) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed")
    playlist = tmp_path / "live.m3u8"
    subprocess.run(
        [
            *(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10"),
            *("-frames:v", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "hls"),
            *("-hls_time", "0.5", "-hls_flags", "program_date_time", str(playlist)),
        ],
        check=True,
        timeout=60,
    )
    assert "#EXT-X-PROGRAM-DATE-TIME:" in playlist.read_text()
    frames = list(VideoSource(playlist))
    assert len(frames) == 10
    assert {frame.capture_clock for frame in frames} == {"received"}


def test_decode_threads_is_checked_before_the_uri(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="decode_threads must be 'frame', 'slice' or None"):
        VideoSource(tmp_path / "missing.mp4", decode_threads="many")
    with pytest.raises(TypeError, match="decode_threads must be a str or None, got int"):
        VideoSource(tmp_path / "missing.mp4", decode_threads=2)  # type: ignore[arg-type]
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    assert VideoSource(clip).decode_threads == "frame"
    assert VideoSource(clip, decode_threads="slice").decode_threads == "slice"
    assert len(list(VideoSource(clip, decode_threads="slice"))) == 3


def test_a_file_without_creation_time_is_stamped_received(tmp_path: Path) -> None:
    frames = list(VideoSource(write_clip(tmp_path / "plain.mp4", frames=5)))
    assert [frame.capture_clock for frame in frames] == ["received"] * 5
    for frame in frames:
        assert frame.stamps is not None
        assert frame.capture_time == frame.stamps.received_wall == frame.wall_time


_MISSING = gstreamer_rtsp_missing()


@pytest.mark.integration
@pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
def test_an_rtsp_camera_s_frames_carry_its_rtcp_clock_within_50_ms() -> None:
    """The camera (GStreamer's RTSP server) runs on this machine's clock, so RTCP's times match it.

    Its live test source stamps a frame at the start of the frame's interval
    and sends it at its end, so a frame reaches us one interval (33 ms) plus
    the encoder's and the loopback's time after its capture: received minus
    captured must lie within 50 ms of that interval (the median of the run).
    """
    camera = RtspCamera()
    pipeline = Pipeline(name="Cams")
    pipeline.add(lambda frame: frame, "Pass")
    try:
        source = VideoSource(camera.url, timeout=10.0, stall_timeout=10.0)
        rtcp = []
        for frame in pipeline.run({"cam": source}):
            if frame.capture_clock == "rtcp":
                rtcp.append(frame)
            if len(rtcp) >= 60 or frame.index > 30 * FPS:
                break
        snapshot = pipeline.snapshot()
    finally:
        pipeline.cleanup()
        camera.stop()
    assert len(rtcp) >= 60, "no RTCP sender report within 30 s of frames"
    ages = [f.stamps.received_wall - f.capture_time for f in rtcp if f.stamps is not None]
    assert abs(statistics.median(ages) - 1 / FPS) < 0.050, ages
    # The camera's frames are 1/30 s apart on its clock, as their pts say.
    steps = [b.capture_time - a.capture_time for a, b in itertools.pairwise(rtcp)]
    assert statistics.median(steps) == pytest.approx(1 / FPS, abs=1e-3)
    latency = snapshot.sources["cam"].latency
    assert latency is not None and latency.clocks.get("rtcp", 0) >= 59
    capture = latency.figures("capture")
    assert capture is not None and abs(capture.p50 - 1 / FPS) < 0.050
    # A live source decodes with slice threads only: no frame waits in the
    # decoder for the next ones (frame threads held each 2 frames, 67 ms, here),
    # so each frame is decoded before the next one is received.
    assert source.decode_threads == "slice"
    for a, b in itertools.pairwise(rtcp):
        assert a.stamps is not None and b.stamps is not None
        if b.index == a.index + 1:
            assert a.stamps.decoded_ns <= b.stamps.received_ns, (a.index, b.index)

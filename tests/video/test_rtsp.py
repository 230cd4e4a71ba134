"""VideoSource pulling a live camera from a real RTSP server (Debian's GStreamer), through faults."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("av")

from framescope.clock import FakeClock
from framescope.video import Frame, VideoSource

from .helpers import RtspCamera, gstreamer_rtsp_missing, wait_for

_MISSING = gstreamer_rtsp_missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
]


@pytest.fixture
def camera() -> Iterator[RtspCamera]:
    server = RtspCamera()
    yield server
    server.stop()


class Reader:
    """Reads a source in a thread, keeping its frames."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="rtsp-reader")
        self.thread.start()

    def _read(self) -> None:
        try:
            for frame in self.source:
                self.frames.append(frame)
        except BaseException as error:
            self.error = error

    def stop(self) -> None:
        self.source.close()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert self.error is None, repr(self.error)


def source(url: str, clock: FakeClock, **options: object) -> VideoSource:
    return VideoSource(
        url,
        reconnect_initial=0.2,
        reconnect_max=0.4,
        timeout=10,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def check_times(frames: list[Frame]) -> None:
    assert all(frame.time is not None and frame.pts is not None for frame in frames)
    times = [frame.time for frame in frames]
    assert all(b > a for a, b in itertools.pairwise(times))  # type: ignore[operator]
    assert [frame.index for frame in frames] == list(range(len(frames)))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_time_goes_on_across_a_reconnect(camera: RtspCamera, transport: str) -> None:
    clock = FakeClock(autojump=True)  # the back-off passes at once, and is the gap measured
    reader = Reader(source(camera.url, clock, options={"rtsp_transport": transport}))
    try:
        wait_for(lambda: len(reader.frames) >= 20, 60, "frames from the camera")
        first = reader.frames[0]
        assert f"{first.time:.3f} {first.pts}" == "0.000 0"  # the stream gave it neither
        camera.command("drop")
        wait_for(lambda: reader.source.reconnects >= 1, 60, "a reconnect")
        before = len(reader.frames)
        wait_for(lambda: len(reader.frames) >= before + 20, 60, "frames after the reconnect")
    finally:
        reader.stop()
    frames = reader.frames
    check_times(frames)
    assert reader.source.reconnects == 1 and reader.source.stalls == 0
    gaps = [b.time - a.time for a, b in itertools.pairwise(frames)]  # type: ignore[operator]
    # The outage shows: the back-off waited (0.8 to 1.0) x 0.2 s of the clock.
    assert max(gaps) >= 0.16
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(1 / 30, abs=0.002)


def test_a_frozen_stream_is_reported_as_stalled_and_reopened(
    camera: RtspCamera, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(autojump=True)
    reader = Reader(source(camera.url, clock, stall_timeout=2.0))
    try:
        with caplog.at_level(logging.WARNING, "framescope.video.source"):
            wait_for(lambda: len(reader.frames) >= 20, 60, "frames from the camera")
            camera.command("freeze")  # the connection stays open; nothing comes
            wait_for(lambda: reader.source.stalls >= 1, 60, "the stall")
            assert reader.source.last_error == "stalled: no data for 2 s"
            before = len(reader.frames)
            wait_for(lambda: len(reader.frames) >= before + 20, 60, "frames after reopening")
    finally:
        reader.stop()
    # A loaded machine may starve the camera's process past 2 s once more: each
    # such stall is reported and reopened the same way.
    stalls = reader.source.stalls
    assert stalls >= 1 and reader.source.reconnects == stalls == reader.source.errors
    check_times(reader.frames)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    said = f"video source {camera.url} stalled (no data for 2 s); reconnecting"
    assert warnings == [said] * stalls


def test_a_stall_without_reconnect_is_a_timeout_error(camera: RtspCamera) -> None:
    clock = FakeClock(autojump=True)
    reader = Reader(source(camera.url, clock, stall_timeout=1.0, reconnect=False))
    wait_for(lambda: len(reader.frames) >= 10, 60, "frames from the camera")
    camera.command("freeze")
    reader.thread.join(60)
    assert not reader.thread.is_alive()
    assert isinstance(reader.error, TimeoutError)
    assert str(reader.error) == f"uri: {camera.url!r} stalled: no data for 1 s"
    assert reader.source.stalls == 1 and reader.source.reconnects == 0
    reader.source.close()


def test_close_from_another_thread_while_a_read_waits(
    camera: RtspCamera, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(autojump=True)
    reader = Reader(source(camera.url, clock, stall_timeout=2.0))
    wait_for(lambda: len(reader.frames) >= 10, 60, "frames from the camera")
    with caplog.at_level(logging.WARNING, "framescope.video.source"):
        camera.command("freeze")  # the reader now waits inside FFmpeg for data
        reader.source.close()  # returns at once; the reader closes the container after FFmpeg
        reader.thread.join(60)
    assert not caplog.records  # closing is no fault
    assert not reader.thread.is_alive()
    assert reader.error is None
    assert reader.source._container is None
    assert reader.source.reconnects == 0 and reader.source.stalls == 0

"""Event clips in packet mode from a real RTSP camera (Debian's GStreamer RTSP server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framescope.pipeline import Pipeline
from tests.polling import wait_for

from .helpers import RtspCamera, gstreamer_rtsp_missing

av = pytest.importorskip("av")

from framescope.video import Clips, VideoSource  # noqa: E402 - needs PyAV

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


class PacketLog:
    """A second sink on the source: the camera's packets as they came, and its parameters."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.extradata: bytes | None = None
        self.size: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def open_stream(self, stream: Any) -> None:
        context = stream.codec_context
        self.extradata = bytes(context.extradata or b"")
        self.size = (context.width, context.height)

    def add_packet(self, packet: Any, received_ns: int, capture_time: float) -> None:
        with self.lock:
            self.packets.append(bytes(packet))


def annexb_units(data: bytes) -> list[bytes]:
    """The NAL units of Annex B data (start codes of 3 or 4 bytes)."""
    units, start, index = [], None, 0
    while index + 3 <= len(data):
        if data[index : index + 3] == b"\x00\x00\x01":
            if start is not None:
                units.append(data[start:index].rstrip(b"\x00"))
            index += 3
            start = index
        else:
            index += 1
    if start is not None:
        units.append(data[start:])
    return units


def length_prefixed_units(data: bytes) -> list[bytes]:
    """The NAL units of MP4 sample data (4-byte lengths)."""
    units, index = [], 0
    while index + 4 <= len(data):
        size = int.from_bytes(data[index : index + 4], "big")
        units.append(data[index + 4 : index + 4 + size])
        index += 4 + size
    return units


def avcc_parameter_sets(extradata: bytes) -> list[bytes]:
    """The SPS and PPS of an avcC record."""
    sets, index = [], 6
    for count_mask in (0x1F, 0xFF):
        count = extradata[index - 1] & count_mask
        for _ in range(count):
            size = int.from_bytes(extradata[index : index + 2], "big")
            sets.append(extradata[index + 2 : index + 2 + size])
            index += 2 + size
        index += 1
    return sets


def record_a_clip(camera: RtspCamera, directory: Path) -> tuple[Clips, PacketLog, Any]:
    """Pull the camera through a pipeline whose stage triggers at frame 60, until the clip."""
    source = VideoSource(camera.url, timeout=10)
    log = PacketLog()
    source.add_packet_sink(log)  # first: it sees every packet the recorder sees
    clips = Clips(directory, pre=1, post=1).attach(source)
    triggered = threading.Event()

    def detect(frame: Any) -> Any:
        if frame.index == 60:
            clips.trigger("ball", camera="cam")
            triggered.set()
        return frame

    pipeline = Pipeline()
    pipeline.add(detect)
    pipeline.parallelize()
    results = pipeline.run(source)

    def read() -> None:
        for _ in results:
            if clips.clips_snapshot().clips_written:
                source.close()

    reader = threading.Thread(target=read, name="rtsp-clips-reader")
    reader.start()
    try:
        wait_for(lambda: clips.clips_snapshot().clips_written == 1, 90, "the clip")
    finally:
        source.close()
        reader.join(60)
        snapshot = pipeline.snapshot()
        pipeline.cleanup()
        assert clips.close(30)
    assert not reader.is_alive()
    assert triggered.is_set()
    return clips, log, snapshot


def test_packet_mode_clips_hold_the_cameras_own_packets(camera: RtspCamera, tmp_path: Path) -> None:
    clips, log, snapshot = record_a_clip(camera, tmp_path)
    assert [recorder.name for recorder in snapshot.clips] == [tmp_path.name]
    (entry,) = clips.clips()
    path = tmp_path / entry.file
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        assert (context.name, context.width, context.height) == ("h264", 320, 240)
        assert log.size == (320, 240)
        extradata = bytes(context.extradata)
        ours = [bytes(p) for p in container.demux(stream) if p.size]
    assert len(ours) == entry.frames > 45  # 1 s before to 1 s after, at 30 fps
    # The parameter sets are the camera's (its SDP's), only written as MP4 wants them.
    assert log.extradata
    camera_sets = [unit for unit in annexb_units(log.extradata) if unit]
    assert avcc_parameter_sets(extradata) == camera_sets
    # Each packet is the camera's, unit for unit, in order: no decoding, no encoding.
    clip_units = [length_prefixed_units(data) for data in ours]
    camera_units = [annexb_units(data) for data in log.packets]
    start = camera_units.index(clip_units[0])
    assert camera_units[start : start + len(clip_units)] == clip_units
    sizes = [sum(len(unit) for unit in units) for units in clip_units]
    assert sizes == [sum(len(u) for u in units) for units in camera_units[start:][: len(sizes)]]
    data = json.loads((tmp_path / f"{entry.clip_id}.json").read_text())
    assert data["mode"] == "packets" and data["labels"] == {"camera": "cam"}
    assert data["pre_roll_s"] >= 1.0
    assert entry.duration_s >= 2.0  # 1 s before the trigger to 1 s after, at least
    assert entry.end_time - entry.start_time >= 2.0 - 0.1  # capture times: a camera's jitter
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == entry.frames

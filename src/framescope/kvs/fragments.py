"""Frames to KVS fragments: H.264 in a live Matroska stream, one cluster per key frame.

:class:`FragmentEncoder` encodes BGR images with PyAV (libx264) and muxes
them into Matroska as a live stream (``live=1``) in which every cluster
starts on a key frame (``dash=1``), with absolute timecodes in milliseconds
since the epoch (what the ``ABSOLUTE`` timecode type of PutMedia expects).
:class:`ClusterSplitter` cuts the muxer's bytes into the stream header
(EBML header, segment start, info and tracks, with the AVCC codec private
data) and whole clusters: each cluster is one fragment, and a new PutMedia
connection starts with the header again.
"""

from __future__ import annotations

import fractions
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from framescope._optional import require

__all__ = ["ClusterSplitter", "Fragment", "FragmentEncoder", "read_element_header"]

EBML_ID, SEGMENT_ID, CLUSTER_ID = 0x1A45DFA3, 0x18538067, 0x1F43B675
TIMECODE_ID, SIMPLE_BLOCK_ID, BLOCK_GROUP_ID = 0xE7, 0xA3, 0xA0


@dataclass(frozen=True, slots=True)
class Fragment:
    """One cluster: its bytes, its timecode (ms), and how many frames it holds."""

    data: bytes
    timecode: int
    frames: int


def read_element_header(data: bytes | bytearray, at: int) -> tuple[int, int | None, int] | None:
    """The EBML element at ``at``: (id, size or None when unknown, header length).

    None when ``data`` does not hold the whole header yet.
    """
    if at >= len(data):
        return None
    first = data[at]
    id_length = 1 + (8 - first.bit_length()) if first else 0
    if not 1 <= id_length <= 4:
        raise ValueError(f"not an EBML element id at byte {at}")
    if at + id_length >= len(data):
        return None
    element = int.from_bytes(data[at : at + id_length], "big")
    marker = data[at + id_length]
    size_length = 1 + (8 - marker.bit_length()) if marker else 0
    if not 1 <= size_length <= 8:
        raise ValueError(f"not an EBML size at byte {at + id_length}")
    end = at + id_length + size_length
    if end > len(data):
        return None
    raw = int.from_bytes(data[at + id_length : end], "big")
    value = raw & ((1 << (7 * size_length)) - 1)
    size = None if value == (1 << (7 * size_length)) - 1 else value
    return element, size, id_length + size_length


def _cluster_facts(cluster: bytes, header_length: int) -> tuple[int, int]:
    """(timecode, frames) of a whole cluster."""
    at, timecode, frames = header_length, 0, 0
    while at < len(cluster):
        found = read_element_header(cluster, at)
        if found is None or found[1] is None:
            break
        element, size, length = found[0], found[1] or 0, found[2]
        if element == TIMECODE_ID:
            timecode = int.from_bytes(cluster[at + length : at + length + size], "big")
        elif element in (SIMPLE_BLOCK_ID, BLOCK_GROUP_ID):
            frames += 1
        at += length + size
    return timecode, frames


class ClusterSplitter:
    """Cuts a live Matroska byte stream into its header and whole clusters.

    ``write`` takes the bytes in any split; ``on_cluster(fragment)`` is called
    with each cluster once all of it has arrived. ``header`` is everything
    before the first cluster (None until the first cluster starts).
    """

    def __init__(self, on_cluster: Callable[[Fragment], None]) -> None:
        self._pending = bytearray()
        self._on_cluster = on_cluster
        self.header: bytes | None = None
        self._in_segment = False
        self._prefix = b""  # the header so far

    def write(self, data: bytes | memoryview) -> None:
        """Take more of the stream."""
        self._pending += data
        while self._step():
            pass

    def _step(self) -> bool:
        pending = self._pending
        found = read_element_header(pending, 0)
        if found is None:
            return False
        element, size, length = found
        if self.header is None:
            return self._step_header(element, size, length)
        if element != CLUSTER_ID:  # cues, tags at the end: not part of any fragment
            if size is None or len(pending) < length + size:
                return False
            del pending[: length + size]
            return True
        if size is None:
            raise ValueError("a cluster of unknown size: the muxer must write live clusters")
        if len(pending) < length + size:
            return False
        cluster = bytes(pending[: length + size])
        del pending[: length + size]
        timecode, frames = _cluster_facts(cluster, length)
        self._on_cluster(Fragment(cluster, timecode, frames))
        return True

    def _step_header(self, element: int, size: int | None, length: int) -> bool:
        pending = self._pending
        if element == CLUSTER_ID:
            self.header = self._prefix
            return True
        if element == SEGMENT_ID and not self._in_segment:
            self._in_segment = True  # step inside: its children follow
            take = length
        elif size is None or len(pending) < length + size:
            return False
        else:
            take = length + size
        self._prefix += bytes(pending[:take])
        del pending[:take]
        return True


class _Sink(io.RawIOBase):
    """The muxer's output: a non-seekable stream into a :class:`ClusterSplitter`."""

    def __init__(self, splitter: ClusterSplitter) -> None:
        self._splitter = splitter

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        view = memoryview(data)  # the splitter copies what it keeps
        self._splitter.write(view)
        return view.nbytes


class FragmentEncoder:
    """Encodes BGR images into KVS fragments (H.264, a key frame every ``gop`` frames).

    Args:
        fps, width, height: the stream's rate and size (frames of another
            size are scaled).
        on_fragment: called with each :class:`Fragment` as it completes.
        start_epoch_ms: the producer's start time (ms since the epoch);
            a frame's timecode is this plus its stream time.
        gop: frames between key frames (each starts a fragment).
        preset, tune, bitrate: libx264 settings.
    """

    def __init__(
        self,
        fps: float,
        width: int,
        height: int,
        on_fragment: Callable[[Fragment], None],
        *,
        start_epoch_ms: int,
        gop: int,
        preset: str | None = "ultrafast",
        tune: str | None = "zerolatency",
        bitrate: int | None = None,
        codec: str = "libx264",
    ) -> None:
        av = require("av", "kvs", "KVSSpyGlass")
        self._av = av
        self.splitter = ClusterSplitter(on_fragment)
        self._container = av.open(
            _Sink(self.splitter), "w", format="matroska", options={"live": "1", "dash": "1"}
        )
        stream = self._container.add_stream(
            codec, rate=fractions.Fraction(fps).limit_denominator(1001)
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        options = {key: value for key, value in (("preset", preset), ("tune", tune)) if value}
        stream.codec_context.options = options
        stream.codec_context.gop_size = gop
        if bitrate is not None:
            stream.codec_context.bit_rate = bitrate
        millisecond = fractions.Fraction(1, 1000)
        stream.codec_context.time_base = millisecond
        stream.time_base = millisecond
        self._stream = stream
        self._start = start_epoch_ms
        self._last_pts = start_epoch_ms - 1
        self.width, self.height = width, height
        self.frames_encoded = 0

    def encode(self, image: Any, stream_time: float) -> None:
        """Encode one image taken ``stream_time`` seconds after the start."""
        frame = self._av.VideoFrame.from_ndarray(image, format="bgr24")
        if (frame.width, frame.height) != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height)
        pts = max(self._start + round(stream_time * 1000), self._last_pts + 1)  # increasing
        frame.pts, frame.time_base = pts, self._stream.time_base
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_encoded += 1

    def close(self) -> None:
        """Flush the encoder; the last fragment is handed on."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

"""When a ``VideoSource``'s frame was captured, as well as its stream can tell.

- RTSP (``rtsp://``, ``rtsps://``): the camera's wall clock from its RTCP
  sender reports. FFmpeg's RTSP demuxer sets ``start_time_realtime`` (PyAV:
  ``container.start_time_realtime``, microseconds since the epoch) when the
  first sender report arrives: the NTP time of the stream's first RTP
  timestamp, the one FFmpeg counts a stream's ``pts`` from. So a frame's
  capture time is ``start_time_realtime + pts * time_base``. FFmpeg exposes
  no later report (for a one-stream session it does not fold them into
  ``pts`` either), so the mapping is the first report's: exact when the
  camera's media clock runs at the rate of its wall clock, off by their
  drift since the first report otherwise (typically a few ms an hour for a
  crystal), and as true as the camera's clock is synchronised (NTP) with
  this machine's. Frames before the first report (a sender sends one within
  a few seconds) are stamped ``received``.
- A file with ``creation_time`` metadata: that time plus the frame's stream
  time since the video's start (clock ``file``): when the recording says the
  frame was taken, whether the file is paced in real time or read as fast as
  possible (a looped file starts again at its creation time).
- Anything else (HLS: FFmpeg's HLS demuxer skips ``EXT-X-PROGRAM-DATE-TIME``
  and exposes nothing of it; RTMP, UDP, a V4L2 camera, a file without
  ``creation_time``): the time the frame was received (clock ``received``),
  never passed off as a capture time.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from framescope.capture import FILE, RECEIVED, RTCP

__all__ = ["CaptureTimes"]

logger = logging.getLogger(__name__)

_RTCP_SCHEMES = ("rtsp://", "rtsps://")


class CaptureTimes:
    """The capture clock of one opened container, and each frame's time on it.

    Args:
        uri: the source's URI (its scheme says whether RTCP can be had).
        container: the opened PyAV container.
        stream: its video stream.
    """

    __slots__ = ("_base", "_offset", "_rtcp", "_time_base", "clock")

    def __init__(self, uri: str, container: Any, stream: Any) -> None:
        self._time_base = float(stream.time_base) if stream.time_base else None
        start = stream.start_time if stream.start_time is not None else 0
        self._offset = start * self._time_base if self._time_base else 0.0
        self._rtcp = uri.lower().startswith(_RTCP_SCHEMES) and self._time_base is not None
        self._base: float | None = None  # wall seconds at pts 0 (RTCP) or at the start (file)
        self.clock = RECEIVED
        if not self._rtcp:
            created = _creation_time(container, stream)
            if created is not None and self._time_base is not None:
                self._base, self.clock = created, FILE

    def check(self, container: Any) -> None:
        """After a packet: take the RTCP mapping once FFmpeg has it (under the source's lock)."""
        if self._rtcp and self._base is None:
            realtime = container.start_time_realtime
            if realtime is not None and realtime > 0:
                self._base, self.clock = realtime / 1e6, RTCP
                self._offset = 0.0  # FFmpeg's mapping is for pts 0

    def capture(self, pts: int | None, received_wall: float) -> tuple[float, str]:
        """A frame's capture time (wall seconds) and its clock; the time received when unknown."""
        base, time_base = self._base, self._time_base
        if base is None or pts is None or time_base is None:
            return received_wall, RECEIVED
        return base + pts * time_base - self._offset, self.clock


def _creation_time(container: Any, stream: Any) -> float | None:
    """The ``creation_time`` metadata of the stream or the container, in epoch seconds."""
    for metadata in (stream.metadata, container.metadata):
        text = metadata.get("creation_time")
        if not text:
            continue
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            logger.info("ignoring a creation_time that is not ISO 8601: %r", text)
            continue
        if when.tzinfo is None:  # FFmpeg writes UTC
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp()
    return None

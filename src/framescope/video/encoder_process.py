"""The encoder process behind :class:`~framescope.video.SpyGlass`: frames in, a stream out.

FFmpeg holds Python's interpreter lock while it connects to a network
target (an RTMP or RTSP handshake), so a slow or silent receiver would freeze
every thread of a process that encodes in a thread. SpyGlass therefore runs
its :class:`~framescope.video.VideoWriter` here, in a child process started
with ``python -m framescope.video.encoder_process`` (never a re-import of the
user's main module), and talks to it through pipes:

- stdin: one JSON line with the writer's settings, then per frame a header
  (``HEADER``: height, width, stream time in seconds) and the BGR pixels;
  the end of stdin closes the stream cleanly;
- stdout: JSON lines, ``{"event": "streaming"}`` after the first frame is
  out, ``{"event": "sent", "count": n}`` now and then, ``{"event": "error",
  "message": ...}`` when it fails, ``{"event": "closed", "count": n}`` at the end.
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from typing import Any, BinaryIO

import av
import numpy

from framescope.video.frame import Frame
from framescope.video.writer import VideoWriter

__all__ = ["HEADER", "main"]

#: Per-frame header: image height and width (uint32) and its stream time (float64 s).
HEADER = struct.Struct("<IId")
_REPORT_EVERY = 15  # frames between "sent" reports


def _say(out: BinaryIO, event: str, **fields: Any) -> None:
    out.write((json.dumps({"event": event, **fields}) + "\n").encode())
    out.flush()


def _read_exactly(source: BinaryIO, size: int) -> bytearray | None:
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        chunk = source.readinto(view[got:])  # type: ignore[attr-defined]
        if not chunk:
            return None
        got += chunk
    return data


def main() -> int:
    """Encode the frames read from stdin to the target in the settings line."""
    source, out = sys.stdin.buffer, sys.stdout.buffer
    settings = json.loads(source.readline() or b"{}")
    writer: Any = None
    try:
        av.logging.set_level(av.logging.ERROR)
        writer = VideoWriter(settings.pop("uri"), **settings)
        while True:
            header = _read_exactly(source, HEADER.size)
            if header is None:
                break  # the parent closed the stream
            height, width, stream_time = HEADER.unpack(header)
            pixels = _read_exactly(source, height * width * 3)
            if pixels is None:
                break
            image = numpy.frombuffer(pixels, numpy.uint8).reshape(height, width, 3)
            writer.write(Frame(image, writer.frames_written, time=stream_time))
            if writer.frames_written == 1:
                _say(out, "streaming")
            elif writer.frames_written % _REPORT_EVERY == 0:
                _say(out, "sent", count=writer.frames_written)
        writer.close()
        _say(out, "closed", count=writer.frames_written)
        return 0
    except Exception as error:
        sent = writer.frames_written if writer is not None else 0
        with contextlib.suppress(OSError):
            _say(out, "error", message=f"{type(error).__name__}: {error}", count=sent)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

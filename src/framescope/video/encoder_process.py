"""The encoder process behind :class:`~framescope.video.SpyGlass`: frames in, a stream out.

FFmpeg holds Python's interpreter lock while it connects to a network
target (an RTMP or RTSP handshake), so a slow or silent receiver would freeze
every thread of a process that encodes in a thread. SpyGlass therefore runs
its :class:`~framescope.video.VideoWriter` here, in a child process started
with ``python -m framescope.video.encoder_process`` (never a re-import of the
user's main module), and talks to it through pipes:

- stdin: one JSON line with the writer's settings (and ``slots``: the
  shared-memory slots frames may come in), then per frame a header
  (:data:`~framescope.video.frame_slots.SLOT_HEADER`: height, width, stream
  time in seconds, slot) and, for slot -1, the BGR pixels; the end of stdin
  closes the stream cleanly;
- stdout: JSON lines, ``{"event": "connecting"}`` once the settings are
  read (PyAV is loaded and the target is being opened), ``{"event":
  "ready"}`` once the output is open (and
  the stream header written: a network receiver has been reached),
  ``{"event": "streaming"}`` after the first frame is out, ``{"event":
  "free", "slot": k, "count": n}`` once a slot's frame is taken (``n``:
  frames sent so far), ``{"event": "sent", "count": n}`` after each later frame
  (a frame that came through the pipe frees no slot),
  ``{"event": "error", "message": ...}`` when it fails, ``{"event":
  "closed", "count": n}`` at the end.

The child is started before its settings are known (during SpyGlass's
warm-up) so that loading PyAV does not delay the first frames: it blocks on
the settings line until the parent writes it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, BinaryIO

import av

from framescope.video.frame import Frame
from framescope.video.frame_slots import incoming_frames
from framescope.video.writer import VideoWriter

__all__ = ["main"]


def _say(out: BinaryIO, event: str, **fields: Any) -> None:
    out.write((json.dumps({"event": event, **fields}) + "\n").encode())
    out.flush()


def main() -> int:
    """Encode the frames read from stdin to the target in the settings line."""
    source, out = sys.stdin.buffer, sys.stdout.buffer
    settings = json.loads(source.readline() or b"{}")
    writer: Any = None

    def free(slot: int) -> None:
        _say(out, "free", slot=slot, count=writer.frames_written)

    frames = incoming_frames(source, settings.pop("slots", None), free)
    _say(out, "connecting")  # the parent's stall watch times the connection from here
    try:
        av.logging.set_level(av.logging.ERROR)
        writer = VideoWriter(settings.pop("uri"), **settings)
        writer.open()
        writer.start()
        _say(out, "ready")
        for image, stream_time in frames:
            writer.write(Frame(image, writer.frames_written, time=stream_time))  # copies it
            if writer.frames_written == 1:
                _say(out, "streaming")
            else:  # a sign of life for the parent's stall watch, also for pipe frames
                _say(out, "sent", count=writer.frames_written)
        writer.close()
        _say(out, "closed", count=writer.frames_written)
        return 0
    except Exception as error:
        sent = writer.frames_written if writer is not None else 0
        with contextlib.suppress(OSError):
            _say(out, "error", message=_reason(error), count=sent)
        return 1
    finally:
        frames.close()


def _reason(error: Exception) -> str:
    """The error in one line: FFmpeg's last log line may go on with a whole SDP offer."""
    first = str(error).strip().split("\n", 1)[0]
    return f"{type(error).__name__}: {first}"


if __name__ == "__main__":
    raise SystemExit(main())

"""The encoder process behind KVSSpyGlass: BGR frames in, KVS fragments out.

Encoding in a thread would make the frame loop wait for Python's
interpreter lock whenever the encoder holds it (put() would take 100 us
instead of a few), so, as SpyGlass does, KVSSpyGlass encodes in a child
process (``python -m framescope.kvs.fragmenter_process``) and talks to it
through pipes:

- stdin: one JSON line with the settings (fps, width, height, gop, preset,
  tune, bitrate, start_epoch_ms, slots), then per frame a
  :data:`~framescope.video.frame_slots.SLOT_HEADER` and, for slot -1, the
  BGR pixels; the end of stdin flushes and exits;
- stdout: messages of a kind byte and a length-prefixed body: ``H`` the
  stream header (once), ``F`` a fragment (timecode and frame count, then the
  cluster), ``S`` a slot whose frame was taken, ``E`` an error text, ``C``
  the frames encoded, at the end.
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from typing import BinaryIO

from framescope.kvs.fragments import Fragment, FragmentEncoder
from framescope.video.frame_slots import incoming_frames

__all__ = ["FRAGMENT_FACTS", "MESSAGE", "SLOT_FREE", "main"]

MESSAGE = struct.Struct("<cI")  # kind, body length
FRAGMENT_FACTS = struct.Struct("<qI")  # timecode (ms), frames
SLOT_FREE = struct.Struct("<i")  # the body of an ``S`` message: a slot the parent may reuse


def _say(out: BinaryIO, kind: bytes, body: bytes) -> None:
    out.write(MESSAGE.pack(kind, len(body)) + body)
    out.flush()


def main() -> int:
    """Encode the frames read from stdin into fragments written to stdout."""
    import av  # noqa: PLC0415 - the child's own import

    source, out = sys.stdin.buffer, sys.stdout.buffer
    settings = json.loads(source.readline() or b"{}")
    encoder: FragmentEncoder | None = None
    sent_header = False
    frames = incoming_frames(
        source, settings.pop("slots", None), lambda slot: _say(out, b"S", SLOT_FREE.pack(slot))
    )

    def on_fragment(fragment: Fragment) -> None:
        nonlocal sent_header
        assert encoder is not None
        if not sent_header and encoder.splitter.header is not None:
            _say(out, b"H", encoder.splitter.header)
            sent_header = True
        _say(out, b"F", FRAGMENT_FACTS.pack(fragment.timecode, fragment.frames) + fragment.data)

    try:
        av.logging.set_level(av.logging.ERROR)
        encoder = FragmentEncoder(
            settings["fps"],
            settings["width"],
            settings["height"],
            on_fragment,
            start_epoch_ms=settings["start_epoch_ms"],
            gop=settings["gop"],
            preset=settings.get("preset"),
            tune=settings.get("tune"),
            bitrate=settings.get("bitrate"),
        )
        for image, stream_time in frames:
            encoder.encode(image, stream_time)  # copies the pixels
        encoder.close()
        _say(out, b"C", str(encoder.frames_encoded).encode())
        return 0
    except Exception as error:
        with contextlib.suppress(OSError):
            _say(out, b"E", f"{type(error).__name__}: {error}".encode())
        return 1
    finally:
        frames.close()


if __name__ == "__main__":
    raise SystemExit(main())

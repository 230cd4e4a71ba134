"""The encoder process behind KVSSpyGlass: BGR frames in, KVS fragments out.

Encoding in a thread would make the frame loop wait for Python's
interpreter lock whenever the encoder holds it (put() would take 100 us
instead of a few), so, as SpyGlass does, KVSSpyGlass encodes in a child
process (``python -m framescope.kvs.fragmenter_process``) and talks to it
through pipes:

- stdin: one JSON line with the settings (fps, width, height, gop, preset,
  tune, bitrate, start_epoch_ms), then per frame ``HEADER`` (height, width,
  stream time in s) and the BGR pixels; the end of stdin flushes and exits;
- stdout: messages of a kind byte and a length-prefixed body: ``H`` the
  stream header (once), ``F`` a fragment (timecode and frame count, then the
  cluster), ``E`` an error text, ``C`` the frames encoded, at the end.
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from typing import BinaryIO

import numpy

from framescope.kvs.fragments import Fragment, FragmentEncoder
from framescope.video.encoder_process import HEADER, _read_exactly

__all__ = ["FRAGMENT_FACTS", "HEADER", "MESSAGE", "main"]

MESSAGE = struct.Struct("<cI")  # kind, body length
FRAGMENT_FACTS = struct.Struct("<qI")  # timecode (ms), frames


def _say(out: BinaryIO, kind: bytes, body: bytes) -> None:
    out.write(MESSAGE.pack(kind, len(body)) + body)
    out.flush()


def _read_into(source: BinaryIO, buffer: bytearray) -> bool:
    """Fill ``buffer`` from ``source``; False when the stream ended first."""
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        chunk = source.readinto(view[got:])  # type: ignore[attr-defined]
        if not chunk:
            return False
        got += chunk
    return True


def main() -> int:
    """Encode the frames read from stdin into fragments written to stdout."""
    import av  # noqa: PLC0415 - the child's own import

    source, out = sys.stdin.buffer, sys.stdout.buffer
    settings = json.loads(source.readline() or b"{}")
    encoder: FragmentEncoder | None = None
    sent_header = False
    pixels = bytearray()

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
        while True:
            header = _read_exactly(source, HEADER.size)
            if header is None:
                break  # the parent closed the stream
            height, width, stream_time = HEADER.unpack(header)
            if len(pixels) != height * width * 3:  # one buffer, reused: the encoder copies
                pixels = bytearray(height * width * 3)
            if not _read_into(source, pixels):
                break
            image = numpy.frombuffer(pixels, numpy.uint8).reshape(height, width, 3)
            encoder.encode(image, stream_time)
        encoder.close()
        _say(out, b"C", str(encoder.frames_encoded).encode())
        return 0
    except Exception as error:
        with contextlib.suppress(OSError):
            _say(out, b"E", f"{type(error).__name__}: {error}".encode())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

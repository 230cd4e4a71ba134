"""The live view's clip files: which file ``/clips/<recorder>/<file>`` may send, and its bytes.

Only a file that the view's latest snapshot lists for one of the view's
own recorders is served: the name in the URL is looked up among those
listed, never joined to a path. One ``Range: bytes=...`` request (what a
browser's ``<video>`` seeks with) is answered with that part of the file;
the bytes are read and sent a chunk at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from framescope.pipeline.model.clips import ClipsSnapshot

__all__ = [
    "CHUNK_BYTES",
    "MP4_TYPE",
    "ByteRange",
    "UnsatisfiableRangeError",
    "byte_range",
    "clip_path",
    "clip_url",
    "file_chunks",
    "requested_clip",
]

MP4_TYPE = "video/mp4"
"""The Content-Type of a clip."""

CHUNK_BYTES = 64 * 1024
"""The most bytes of a clip read (and held) at once while it is sent."""

_PREFIX = "clips"


def clip_url(recorder: str, file: str) -> str:
    """The page-relative address of clip ``file`` of ``recorder`` (each part quoted)."""
    return f"{_PREFIX}/{quote(recorder, safe='')}/{quote(file, safe='')}"


def requested_clip(path: str) -> tuple[str, str] | None:
    """The (recorder, file) a request's path names (``/clips/<recorder>/<file>``), else None."""
    segments = path.split("/")
    if len(segments) != 4 or segments[0] or segments[1] != _PREFIX:
        return None
    recorder, file = unquote(segments[2]), unquote(segments[3])
    return (recorder, file) if recorder and file else None


def _plain_name(file: str) -> bool:
    """Whether ``file`` names a file inside its directory (no folder, no ``..``)."""
    return file not in ("", ".", "..") and "/" not in file and "\\" not in file and "\0" not in file


def clip_path(recorders: Iterable[ClipsSnapshot], recorder: str, file: str) -> Path | None:
    """The path of ``file`` when a recorder called ``recorder`` lists it, else None.

    ``file`` is compared with the names the recorders list; the path is
    their directory and the listed name, so no request chooses a path.
    """
    for snapshot in recorders:
        if snapshot.name != recorder:
            continue
        for clip in snapshot.recent:
            if clip.file == file and _plain_name(clip.file):
                return Path(snapshot.directory) / clip.file
    return None


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The bytes ``start`` to ``end`` (both included) of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header's value."""
        return f"bytes {self.start}-{self.end}/{self.size}"


class UnsatisfiableRangeError(ValueError):
    """A ``Range`` that no byte of the file is in (416)."""


def _digits(text: str) -> bool:
    """Whether ``text`` is empty or a decimal number (ASCII digits only, at most 19 of them)."""
    return not text or (text.isascii() and text.isdigit() and len(text) <= 19)


def byte_range(header: str | None, size: int) -> ByteRange | None:
    """The part of a ``size``-byte file a ``Range`` header asks for; None: the whole file.

    One range is served (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``); a header
    of another unit, of several ranges or one that does not parse is
    ignored (the whole file, as HTTP allows). A range that starts past the
    end raises :class:`UnsatisfiableRangeError`.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first or last) or not (_digits(first) and _digits(last)):
        return None
    if not first:  # the last ``last`` bytes
        if int(last) == 0 or size == 0:
            raise UnsatisfiableRangeError(f"bytes */{size}")
        return ByteRange(max(0, size - int(last)), size - 1, size)
    start = int(first)
    end = size - 1 if not last else int(last)
    if last and end < start:
        return None
    if start >= size:
        raise UnsatisfiableRangeError(f"bytes */{size}")
    return ByteRange(start, min(end, size - 1), size)


def file_chunks(
    file: BinaryIO, start: int, length: int, closing: threading.Event
) -> Iterator[bytes]:
    """``length`` bytes of ``file`` from ``start``, :data:`CHUNK_BYTES` at a time.

    Ends early when ``closing`` is set (the view closes) or the file is shorter.
    """
    file.seek(start)
    left = length
    while left > 0 and not closing.is_set():
        chunk = file.read(min(CHUNK_BYTES, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk

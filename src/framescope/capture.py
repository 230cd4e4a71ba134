"""When a frame was captured, and the stamps that split its age from capture to glass.

A frame of a many-source run (``pipeline.run({"cam1": ..., ...})``) carries a
:class:`Stamps`: when it was captured (a wall-clock time, and which clock said
so: one of :data:`CAPTURE_CLOCKS`) and the monotonic readings taken as it moved
on: received, decoded, into the pipeline, out of it, and on the glass (sent by
``SpyGlass``, written by ``VideoWriter``, shown by the live preview). Each
source of the run folds its frames' stamps into a latency split, which
``snapshot().sources[name].latency`` holds.

The capture clocks, from the truest to the least:

- ``rtcp``: the camera's own wall clock, from an RTSP stream's RTCP sender
  reports (see :class:`~framescope.video.VideoSource`).
- ``program-date-time``: an HLS playlist's ``EXT-X-PROGRAM-DATE-TIME``
  (named for sources that can tell it; FFmpeg's HLS demuxer does not, so
  ``VideoSource`` never gives it).
- ``file``: a file's ``creation_time`` metadata plus the frame's stream time.
- ``generated``: when a synthetic source made the frame.
- ``received``: when the frame was received; the source could not tell when it
  was captured, so the capture part of the split is unknown (not counted).

Only the first output counts as the glass. ``KVSSpyGlass`` takes frames
(they leave the pipeline there) but is not a glass: Kinesis acknowledges
fragments, not frames. A frame sent to another process (a process replica)
arrives there without stamps (:meth:`Stamps.__reduce__`), so its result is
counted as untimed.

Every monotonic stamp of one frame is read from one clock (the ``now`` its
stamps were made with: its source's clock), so the parts of one frame's split
are differences on one clock; only the capture part, ``received - capture``,
compares two wall-clock readings (the camera's and this machine's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "CAPTURE_CLOCKS",
    "FILE",
    "GENERATED",
    "PROGRAM_DATE_TIME",
    "RECEIVED",
    "RTCP",
    "StampSink",
    "Stamps",
    "mark_glass",
    "mark_handed",
    "stamps_of",
]

RTCP = "rtcp"
"""Capture clock: the camera's wall clock, from RTCP sender reports."""
PROGRAM_DATE_TIME = "program-date-time"
"""Capture clock: an HLS playlist's ``EXT-X-PROGRAM-DATE-TIME``."""
FILE = "file"
"""Capture clock: a file's ``creation_time`` plus the frame's stream time."""
GENERATED = "generated"
"""Capture clock: when a synthetic source generated the frame."""
RECEIVED = "received"
"""Capture clock: none known; ``capture_time`` is when the frame was received."""

CAPTURE_CLOCKS: tuple[str, ...] = (RTCP, PROGRAM_DATE_TIME, FILE, GENERATED, RECEIVED)
"""Every capture clock a frame may name, the truest first."""

_UNTIMED_CLOCKS = frozenset({FILE, RECEIVED})  # clocks that do not time the capture part


class StampSink(Protocol):
    """What a frame's stamps report to (its source's latency recorder in a many-source run)."""

    def out(self, stamps: Stamps) -> None:
        """The frame left the pipeline (or was handed to an output first)."""

    def glass(self, stamps: Stamps) -> None:
        """The frame reached the glass: sent, written or shown."""


class Stamps:
    """A frame's capture time and the monotonic readings of its way to the glass.

    Attributes:
        capture_time: when it was captured, in wall-clock seconds since the
            epoch (for ``received``: when it was received).
        capture_clock: which clock said so, one of :data:`CAPTURE_CLOCKS`.
        received_wall: when it was received, in wall-clock seconds (this machine).
        received_ns: when it was received (its source read it: a packet
            demuxed, a frame generated, an item returned by ``next()``).
        decoded_ns: when its picture was ready (decoded and converted).
        in_ns: when it was handed to the pipeline (None before).
        out_ns: when it left the pipeline, or was handed to an output inside
            it, whichever came first (None before).
        glass_ns: when an output sent, wrote or showed it first (None before).
        glass_by: which output that was (``spyglass``, ``writer``, ``preview``).
        now: the monotonic clock (ns) every reading of this frame is taken on.
        sink: where the readings are reported (None: nowhere).
    """

    __slots__ = (
        "capture_clock",
        "capture_time",
        "decoded_ns",
        "glass_by",
        "glass_ns",
        "in_ns",
        "now",
        "out_ns",
        "received_ns",
        "received_wall",
        "sink",
    )

    def __init__(
        self,
        now: Callable[[], int],
        *,
        capture_time: float,
        capture_clock: str,
        received_wall: float,
        received_ns: int,
        decoded_ns: int | None = None,
    ) -> None:
        self.now = now
        self.capture_time = capture_time
        self.capture_clock = capture_clock
        self.received_wall = received_wall
        self.received_ns = received_ns
        self.decoded_ns = received_ns if decoded_ns is None else decoded_ns
        self.in_ns: int | None = None
        self.out_ns: int | None = None
        self.glass_ns: int | None = None
        self.glass_by: str | None = None
        self.sink: StampSink | None = None

    @property
    def capture_ns(self) -> int | None:
        """Captured -> received (ns), where the capture clock times it; else None.

        ``received`` knows no capture; a ``file``'s clock (its creation time
        plus stream time) says when the recording was made, not how long ago
        this frame was taken, so its age on arrival is no part of the split.
        """
        if self.capture_clock in _UNTIMED_CLOCKS:
            return None
        return round((self.received_wall - self.capture_time) * 1e9)

    def mark_in(self) -> None:
        """It is handed to the pipeline now."""
        self.in_ns = self.now()

    def mark_out(self) -> None:
        """It left the pipeline now (unless it was handed to an output before): report it."""
        if self.out_ns is None:
            self.out_ns = self.now()
            if self.sink is not None:
                self.sink.out(self)

    def mark_handed(self) -> None:
        """An output took it now: inside the pipeline (a ``SpyGlass`` stage) this is its way out."""
        if self.out_ns is None and self.in_ns is not None:
            self.out_ns = self.now()
            if self.sink is not None:
                self.sink.out(self)

    def mark_glass(self, by: str) -> None:
        """An output (``by``) sent, wrote or showed it now; only the first one counts."""
        if self.glass_ns is not None:
            return
        self.mark_handed()
        self.glass_ns, self.glass_by = self.now(), by
        if self.sink is not None:
            self.sink.glass(self)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # Another process has other clocks and no way back to the recorder: an
        # item sent there (a process replica) arrives without stamps.
        return _unstamped, ()

    def __repr__(self) -> str:
        return (
            f"Stamps(capture_time={self.capture_time!r}, capture_clock={self.capture_clock!r}, "
            f"received_ns={self.received_ns}, decoded_ns={self.decoded_ns}, in_ns={self.in_ns}, "
            f"out_ns={self.out_ns}, glass_ns={self.glass_ns}, glass_by={self.glass_by!r})"
        )


def _unstamped() -> None:
    return None


def stamps_of(item: Any) -> Stamps | None:
    """The stamps ``item`` carries (a ``Frame``'s or a ``Sourced``'s), or None."""
    stamps = getattr(item, "stamps", None)
    return stamps if isinstance(stamps, Stamps) else None


def mark_handed(item: Any) -> None:
    """Stamp ``item`` as taken by an output now (:meth:`Stamps.mark_handed`), if stamped."""
    stamps = getattr(item, "stamps", None)
    if isinstance(stamps, Stamps):
        stamps.mark_handed()


def mark_glass(item: Any, by: str) -> None:
    """Stamp ``item`` as on the glass now (an output sent, wrote or showed it), if it has stamps."""
    stamps = getattr(item, "stamps", None)
    if isinstance(stamps, Stamps):
        stamps.mark_glass(by)

"""The viewers of a live view's WebRTC video, as data: what each got and how late it saw it.

A browser (or any WHEP player) that plays a preview over WebRTC is a
viewer. Each :class:`ViewerSnapshot` says what it was sent and dropped, and,
where its page reports when it presented each frame (the live page does),
how long frames took from the stage that made them to its screen:
``stage_to_screen``, in seconds, over its recent frames. The browser's
clock is related to this machine's by round trips over the viewer's own
connection; ``clock_offset`` and ``clock_uncertainty`` say how well.
``PipelineSnapshot.viewers`` holds them (a ``LiveView``'s snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framescope._snapshotformat import Fields
from framescope.statsnapshot import StatsSnapshot, read_stats

__all__ = ["ViewerSnapshot", "read_viewers"]


@dataclass(frozen=True, slots=True)
class ViewerSnapshot:
    """One WebRTC viewer of a preview, at one instant.

    Attributes:
        viewer: the viewer's session id (the end of its WHEP resource URL).
        preview: the preview it plays.
        camera: the camera (source name) it chose; None: every frame of the preview.
        codec: the codec it is sent (``H264`` or ``VP8``).
        state: its connection's state (``new``, ``connecting``, ``connected``).
        connected_s: seconds since it asked for the video.
        frames_sent: frames handed to its connection (placeholders included).
        frames_dropped: frames it missed: because it could not keep up (its
            own queue was full, and it waited for a key frame after that), or
            because it joined between key frames; never held up the pipeline.
        placeholder_frames: frames sent that said no frame had come.
        bytes_sent: encoded bytes handed to its connection.
        presented: frames its page reported presented.
        unmatched: reports that matched no frame sent to it (older than the
            frames remembered): counted, not timed.
        stage_to_screen: seconds from the stage's result to the browser's
            presentation of that frame (recent window; all-time count and max).
        clock_offset: this machine's clock minus the browser's, in seconds
            (None: no round trip yet).
        clock_uncertainty: half the round trip of the exchange the offset was
            taken from, in seconds: each latency is known to within it.
        bad_messages: messages from its page that were malformed (ignored).
    """

    viewer: str
    preview: str
    camera: str | None
    codec: str
    state: str
    connected_s: float
    frames_sent: int
    frames_dropped: int
    placeholder_frames: int
    bytes_sent: int
    presented: int
    unmatched: int
    stage_to_screen: StatsSnapshot
    clock_offset: float | None = None
    clock_uncertainty: float | None = None
    bad_messages: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The viewer as a JSON-ready dict; :func:`read_viewers` reads a list of them back."""
        return {
            "viewer": self.viewer,
            "preview": self.preview,
            "camera": self.camera,
            "codec": self.codec,
            "state": self.state,
            "connected_s": self.connected_s,
            "frames_sent": self.frames_sent,
            "frames_dropped": self.frames_dropped,
            "placeholder_frames": self.placeholder_frames,
            "bytes_sent": self.bytes_sent,
            "presented": self.presented,
            "unmatched": self.unmatched,
            "stage_to_screen": self.stage_to_screen.to_dict(),
            "clock_offset": self.clock_offset,
            "clock_uncertainty": self.clock_uncertainty,
            "bad_messages": self.bad_messages,
        }


def _read_viewer(fields: Fields) -> ViewerSnapshot:
    return ViewerSnapshot(
        viewer=fields.text("viewer"),
        preview=fields.text("preview"),
        camera=fields.text("camera", None, or_none=True),
        codec=fields.text("codec"),
        state=fields.text("state"),
        connected_s=fields.number("connected_s", 0.0),
        frames_sent=fields.integer("frames_sent", 0),
        frames_dropped=fields.integer("frames_dropped", 0),
        placeholder_frames=fields.integer("placeholder_frames", 0),
        bytes_sent=fields.integer("bytes_sent", 0),
        presented=fields.integer("presented", 0),
        unmatched=fields.integer("unmatched", 0),
        stage_to_screen=read_stats(fields.child("stage_to_screen")),
        clock_offset=fields.number("clock_offset", None, or_none=True),
        clock_uncertainty=fields.number("clock_uncertainty", None, or_none=True),
        bad_messages=fields.integer("bad_messages", 0),
    )


def read_viewers(fields: Fields, key: str = "viewers") -> tuple[ViewerSnapshot, ...]:
    """The ``viewers`` list of a snapshot's dict (errors name the field's path)."""
    return tuple(
        _read_viewer(Fields(data, f"{fields.at(key)}[{index}]"))
        for index, data in enumerate(fields.items(key, ()))
    )

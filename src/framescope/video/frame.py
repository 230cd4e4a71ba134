"""One decoded video frame, as the video layer hands it to a pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framescope.capture import Stamps

__all__ = ["Frame"]


@dataclass(slots=True)
class Frame:
    """A video frame: the image and where it sits in its stream.

    Attributes:
        image: the pixels, a numpy array (H x W x 3 uint8, BGR by default, so
            OpenCV drawing works on it; in another layout when
            ``pixel_format`` says so).
        index: the frame's number in this source, from 0 (it keeps counting
            across reconnects and loops).
        pts: the presentation timestamp in the stream's time base. Sources
            always set it (:class:`VideoSource` derives one where the stream
            gave none); None only in a frame made by hand without it.
        time: the stream time in seconds. Sources always set it, and it keeps
            rising across loops and reconnects; None only in a frame made by
            hand without it.
        wall_time: when it was read, in seconds since the epoch.
        pixel_format: the FFmpeg name of the image's layout: ``bgr24``, or
            what the source was asked for (a ``VideoSource`` with
            ``pixel_format="native"`` gives the decoder's own, e.g.
            ``yuv420p`` or ``nv12``: an (H * 3/2) x W array of the planes).
        size: (width, height) of the picture, which a 4:2:0 array's shape
            does not say (its sides are also rounded up to even). Sources
            always set it; None in a frame made by hand without it (the
            image's shape says it then).
        source: the name of the source it came from, in a run of many
            sources (``pipeline.run({"cam1": ..., "cam2": ...})`` sets it);
            None otherwise.
        capture_time: when it was captured, in wall-clock seconds since the
            epoch, as well as its source can tell (see ``capture_clock``);
            None in a frame made by hand without it.
        capture_clock: which clock ``capture_time`` is on, one of
            :data:`framescope.capture.CAPTURE_CLOCKS`: ``rtcp`` (the
            camera's clock, from RTSP sender reports), ``program-date-time``
            (HLS), ``file`` (a file's ``creation_time`` plus the stream
            time), ``generated`` (a synthetic source), ``received`` (when it
            was received: no capture time known).
        stamps: the monotonic readings of its way from capture to the glass
            (:class:`~framescope.capture.Stamps`), which a many-source run
            folds into its source's latency split; None where not stamped.
    """

    image: Any
    index: int
    pts: int | None = None
    time: float | None = None
    wall_time: float | None = None
    pixel_format: str = "bgr24"
    size: tuple[int, int] | None = None
    source: str | None = None
    capture_time: float | None = None
    capture_clock: str | None = None
    stamps: Stamps | None = field(default=None, repr=False, compare=False)

    @property
    def width(self) -> int:
        """The picture's width in pixels."""
        if self.size is not None:
            return self.size[0]
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """The picture's height in pixels."""
        if self.size is not None:
            return self.size[1]
        return int(self.image.shape[0])

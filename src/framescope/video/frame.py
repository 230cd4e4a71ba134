"""One decoded video frame, as the video layer hands it to a pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Frame"]


@dataclass(slots=True)
class Frame:
    """A video frame: the image and where it sits in its stream.

    Attributes:
        image: the pixels, a numpy array (H x W x 3 uint8, BGR by default, so
            OpenCV drawing works on it).
        index: the frame's number in this source, from 0 (it keeps counting
            across reconnects and loops).
        pts: the presentation timestamp in the stream's time base. Sources
            always set it (:class:`VideoSource` derives one where the stream
            gave none); None only in a frame made by hand without it.
        time: the stream time in seconds. Sources always set it, and it keeps
            rising across loops and reconnects; None only in a frame made by
            hand without it.
        wall_time: when it was read, in seconds since the epoch.
    """

    image: Any
    index: int
    pts: int | None = None
    time: float | None = None
    wall_time: float | None = None

    @property
    def width(self) -> int:
        """The image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """The image height in pixels."""
        return int(self.image.shape[0])

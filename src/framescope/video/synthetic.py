"""A moving test pattern with the frame number burned in: video without a download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from framescope._optional import require
from framescope._validation import check_int_at_least, check_number, check_positive_int
from framescope.capture import GENERATED, Stamps
from framescope.clock import SYSTEM_CLOCK, Clock, sleep_on
from framescope.video.frame import Frame

__all__ = ["SyntheticSource"]

_np = require("numpy", "video", "the synthetic video source")

# Seven segments (a..g) per digit, drawn as bars on a 5 x 9 grid of cells.
_SEGMENTS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abdeg",
    "3": "abcdg",
    "4": "bcfg",
    "5": "acdfg",
    "6": "acdefg",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
}
# (row0, row1, col0, col1) of each segment, in cells of the 5-wide, 9-high digit.
_BARS = {
    "a": (0, 1, 0, 5),
    "b": (0, 5, 4, 5),
    "c": (4, 9, 4, 5),
    "d": (8, 9, 0, 5),
    "e": (4, 9, 0, 1),
    "f": (0, 5, 0, 1),
    "g": (4, 5, 0, 5),
}
_BAR_COLOURS = (
    (255, 255, 255),
    (0, 255, 255),
    (255, 255, 0),
    (0, 255, 0),
    (255, 0, 255),
    (0, 0, 255),
    (255, 0, 0),
    (0, 0, 0),
)


class SyntheticSource:
    """Frames of a moving test pattern, with the frame number drawn on each.

    Colour bars scroll by one bar width per second, a grey square bounces
    across, and the frame number sits in the top-left corner, so a viewer
    (or a test) can tell frames apart and see dropped or repeated ones.

    Args:
        width: image width in pixels (even, >= 16).
        height: image height in pixels (even, >= 16).
        fps: frames per second of stream time (``Frame.time = index / fps``).
        frames: how many frames before iteration ends (None: endless).
        realtime: pace the frames at ``fps`` on ``clock`` (like a camera).
        clock: the clock that paces (and stamps ``wall_time``, ``capture_time``
            and the frame's :class:`~framescope.capture.Stamps`).

    Each frame's ``capture_time`` is when it was generated (``capture_clock``
    ``generated``), which is also when it counts as received; it is decoded
    once its picture is drawn.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        frames: int | None = None,
        *,
        realtime: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.width = _even_size(width, "width")
        self.height = _even_size(height, "height")
        self.fps = check_number(fps, "fps", positive=True)
        self.frames = None if frames is None else check_positive_int(frames, "frames")
        self.realtime = bool(realtime)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._background = _bars(self.width, self.height)

    @property
    def duration(self) -> float | None:
        """Seconds of stream time (None when endless)."""
        return None if self.frames is None else self.frames / self.fps

    def image(self, index: int) -> Any:
        """The pattern of frame ``index`` (a new H x W x 3 uint8 BGR array)."""
        shift = round(index / self.fps * self.width / len(_BAR_COLOURS)) % self.width
        image = _np.roll(self._background, -shift, axis=1)
        side = max(4, self.height // 6)
        span_x, span_y = self.width - side, self.height - side
        x = _bounce(index * 4, span_x)
        y = _bounce(index * 3, span_y)
        image[y : y + side, x : x + side] = 128
        draw_number(image, index, cell=max(1, self.height // 60))
        return image

    def __iter__(self) -> Iterator[Frame]:
        now = self._clock.monotonic_ns
        start = now()
        index = 0
        while self.frames is None or index < self.frames:
            if self.realtime:
                due = start + round(index / self.fps * 1e9)
                delay = (due - now()) / 1e9
                if delay > 0:
                    sleep_on(self._clock, delay)
            generated = now()
            wall = self._clock.wall().timestamp()
            image = self.image(index)
            stamps = Stamps(
                now,
                capture_time=wall,
                capture_clock=GENERATED,
                received_wall=wall,
                received_ns=generated,
                decoded_ns=now(),
            )
            yield Frame(
                image,
                index,
                pts=index,
                time=index / self.fps,
                wall_time=wall,
                capture_time=wall,
                capture_clock=GENERATED,
                stamps=stamps,
            )
            index += 1

    def __repr__(self) -> str:
        return (
            f"SyntheticSource({self.width}x{self.height}, fps={self.fps:g}, frames={self.frames})"
        )


def _even_size(value: object, name: str) -> int:
    size = check_int_at_least(value, name, 16)
    assert size is not None
    if size % 2:
        raise ValueError(f"{name} must be even (4:2:0 video), got {size}")
    return size


def _bars(width: int, height: int) -> Any:
    image = _np.empty((height, width, 3), _np.uint8)
    edges = _np.linspace(0, width, len(_BAR_COLOURS) + 1).astype(int)
    for (b, g, r), start, stop in zip(_BAR_COLOURS, edges[:-1], edges[1:], strict=True):
        image[:, start:stop] = (b, g, r)
    return image


def _bounce(position: int, span: int) -> int:
    if span <= 0:
        return 0
    position %= 2 * span
    return position if position <= span else 2 * span - position


def draw_number(image: Any, number: int, *, cell: int = 4, x: int = 4, y: int = 4) -> None:
    """Draw ``number`` in white seven-segment digits on a black box, in place."""
    text = str(number)
    digit_w, digit_h, gap = 5 * cell, 9 * cell, 2 * cell
    box_w = len(text) * (digit_w + gap) + gap
    box_h = digit_h + 2 * gap
    image[y : y + box_h, x : x + box_w] = 0
    for position, char in enumerate(text):
        left = x + gap + position * (digit_w + gap)
        top = y + gap
        for segment in _SEGMENTS[char]:
            r0, r1, c0, c1 = _BARS[segment]
            image[top + r0 * cell : top + r1 * cell, left + c0 * cell : left + c1 * cell] = 255

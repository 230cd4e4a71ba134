"""The picture a live video shows while its stage sends none: grey, with a line of text.

A WebRTC player shows its last picture for ever when frames stop; the live
view sends this instead (``NO FRAME SINCE 12:03:07 UTC (4 S)``), so a viewer
sees that the stage stopped, and since when. The text is drawn with a small
built-in 5 x 7 pixel font (upper-case letters, digits, ``: . ( ) -``), so it
needs NumPy only: no OpenCV, Pillow or font file.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["placeholder_image", "placeholder_text"]

# Each glyph: seven rows of five pixels, the leftmost pixel the highest bit.
_FONT: dict[str, tuple[int, ...]] = {
    " ": (0, 0, 0, 0, 0, 0, 0),
    "A": (14, 17, 17, 31, 17, 17, 17),
    "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (30, 17, 17, 17, 17, 17, 30),
    "E": (31, 16, 16, 30, 16, 16, 31),
    "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15),
    "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14),
    "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17),
    "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17),
    "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13),
    "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30),
    "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14),
    "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10),
    "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 10, 4, 4, 4, 4),
    "Z": (31, 1, 2, 4, 8, 16, 31),
    "0": (14, 17, 19, 21, 25, 17, 14),
    "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2),
    "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14),
    "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12),
    ":": (0, 12, 12, 0, 12, 12, 0),
    ".": (0, 0, 0, 0, 0, 12, 12),
    "(": (2, 4, 8, 8, 8, 4, 2),
    ")": (8, 4, 2, 2, 2, 4, 8),
    "-": (0, 0, 0, 31, 0, 0, 0),
}

BACKGROUND = 64
"""The placeholder's grey (BGR 64, 64, 64): dark, unlike the start of a test pattern."""


def placeholder_text(since: datetime.datetime | None, now: datetime.datetime) -> str:
    """What the placeholder says: since when no frame came, or that none came yet."""
    if since is None:
        return "WAITING FOR THE FIRST FRAME"
    gone = max(0, int((now - since).total_seconds()))
    return f"NO FRAME SINCE {since.astimezone(datetime.timezone.utc):%H:%M:%S} UTC ({gone} S)"


def placeholder_image(width: int, height: int, text: str) -> Any:
    """A ``height`` x ``width`` BGR grey picture with ``text`` centred in white."""
    import numpy as np  # noqa: PLC0415 - loaded with the video, never by the core

    image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    text = "".join(c if c in _FONT else " " for c in text.upper())
    scale = max(1, min(width // (6 * max(1, len(text)) + 6), height // 20))
    glyphs = np.zeros((7, 6 * len(text)), dtype=bool)
    for index, char in enumerate(text):
        for row, bits in enumerate(_FONT[char]):
            for column in range(5):
                glyphs[row, 6 * index + column] = bool(bits >> (4 - column) & 1)
    mask = glyphs.repeat(scale, axis=0).repeat(scale, axis=1)
    mask = mask[: max(0, height), : max(0, width)]
    top = max(0, (height - mask.shape[0]) // 2)
    left = max(0, (width - mask.shape[1]) // 2)
    region = image[top : top + mask.shape[0], left : left + mask.shape[1]]
    region[mask[: region.shape[0], : region.shape[1]]] = 255
    return image

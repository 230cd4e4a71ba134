"""Colours for annotations: RGB with alpha, parsed from the forms people write."""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from framescope._validation import check_int_between, check_number

__all__ = ["ID_PALETTE", "Color", "ColorMap", "ColorValueError", "HTMLColors"]


class ColorValueError(ValueError, TypeError):
    """A colour that cannot be made: both a ValueError (as Backpack raised) and a TypeError."""


def _channel(value: Any, name: str) -> int:
    try:
        return check_int_between(value, f"Color {name}", 0, 255)
    except (TypeError, ValueError) as error:
        raise ColorValueError(str(error)) from None


def _alpha(value: Any) -> float:
    try:
        return check_number(value, "Color alpha", low=0.0, high=1.0)
    except (TypeError, ValueError) as error:
        raise ColorValueError(str(error)) from None


@dataclass(frozen=True)
class Color:
    """An RGB colour, channels 0-255, with ``alpha`` from 0 (invisible) to 1 (opaque)."""

    r: int
    g: int
    b: int
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _channel(self.r, "r")
        _channel(self.g, "g")
        _channel(self.b, "b")
        object.__setattr__(self, "alpha", _alpha(self.alpha))

    @classmethod
    def from_hex(cls, value: str | int) -> Color:
        """From ``"#ff8800"``, ``"ff8800"``, ``"#f80"`` or an int ``0xff8800``."""
        if isinstance(value, bool):
            raise ColorValueError(f"a hex colour must be a string or an int, got {value!r}")
        if isinstance(value, int):
            if not 0 <= value <= 0xFFFFFF:
                raise ColorValueError(f"a hex colour int must be 0 to 0xFFFFFF, got {value:#x}")
            return cls((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)
        if not isinstance(value, str):
            raise ColorValueError(f"a hex colour must be a string or an int, got {value!r}")
        digits = value.strip().removeprefix("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        try:
            if len(digits) != 6:
                raise ValueError
            number = int(digits, 16)
        except ValueError:
            raise ColorValueError(
                f"not a hex colour: {value!r} (use '#rrggbb' or '#rgb')"
            ) from None
        return cls.from_hex(number)

    @classmethod
    def from_value(cls, value: Any) -> Color:
        """From a Color, a hex string or int, an ``(r, g, b[, alpha])`` sequence, or a
        mapping with ``r``, ``g``, ``b`` and optionally ``alpha`` (or ``a``)."""
        if isinstance(value, Color):
            return value
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return cls.from_hex(value)
        if isinstance(value, Mapping):
            missing = [k for k in ("r", "g", "b") if k not in value]
            if missing:
                raise ColorValueError(f"a colour mapping needs r, g and b; {missing} missing")
            alpha = value.get("alpha", value.get("a", 1.0))
            return cls(value["r"], value["g"], value["b"], alpha)
        if (
            isinstance(value, Sequence)
            and not isinstance(value, (bytes, bytearray))  # b"abc" is not (97, 98, 99)
            and len(value) in (3, 4)
        ):
            return cls(*value)
        raise ColorValueError(
            f"cannot make a Color of {value!r}: give a Color, '#rrggbb', an int, "
            "(r, g, b[, alpha]) or {'r', 'g', 'b'[, 'alpha']}"
        )

    @classmethod
    def from_id(cls, identifier: Any, salt: str = "salt") -> Color:
        """A bright colour for a class or track id, the same one every time.

        Integer ids cycle through :data:`ID_PALETTE` (16 saturated colours that
        differ from their neighbours), so ids 0 to 15 all get different
        colours (numpy integers too); a string or any other id, or another
        ``salt``, picks a palette colour by a hash. Every colour reads on dark
        and light frames alike.
        """
        if salt == "salt" and not isinstance(identifier, str):
            try:  # an int, or an integer of another kind (numpy's class ids)
                return ID_PALETTE[operator.index(identifier) % len(ID_PALETTE)]
            except TypeError:
                pass  # anything else is hashed, as Backpack did
        digest = hashlib.md5(f"{salt}{identifier}".encode(), usedforsecurity=False).digest()
        return ID_PALETTE[int.from_bytes(digest[:4], "big") % len(ID_PALETTE)]

    @property
    def luminance(self) -> float:
        """Relative luminance (WCAG 2), 0 for black to 1 for white."""

        def linear(channel: int) -> float:
            value = channel / 255
            return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

        return 0.2126 * linear(self.r) + 0.7152 * linear(self.g) + 0.0722 * linear(self.b)

    def text_color(self) -> Color:
        """Opaque black or white, whichever contrasts more with this colour (text on it)."""
        return _text_color(self.r, self.g, self.b)

    def brightness(self, factor: float) -> Color:
        """This colour scaled by ``factor`` (> 1 brighter, < 1 darker), clipped to 255."""
        factor = check_number(factor, "brightness factor", low=0.0)

        def scale(channel: int) -> int:
            return min(255, round(channel * factor))

        return Color(scale(self.r), scale(self.g), scale(self.b), self.alpha)

    def with_alpha(self, alpha: float) -> Color:
        """This colour with another alpha."""
        return Color(self.r, self.g, self.b, alpha)

    @property
    def hex(self) -> str:
        """``"#rrggbb"``."""
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"

    @property
    def bgr(self) -> tuple[int, int, int]:
        """(b, g, r), the channel order of OpenCV images."""
        return self.b, self.g, self.r

    @property
    def rgb(self) -> tuple[int, int, int]:
        """(r, g, b)."""
        return self.r, self.g, self.b


_WHITE = Color(255, 255, 255)
_BLACK = Color(0, 0, 0)


@functools.lru_cache(maxsize=1024)
def _text_color(r: int, g: int, b: int) -> Color:
    lum = Color(r, g, b).luminance
    # WCAG contrast ratios against white (1.05 / (L + 0.05)) and black ((L + 0.05) / 0.05).
    return _WHITE if 1.05 / (lum + 0.05) >= (lum + 0.05) / 0.05 else _BLACK


ID_PALETTE: tuple[Color, ...] = tuple(
    Color.from_hex(value)
    for value in (
        "#ff3838",  # red
        "#2ecc40",  # green
        "#1e90ff",  # blue
        "#ffdc00",  # yellow
        "#ff00c8",  # magenta
        "#00e5ff",  # cyan
        "#ff851b",  # orange
        "#a25cff",  # violet
        "#7cfc00",  # lime
        "#ff6f91",  # pink
        "#00c896",  # teal
        "#ffb21d",  # amber
        "#5c7cff",  # periwinkle
        "#d6ff3d",  # chartreuse
        "#ff9a70",  # peach
        "#3de0c8",  # turquoise
    )
)
"""The colours :meth:`Color.from_id` gives, in id order: saturated and bright."""


class ColorMap:
    """A named palette; subclasses fill :attr:`colors`."""

    colors: ClassVar[Mapping[str, Color]] = {}

    @classmethod
    def from_name(cls, name: str) -> Color:
        """The colour called ``name`` (case-insensitive); KeyError names the choices."""
        try:
            return cls.colors[name.lower()]
        except KeyError:
            raise KeyError(
                f"no colour called {name!r} in {cls.__name__}; choose from {', '.join(cls.colors)}"
            ) from None

    @classmethod
    def as_list(cls) -> list[Color]:
        """The palette's colours in order."""
        return list(cls.colors.values())

    @classmethod
    def color_from_id(cls, identifier: int) -> Color:
        """The palette's colour for an integer id (cycling through the palette)."""
        colors = cls.as_list()
        return colors[identifier % len(colors)]


class HTMLColors(ColorMap):
    """The 16 basic HTML colours, with their standard values."""

    WHITE = Color(255, 255, 255)
    SILVER = Color(192, 192, 192)
    GRAY = Color(128, 128, 128)
    BLACK = Color(0, 0, 0)
    RED = Color(255, 0, 0)
    MAROON = Color(128, 0, 0)
    YELLOW = Color(255, 255, 0)
    OLIVE = Color(128, 128, 0)
    LIME = Color(0, 255, 0)
    GREEN = Color(0, 128, 0)
    AQUA = Color(0, 255, 255)
    TEAL = Color(0, 128, 128)
    BLUE = Color(0, 0, 255)
    NAVY = Color(0, 0, 128)
    FUCHSIA = Color(255, 0, 255)
    PURPLE = Color(128, 0, 128)

    colors: ClassVar[Mapping[str, Color]] = {
        "white": WHITE,
        "silver": SILVER,
        "gray": GRAY,
        "black": BLACK,
        "red": RED,
        "maroon": MAROON,
        "yellow": YELLOW,
        "olive": OLIVE,
        "lime": LIME,
        "green": GREEN,
        "aqua": AQUA,
        "teal": TEAL,
        "blue": BLUE,
        "navy": NAVY,
        "fuchsia": FUCHSIA,
        "purple": PURPLE,
    }

"""What can be drawn: frozen descriptions of labels, rectangles, lines, markers and more.

Annotations only describe; a driver draws them. Points are normalised image
coordinates (0-1); a point outside is clipped when drawn, not an error.
Colours may be given as anything :meth:`Color.from_value` accepts.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from framescope._validation import check_int_at_least, check_number
from framescope.annotation.color import Color
from framescope.annotation.geometry import Line, Point, PolyLine, Rectangle

__all__ = [
    "Annotation",
    "BoundingBoxAnnotation",
    "LabelAnnotation",
    "LineAnnotation",
    "MarkerAnnotation",
    "PolyLineAnnotation",
    "RectAnnotation",
    "TimestampAnnotation",
]


def _color(value: Any, name: str = "color") -> Color | None:
    if value is None:
        return None
    try:
        return Color.from_value(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name}: {error}") from None


MAX_SIZE = 100.0
"""The largest ``size`` of a label or marker (1.0 is the usual size; 40 fills a frame)."""

MAX_THICKNESS = 1000
"""The thickest line in pixels (OpenCV draws at most 32767; more would only fill the frame)."""


def _positive(value: Any, name: str) -> float:
    number = check_number(value, name, positive=True)
    if number > MAX_SIZE:
        raise ValueError(f"{name} must be a positive number up to {MAX_SIZE:g}, got {value!r}")
    return number


class Annotation:
    """Base class of everything a driver can draw."""

    __slots__ = ()


class HorizontalAnchor(enum.Enum):
    """Which point of a label sits at its ``point`` horizontally."""

    LEFT = 1
    CENTER = 2
    RIGHT = 3


class VerticalAnchor(enum.Enum):
    """Which point of a label sits at its ``point`` vertically."""

    TOP = 1
    CENTER = 2
    BASELINE = 3
    BOTTOM = 4


# Aliases for annotations inside LabelAnnotation, whose class body shadows the names.
_Horizontal: TypeAlias = HorizontalAnchor
_Vertical: TypeAlias = VerticalAnchor


@dataclass(frozen=True)
class LabelAnnotation(Annotation):
    """Text at ``point``; the anchors say which corner/edge of the text sits there.

    ``size`` scales the text (1.0: a line of text is about 1/40 of the image height).
    ``background`` (optional) fills a box behind the text, a few pixels larger
    than it; the anchors then place that box's edge on ``point``.
    """

    HorizontalAnchor: ClassVar[type[_Horizontal]] = HorizontalAnchor
    VerticalAnchor: ClassVar[type[_Vertical]] = VerticalAnchor

    point: Point
    text: str
    color: Color | None = None
    horizontal_anchor: _Horizontal = _Horizontal.LEFT
    vertical_anchor: _Vertical = _Vertical.BOTTOM
    size: float = 1.0
    background: Color | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", Point.from_value(self.point, "point"))
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a string, got {type(self.text).__name__}")
        object.__setattr__(self, "color", _color(self.color))
        object.__setattr__(self, "background", _color(self.background, "background"))
        if not isinstance(self.horizontal_anchor, HorizontalAnchor):
            raise TypeError(
                f"horizontal_anchor must be a LabelAnnotation.HorizontalAnchor, "
                f"got {self.horizontal_anchor!r}"
            )
        if not isinstance(self.vertical_anchor, VerticalAnchor):
            raise TypeError(
                f"vertical_anchor must be a LabelAnnotation.VerticalAnchor, "
                f"got {self.vertical_anchor!r}"
            )
        _positive(self.size, "size")


@dataclass(frozen=True, init=False)
class RectAnnotation(Annotation):
    """A rectangle outline; give ``rect=`` or the two corners ``point1=`` and ``point2=``.

    ``fill_color`` (optional) fills it first; ``thickness`` is in pixels (None:
    grows with the image, see :meth:`AnnotationDriverBase.line_width`).
    """

    rect: Rectangle
    color: Color | None = None
    thickness: int | None = None
    fill_color: Color | None = None

    def __init__(
        self,
        rect: Rectangle | None = None,
        color: Any = None,
        *,
        point1: Any = None,
        point2: Any = None,
        thickness: int | None = None,
        fill_color: Any = None,
    ) -> None:
        if rect is not None and (point1 is not None or point2 is not None):
            raise TypeError("RectAnnotation takes rect= or point1=/point2=, not both")
        if rect is None:
            if point1 is None or point2 is None:
                raise TypeError("RectAnnotation needs rect= or both point1= and point2=")
            rect = Rectangle(Point.from_value(point1, "point1"), Point.from_value(point2, "point2"))
        object.__setattr__(self, "rect", Rectangle.from_value(rect, "rect"))
        object.__setattr__(self, "color", _color(color))
        object.__setattr__(self, "thickness", _thickness(thickness))
        object.__setattr__(self, "fill_color", _color(fill_color, "fill_color"))

    @property
    def point1(self) -> Point:
        """The first corner as given."""
        return self.rect.pt1

    @property
    def point2(self) -> Point:
        """The second corner as given."""
        return self.rect.pt2


def _thickness(value: Any) -> int | None:
    if value is None:
        return None
    check_int_at_least(value, "thickness", 1, maximum=MAX_THICKNESS)
    return int(value)


@dataclass(frozen=True)
class LineAnnotation(Annotation):
    """A line segment; ``thickness`` in pixels (None: grows with the image)."""

    line: Line
    color: Color | None = None
    thickness: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "line", Line.from_value(self.line, "line"))
        object.__setattr__(self, "color", _color(self.color))
        _thickness(self.thickness)


class MarkerStyle(enum.Enum):
    """The shapes a marker can take."""

    CROSS = 1
    TILTED_CROSS = 2
    STAR = 3
    DIAMOND = 4
    SQUARE = 5
    TRIANGLE_UP = 6
    TRIANGLE_DOWN = 7


_Style: TypeAlias = MarkerStyle


@dataclass(frozen=True)
class MarkerAnnotation(Annotation):
    """A small marker at ``point``, drawn in the named ``style``; ``size`` is relative."""

    Style: ClassVar[type[_Style]] = MarkerStyle

    point: Point
    style: _Style = _Style.CROSS
    color: Color | None = None
    size: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", Point.from_value(self.point, "point"))
        if not isinstance(self.style, MarkerStyle):
            raise TypeError(f"style must be a MarkerAnnotation.Style, got {self.style!r}")
        object.__setattr__(self, "color", _color(self.color))
        _positive(self.size, "size")


@dataclass(frozen=True)
class PolyLineAnnotation(Annotation):
    """A polyline or polygon outline, optionally filled with ``fill_color``.

    ``thickness`` is in pixels (None: grows with the image).
    """

    polyline: PolyLine
    thickness: int | None = None
    color: Color | None = None
    fill_color: Color | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "polyline", PolyLine.from_value(self.polyline, name="polyline"))
        _thickness(self.thickness)
        object.__setattr__(self, "color", _color(self.color))
        object.__setattr__(self, "fill_color", _color(self.fill_color, "fill_color"))


_TOP_LEFT = Point(0.02, 0.04)


def _local_now() -> datetime.datetime:
    return datetime.datetime.now().astimezone()


@dataclass(frozen=True, init=False)
class TimestampAnnotation(LabelAnnotation):
    """The time as ``YYYY-MM-DD HH:MM:SS`` at ``point`` (default: top-left corner).

    ``timestamp`` defaults to the local time now.
    """

    timestamp: datetime.datetime = field(default_factory=_local_now)

    def __init__(
        self,
        timestamp: datetime.datetime | None = None,
        point: Any = _TOP_LEFT,
        color: Any = None,
        size: float = 1.0,
        *,
        background: Any = None,
    ) -> None:
        if timestamp is None:
            timestamp = _local_now()
        if not isinstance(timestamp, datetime.datetime):
            raise TypeError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
        object.__setattr__(self, "timestamp", timestamp)
        super().__init__(
            point=point,
            text=timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            color=color,
            size=size,
            background=background,
        )


@dataclass(frozen=True)
class BoundingBoxAnnotation(Annotation):
    """A detection box: a rectangle with an optional label above and below it.

    Drivers draw each label on a filled box in ``color`` with black or white
    text (whichever contrasts more), outside the rectangle, or just inside it
    where outside would leave the image. Without a colour the box is white.
    """

    rectangle: Rectangle
    top_label: str | None = None
    bottom_label: str | None = None
    color: Color | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rectangle", Rectangle.from_value(self.rectangle, "rectangle"))
        for name in ("top_label", "bottom_label"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
        object.__setattr__(self, "color", _color(self.color))

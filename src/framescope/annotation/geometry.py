"""2D geometry in normalised image coordinates: points, lines, rectangles, polylines.

Coordinates are floats; (0, 0) is the top-left corner of the image and (1, 1)
the bottom-right one. Every constructor rejects NaN and infinite values, so a
bad detection fails where it is made, not deep inside a drawing call.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from typing import Any, ClassVar, TypeAlias

from framescope._validation import check_number

__all__ = ["Intersection", "Line", "Point", "PolyLine", "Rectangle"]


def _coordinate(value: Any, name: str) -> float:
    number = check_number(value, name)
    return number


@dataclass(frozen=True)
class Point:
    """A point (or a 2D vector) with ``x`` and ``y`` coordinates.

    Points add and subtract as vectors, multiply by a number, unpack as
    ``x, y = point`` and convert to pixels with :meth:`to_pixels`.
    """

    x: float
    y: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _coordinate(self.x, "Point x"))
        object.__setattr__(self, "y", _coordinate(self.y, "Point y"))

    def __add__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        return Point(self.x + other.x, self.y + other.y)

    def __sub__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        return Point(self.x - other.x, self.y - other.y)

    def __mul__(self, factor: float) -> Point:
        if isinstance(factor, bool) or not isinstance(factor, Real):
            return NotImplemented
        return Point(self.x * float(factor), self.y * float(factor))

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Point:
        if isinstance(divisor, bool) or not isinstance(divisor, Real):
            return NotImplemented
        return Point(self.x / float(divisor), self.y / float(divisor))

    def __neg__(self) -> Point:
        return Point(-self.x, -self.y)

    def __iter__(self) -> Iterator[float]:
        yield self.x
        yield self.y

    def __getitem__(self, index: int) -> float:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"Point indices must be integers, got {type(index).__name__}")
        if index in (0, -2):
            return self.x
        if index in (1, -1):
            return self.y
        raise IndexError(f"Point index must be 0 or 1, got {index!r}")

    def __len__(self) -> int:
        return 2

    def distance(self, other: Point) -> float:
        """Euclidean distance to ``other``."""
        return math.hypot(self.x - other.x, self.y - other.y)

    def clipped(self) -> Point:
        """This point moved into the unit square [0, 1] x [0, 1]."""
        return Point(min(max(self.x, 0.0), 1.0), min(max(self.y, 0.0), 1.0))

    def to_pixels(self, width: int, height: int) -> tuple[int, int]:
        """Pixel coordinates in a ``width`` x ``height`` image, clipped to the image."""
        x = min(max(self.x, 0.0), 1.0) * width
        y = min(max(self.y, 0.0), 1.0) * height
        return min(int(x), width - 1), min(int(y), height - 1)

    @staticmethod
    def ccw(pt1: Point, pt2: Point, pt3: Point) -> bool:
        """True when ``pt1 -> pt2 -> pt3`` turns counter-clockwise (or is collinear)."""
        d21, d31 = pt2 - pt1, pt3 - pt1
        return d21.x * d31.y >= d31.x * d21.y

    @classmethod
    def from_value(cls, value: Any, name: str = "") -> Point:
        """A Point from a Point, an ``(x, y)`` sequence or a ``{"x": .., "y": ..}`` mapping.

        ``name``: the argument it was given as, named in the error.
        """
        if isinstance(value, Point):
            return value
        if isinstance(value, Mapping) and "x" in value and "y" in value:
            return cls(value["x"], value["y"])
        if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
            return cls(value[0], value[1])
        raise ValueError(
            f"{_named(name)}cannot make a Point of {value!r}: give (x, y), {{'x', 'y'}} or a Point"
        )


def _named(name: str) -> str:
    return f"{name}: " if name else ""


def _two_points(value: Any, kind: str, name: str = "") -> tuple[Point, Point]:
    """Two points from a pair of point values or a ``{"pt1", "pt2"}`` mapping."""
    if isinstance(value, Mapping) and "pt1" in value and "pt2" in value:
        return Point.from_value(value["pt1"]), Point.from_value(value["pt2"])
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return Point.from_value(value[0]), Point.from_value(value[1])
    raise ValueError(f"{_named(name)}cannot make a {kind} of {value!r}: give two points")


def _pair_item(owner: str, first: Any, second: Any, index: Any) -> Any:
    """``first`` or ``second`` by index 0/1 (or -2/-1), as Backpack's ``[]`` gives them."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"{owner} indices must be integers, got {type(index).__name__}")
    if index in (0, -2):
        return first
    if index in (1, -1):
        return second
    raise IndexError(f"{owner} index must be 0 or 1, got {index!r}")


class Intersection(enum.Enum):
    """How a segment crosses another: from its LEFT, from its RIGHT, or NONE (falsy)."""

    LEFT = -1
    NONE = 0
    RIGHT = 1

    def __bool__(self) -> bool:
        return bool(self.value)


_Crossing: TypeAlias = Intersection  # the name Line's methods annotate with


@dataclass(frozen=True)
class Line:
    """A line segment from ``pt1`` to ``pt2``."""

    pt1: Point
    pt2: Point
    Intersection: ClassVar[type[Intersection]] = Intersection

    def __post_init__(self) -> None:
        object.__setattr__(self, "pt1", Point.from_value(self.pt1, "pt1"))
        object.__setattr__(self, "pt2", Point.from_value(self.pt2, "pt2"))

    @property
    def length(self) -> float:
        """The segment's length."""
        return self.pt1.distance(self.pt2)

    def intersects(self, other: Line) -> _Crossing:
        """How ``other`` crosses this segment: ``Line.Intersection.LEFT``, ``RIGHT`` or ``NONE``.

        Truthy when they properly cross. Looking from ``pt1`` to ``pt2`` (in
        image coordinates, y down), ``other`` crosses to the LEFT when it starts
        on the left side, as Backpack's line-crossing counters read it.
        """
        crosses = Point.ccw(self.pt1, other.pt1, other.pt2) != Point.ccw(
            self.pt2, other.pt1, other.pt2
        ) and Point.ccw(self.pt1, self.pt2, other.pt1) != Point.ccw(self.pt1, self.pt2, other.pt2)
        if not crosses:
            return Intersection.NONE
        return Intersection.LEFT if Point.ccw(self.pt1, self.pt2, other.pt1) else Intersection.RIGHT

    def __iter__(self) -> Iterator[Point]:
        yield self.pt1
        yield self.pt2

    def __getitem__(self, index: int) -> Point:
        result: Point = _pair_item("Line", self.pt1, self.pt2, index)
        return result

    @classmethod
    def from_value(cls, value: Any, name: str = "") -> Line:
        """A Line from a Line, a pair of points or a ``{"pt1", "pt2"}`` mapping.

        ``name``: the argument it was given as, named in the error.
        """
        if isinstance(value, Line):
            return value
        return cls(*_two_points(value, "Line", name))


@dataclass(frozen=True)
class Rectangle:
    """An axis-aligned rectangle given by any two opposite corners.

    ``pt_min`` is the corner with the smallest coordinates (top-left in image
    coordinates) and ``pt_max`` the one with the largest.
    """

    pt1: Point
    pt2: Point
    pt_min: Point = field(init=False, repr=False)
    pt_max: Point = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pt1, pt2 = Point.from_value(self.pt1, "pt1"), Point.from_value(self.pt2, "pt2")
        object.__setattr__(self, "pt1", pt1)
        object.__setattr__(self, "pt2", pt2)
        object.__setattr__(self, "pt_min", Point(min(pt1.x, pt2.x), min(pt1.y, pt2.y)))
        object.__setattr__(self, "pt_max", Point(max(pt1.x, pt2.x), max(pt1.y, pt2.y)))

    @classmethod
    def from_tlbr(cls, tlbr: Sequence[float] | Any) -> Rectangle:
        """From ``(top, left, bottom, right)``: a sequence or a numpy array."""
        top, left, bottom, right = _four(tlbr, "tlbr")
        return cls(Point(left, top), Point(right, bottom))

    @classmethod
    def from_tlhw(cls, tlhw: Sequence[float] | Any) -> Rectangle:
        """From ``(top, left, height, width)``: a sequence or a numpy array."""
        top, left, height, width = _four(tlhw, "tlhw")
        return cls(Point(left, top), Point(left + width, top + height))

    @classmethod
    def from_value(cls, value: Any, name: str = "") -> Rectangle:
        """A Rectangle from a Rectangle, a pair of points or a ``{"pt1", "pt2"}`` mapping.

        ``name``: the argument it was given as, named in the error.
        """
        if isinstance(value, Rectangle):
            return value
        return cls(*_two_points(value, "Rectangle", name))

    @property
    def top(self) -> float:
        """The top edge (smallest y)."""
        return self.pt_min.y

    @property
    def left(self) -> float:
        """The left edge (smallest x)."""
        return self.pt_min.x

    @property
    def bottom(self) -> float:
        """The bottom edge (largest y)."""
        return self.pt_max.y

    @property
    def right(self) -> float:
        """The right edge (largest x)."""
        return self.pt_max.x

    def __getitem__(self, index: int) -> Point:
        """``rect[0]`` is ``pt_min``, ``rect[1]`` is ``pt_max`` (as in Backpack)."""
        result: Point = _pair_item("Rectangle", self.pt_min, self.pt_max, index)
        return result

    @property
    def width(self) -> float:
        """Width (x extent)."""
        return self.pt_max.x - self.pt_min.x

    @property
    def height(self) -> float:
        """Height (y extent)."""
        return self.pt_max.y - self.pt_min.y

    @property
    def size(self) -> tuple[float, float]:
        """(width, height)."""
        return self.width, self.height

    @property
    def area(self) -> float:
        """Width times height."""
        return self.width * self.height

    @property
    def center(self) -> Point:
        """The centre point."""
        return Point((self.pt_min.x + self.pt_max.x) / 2, (self.pt_min.y + self.pt_max.y) / 2)

    @property
    def base(self) -> Point:
        """The middle of the bottom edge (where an object stands on the ground)."""
        return Point((self.pt_min.x + self.pt_max.x) / 2, self.pt_max.y)

    @property
    def aspect_ratio(self) -> float:
        """Width divided by height (inf for a flat rectangle)."""
        return self.width / self.height if self.height else math.inf

    @property
    def tlbr(self) -> tuple[float, float, float, float]:
        """(top, left, bottom, right)."""
        return self.pt_min.y, self.pt_min.x, self.pt_max.y, self.pt_max.x

    @property
    def tlhw(self) -> tuple[float, float, float, float]:
        """(top, left, height, width)."""
        return self.pt_min.y, self.pt_min.x, self.height, self.width

    def has_inside(self, point: Point) -> bool:
        """True when ``point`` lies inside or on the border."""
        return (
            self.pt_min.x <= point.x <= self.pt_max.x and self.pt_min.y <= point.y <= self.pt_max.y
        )

    def clipped(self) -> Rectangle:
        """This rectangle cut to the unit square."""
        return Rectangle(self.pt_min.clipped(), self.pt_max.clipped())


def _four(values: Any, name: str) -> tuple[float, float, float, float]:
    """Four numbers from a sequence or a numpy array (what detectors give)."""
    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):
        values = values.tolist()  # a numpy array or scalar row: plain Python numbers
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != 4:
        raise ValueError(f"{name} must be a sequence of 4 numbers, got {values!r}")
    a, b, c, d = (_coordinate(v, f"{name} value") for v in values)
    return a, b, c, d


@dataclass(frozen=True)
class PolyLine:
    """Connected line segments through ``points``; ``closed`` joins the last to the first."""

    points: tuple[Point, ...]
    closed: bool = True

    def __post_init__(self) -> None:
        points = self.points
        if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
            raise TypeError(f"PolyLine points must be a sequence of points, got {points!r}")
        converted = tuple(Point.from_value(point) for point in points)
        if len(converted) < 2:
            raise ValueError(
                f"a PolyLine needs at least 2 points, got {len(converted)}"
                + (" (empty)" if not converted else "")
            )
        object.__setattr__(self, "points", converted)
        object.__setattr__(self, "closed", bool(self.closed))

    @cached_property
    def _segments(self) -> tuple[Line, ...]:
        pairs = list(zip(self.points, self.points[1:], strict=False))
        if self.closed and len(self.points) > 2:
            pairs.append((self.points[-1], self.points[0]))
        return tuple(Line(a, b) for a, b in pairs)

    @property
    def lines(self) -> list[Line]:
        """The segments, including the closing one when ``closed`` (a new list, as Backpack's)."""
        return list(self._segments)

    def __getitem__(self, index: int) -> Point:
        """A point of the polyline."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"PolyLine indices must be integers, got {type(index).__name__}")
        return self.points[index]

    @cached_property
    def boundingbox(self) -> Rectangle:
        """The smallest axis-aligned rectangle holding every point."""
        xs = [p.x for p in self.points]
        ys = [p.y for p in self.points]
        return Rectangle(Point(min(xs), min(ys)), Point(max(xs), max(ys)))

    @cached_property
    def self_intersects(self) -> bool:
        """True when two non-adjacent segments cross."""
        lines = self._segments
        count = len(lines)
        for i in range(count):
            for j in range(i + 2, count):
                if self.closed and i == 0 and j == count - 1:
                    continue  # the first and the closing segment share a point
                if lines[i].intersects(lines[j]):
                    return True
        return False

    @cached_property
    def is_convex(self) -> bool:
        """True when the polygon turns the same way at every vertex (collinear turns allowed)."""
        points = self.points
        count = len(points)
        if count < 4:
            return True
        signs = set()
        for i in range(count):
            a, b, c = points[i], points[(i + 1) % count], points[(i + 2) % count]
            cross = (b.x - a.x) * (c.y - b.y) - (b.y - a.y) * (c.x - b.x)
            if cross:
                signs.add(cross > 0)
        return len(signs) <= 1 and not self.self_intersects

    def has_inside(self, point: Point) -> bool:
        """True when ``point`` lies inside the closed polygon (even-odd rule)."""
        if not self.closed:
            raise ValueError("has_inside needs a closed PolyLine")
        inside = False
        points = self.points
        j = len(points) - 1
        for i, current in enumerate(points):
            previous = points[j]
            if (current.y > point.y) != (previous.y > point.y):
                x_cross = (previous.x - current.x) * (point.y - current.y) / (
                    previous.y - current.y
                ) + current.x
                if point.x < x_cross:
                    inside = not inside
            j = i
        return inside

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    @classmethod
    def from_value(cls, value: Any, closed: bool = True, name: str = "") -> PolyLine:
        """A PolyLine from a PolyLine, a sequence of points or a mapping with ``points``.

        ``name``: the argument it was given as, named in the error.
        """
        if isinstance(value, PolyLine):
            return value
        try:
            if isinstance(value, Mapping) and "points" in value:
                return cls(tuple(value["points"]), bool(value.get("closed", closed)))
            if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
                return cls(tuple(value), closed)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{_named(name)}{error}") from None
        raise ValueError(
            f"{_named(name)}cannot make a PolyLine of {value!r}: give a sequence of points"
        )

from __future__ import annotations

import math

import pytest

from framescope.annotation import (
    Color,
    HTMLColors,
    LabelAnnotation,
    Line,
    MarkerAnnotation,
    Point,
    PolyLine,
    PolyLineAnnotation,
    Rectangle,
    RectAnnotation,
)


def test_point_arithmetic_distance_and_pixels() -> None:
    a, b = Point(0.25, 0.5), Point(0.75, 0.0)
    assert a + b == Point(1.0, 0.5)
    assert b - a == Point(0.5, -0.5)
    assert a * 2 == 2 * a == Point(0.5, 1.0)
    assert a / 2 == Point(0.125, 0.25)
    assert -a == Point(-0.25, -0.5)
    assert a.distance(b) == pytest.approx(math.sqrt(0.5))
    x, y = a
    assert (x, y, a[0], a[1]) == (0.25, 0.5, 0.25, 0.5)
    assert a.to_pixels(640, 480) == (160, 240)
    assert Point(1.0, 1.0).to_pixels(640, 480) == (639, 479)
    assert Point(-0.5, 2.0).to_pixels(640, 480) == (0, 479)
    assert Point(-0.5, 2.0).clipped() == Point(0.0, 1.0)
    assert Point.from_value((0.1, 0.2)) == Point.from_value({"x": 0.1, "y": 0.2}) == Point(0.1, 0.2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_coordinates_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="Point x must be a finite number"):
        Point(bad, 0.5)
    with pytest.raises(ValueError, match="Point y must be a finite number"):
        RectAnnotation(point1=(0.1, 0.1), point2=(0.2, bad))
    with pytest.raises(ValueError, match="finite"):
        LabelAnnotation(Point(0.1, bad), "x")


def test_non_numbers_are_refused() -> None:
    with pytest.raises(TypeError, match="Point x must be a real number, got str"):
        Point("0.1", 0.2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Point y must be a real number, got bool"):
        Point(0.1, True)
    with pytest.raises(ValueError, match=r"cannot make a Point of \(1, 2, 3\)"):
        Point.from_value((1, 2, 3))


def test_rectangle_corners_and_measures() -> None:
    rect = Rectangle(Point(0.8, 0.1), Point(0.2, 0.5))
    assert rect.pt_min == Point(0.2, 0.1)
    assert rect.pt_max == Point(0.8, 0.5)
    assert rect.width == pytest.approx(0.6)
    assert rect.height == pytest.approx(0.4)
    assert rect.size == pytest.approx((0.6, 0.4))
    assert rect.area == pytest.approx(0.24)
    assert rect.center == Point(0.5, 0.3)
    assert rect.base == Point(0.5, 0.5)
    assert rect.aspect_ratio == pytest.approx(1.5)
    assert rect.has_inside(Point(0.5, 0.3))
    assert not rect.has_inside(Point(0.1, 0.3))
    assert Rectangle.from_tlbr((0.1, 0.2, 0.5, 0.8)) == Rectangle(Point(0.2, 0.1), Point(0.8, 0.5))
    assert Rectangle.from_tlhw((0.1, 0.2, 0.4, 0.6)).pt_max == Point(0.8, 0.5)
    assert Rectangle.from_tlbr((0.1, 0.2, 0.5, 0.8)).tlbr == (0.1, 0.2, 0.5, 0.8)
    with pytest.raises(ValueError, match="tlbr must be a sequence of 4 numbers"):
        Rectangle.from_tlbr((0.1, 0.2, 0.3))


def test_line_intersections() -> None:
    assert Line(Point(0, 0), Point(1, 1)).intersects(Line(Point(0, 1), Point(1, 0)))
    assert not Line(Point(0, 0), Point(1, 0)).intersects(Line(Point(0, 1), Point(1, 1)))
    assert Line.from_value(((0, 0), (3, 4))).length == 5


def test_polyline_boundingbox_inside_convexity_and_self_intersection() -> None:
    square = PolyLine([Point(0.1, 0.1), Point(0.5, 0.1), Point(0.5, 0.5), Point(0.1, 0.5)])
    assert square.boundingbox == Rectangle(Point(0.1, 0.1), Point(0.5, 0.5))
    assert square.has_inside(Point(0.3, 0.3))
    assert not square.has_inside(Point(0.6, 0.3))
    assert square.is_convex
    assert not square.self_intersects
    assert len(square.lines) == 4
    arrow = PolyLine([(0.0, 0.0), (1.0, 0.0), (0.5, 0.2), (0.5, 1.0)])
    assert not arrow.is_convex
    assert not arrow.self_intersects
    assert arrow.has_inside(Point(0.5, 0.1))
    assert not arrow.has_inside(Point(0.9, 0.9))
    bow_tie = PolyLine([(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
    assert bow_tie.self_intersects
    assert not bow_tie.is_convex
    open_line = PolyLine([(0, 0), (1, 0), (1, 1)], closed=False)
    assert len(open_line.lines) == 2
    with pytest.raises(ValueError, match="needs a closed PolyLine"):
        open_line.has_inside(Point(0.5, 0.5))


def test_empty_and_one_point_polylines_are_refused() -> None:
    with pytest.raises(ValueError, match=r"at least 2 points, got 0 \(empty\)"):
        PolyLine([])
    with pytest.raises(ValueError, match="at least 2 points, got 1"):
        PolyLineAnnotation(PolyLine.from_value([(0.1, 0.1)]))


def test_color_parsing() -> None:
    assert Color.from_hex("#ff8800") == Color(255, 136, 0)
    assert Color.from_hex("f80") == Color(255, 136, 0)
    assert Color.from_hex(0x0080FF) == Color(0, 128, 255)
    assert Color.from_value((1, 2, 3)) == Color(1, 2, 3)
    assert Color.from_value((1, 2, 3, 0.5)) == Color(1, 2, 3, 0.5)
    assert Color.from_value({"r": 1, "g": 2, "b": 3, "a": 0.25}).alpha == 0.25
    assert Color.from_value({"r": 1, "g": 2, "b": 3, "alpha": 0.75}).alpha == 0.75
    for raw in (b"abc", bytearray(b"abc")):
        with pytest.raises(ValueError, match="cannot make a Color"):
            Color.from_value(raw)  # not Color(97, 98, 99)
    color = Color(10, 20, 30)
    assert Color.from_value(color) is color
    assert color.with_alpha(0.5) == Color(10, 20, 30, 0.5)
    assert color.brightness(2) == Color(20, 40, 60)
    assert Color(200, 100, 0).brightness(1.5) == Color(255, 150, 0)
    assert color.hex == "#0a141e"
    assert color.bgr == (30, 20, 10)


def test_stable_colour_per_class_id() -> None:
    assert Color.from_id(7) == Color.from_id(7)
    assert Color.from_id(7) != Color.from_id(8)
    assert Color.from_id(7, salt="other") != Color.from_id(7)
    assert HTMLColors.color_from_id(17) == HTMLColors.SILVER


def test_named_colours_have_their_standard_values() -> None:
    assert Color(128, 0, 0) == HTMLColors.MAROON
    assert Color(0, 128, 128) == HTMLColors.TEAL
    assert HTMLColors.from_name("Aqua") == Color(0, 255, 255)
    assert len(HTMLColors.as_list()) == 16
    with pytest.raises(KeyError, match="no colour called 'acqua' in HTMLColors"):
        HTMLColors.from_name("acqua")


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ((256, 0, 0), ValueError, "Color r must be an integer between 0 and 255, got 256"),
        ((0, -1, 0), ValueError, "Color g must be an integer between 0 and 255"),
        ((0, 0, 0.5), TypeError, "Color b must be an integer between 0 and 255"),
        ((0, 0, 0, 1.5), ValueError, "Color alpha must be a number between 0 and 1"),
        ("#12345", ValueError, "not a hex colour: '#12345'"),
        ("#gggggg", ValueError, "not a hex colour"),
        ({"r": 1}, ValueError, r"needs r, g and b; \['g', 'b'\] missing"),
        (object(), ValueError, "cannot make a Color of"),
    ],
)
def test_wrong_colour_values(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Color.from_value(value)


def test_annotations_convert_and_check_their_arguments() -> None:
    rect = RectAnnotation(point1=(0.9, 0.9), point2=(0.1, 0.1), color="#ff0000")
    assert rect.rect.pt_min == Point(0.1, 0.1)
    assert rect.color == Color(255, 0, 0)
    assert RectAnnotation(rect=Rectangle(Point(0, 0), Point(1, 1))).rect.area == 1
    with pytest.raises(TypeError, match="needs rect= or both point1= and point2="):
        RectAnnotation(point1=Point(0.1, 0.1))
    with pytest.raises(TypeError, match="not both"):
        RectAnnotation(rect=Rectangle(Point(0, 0), Point(1, 1)), point1=Point(0, 0))
    with pytest.raises(ValueError, match="color: Color r must be an integer between 0 and 255"):
        LabelAnnotation(Point(0, 0), "x", color=(300, 0, 0))
    with pytest.raises(TypeError, match="text must be a string, got int"):
        LabelAnnotation(Point(0, 0), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="horizontal_anchor must be a LabelAnnotation"):
        LabelAnnotation(Point(0, 0), "x", horizontal_anchor="left")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"style must be a MarkerAnnotation\.Style"):
        MarkerAnnotation(Point(0, 0), style="cross")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="thickness must be a positive integer"):
        RectAnnotation(point1=(0, 0), point2=(1, 1), thickness=0)
    assert LabelAnnotation.HorizontalAnchor.RIGHT.name == "RIGHT"
    assert MarkerAnnotation.Style.STAR.name == "STAR"

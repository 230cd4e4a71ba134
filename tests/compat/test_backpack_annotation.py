"""Code written against released Backpack's annotation and geometry runs unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from framescope.annotation import (
    Color,
    LabelAnnotation,
    Line,
    OpenCVImageAnnotationDriver,
    Point,
    PolyLine,
    Rectangle,
)


def test_rectangles_from_detector_arrays() -> None:
    boxes = np.array([[0.1, 0.2, 0.5, 0.6]], dtype=np.float32)  # what a detector outputs
    rect = Rectangle.from_tlbr(boxes[0])
    assert (rect.top, rect.left, rect.bottom, rect.right) == pytest.approx((0.1, 0.2, 0.5, 0.6))
    assert tuple(Rectangle.from_tlhw(np.array([0.1, 0.2, 0.3, 0.4])).pt_max) == pytest.approx(
        (0.6, 0.4)
    )
    assert rect[0] == rect.pt_min and rect[1] == rect.pt_max


def test_errors_are_both_value_and_type_errors() -> None:
    for bad, says in (
        (lambda: Color.from_hex("#zzzzzz"), "not a hex colour"),
        (lambda: Color(300, 0, 0), "Color r must be"),
        (lambda: Color.from_hex(2.5), "a hex colour must be a string or an int"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=says):  # Backpack's users catch this
            bad()
        with pytest.raises(TypeError, match=says):  # framescope's users caught this
            bad()
    driver = OpenCVImageAnnotationDriver()
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="cannot draw 'str'"):
        driver.render(["not an annotation"], image)
    with pytest.raises(TypeError, match="Point indices must be integers"):
        Point(1, 2)["foo"]  # type: ignore[index]


def test_line_crossing_direction_as_counters_use_it() -> None:
    gate = Line(Point(0.5, 0.0), Point(0.5, 1.0))  # a vertical counting line, drawn downwards
    going_right = Line(Point(0.4, 0.5), Point(0.6, 0.5))
    going_left = Line(Point(0.6, 0.5), Point(0.4, 0.5))
    assert gate.intersects(going_right) == Line.Intersection.LEFT
    assert gate.intersects(going_left) == Line.Intersection.RIGHT
    assert gate.intersects(Line(Point(0, 0), Point(0.1, 0.1))) == Line.Intersection.NONE
    assert not Line.Intersection.NONE and Line.Intersection.LEFT
    assert gate[0] == Point(0.5, 0.0) and gate[1] == Point(0.5, 1.0)


def test_polyline_indexing_and_lines_as_a_list() -> None:
    square = PolyLine([Point(0, 0), Point(1, 0), Point(1, 1), Point(0, 1)])
    assert square[2] == Point(1, 1) and len(square) == 4
    lines = square.lines
    assert isinstance(lines, list) and len(lines) == 4
    lines.append(Line(Point(0, 0), Point(1, 1)))  # the caller's own list
    assert len(square.lines) == 4


def test_opencv_driver_names_and_draw_transparent() -> None:
    import cv2

    assert OpenCVImageAnnotationDriver.DEFAULT_FONT == cv2.FONT_HERSHEY_PLAIN
    assert OpenCVImageAnnotationDriver.DEFAULT_LINEWIDTH == 1
    assert OpenCVImageAnnotationDriver.DEFAULT_TEXT_PADDING == (2, 2)
    driver = OpenCVImageAnnotationDriver()
    image = np.zeros((20, 20, 3), np.uint8)

    def white(img: np.ndarray) -> None:
        img[:] = 200

    driver.draw_transparent(0.5, image, white)
    assert image[0, 0, 0] == 100  # half of the drawing over black
    driver.draw_transparent(1.0, image, white)
    assert image[0, 0, 0] == 200
    driver.draw_transparent(0.0, image, lambda img: img.fill(0))
    assert image[0, 0, 0] == 200  # nothing drawn
    label = LabelAnnotation(point=Point(0.5, 0.5), text="x")
    driver.render([label], np.zeros((100, 100, 3), np.uint8))


def test_marker_style_to_cv2_maps_each_style_to_its_opencv_shape() -> None:
    import cv2

    from framescope.annotation import MarkerAnnotation

    table = OpenCVImageAnnotationDriver.MARKER_STYLE_TO_CV2  # a class attribute, as Backpack's
    style = MarkerAnnotation.Style
    assert table == {
        style.CROSS: cv2.MARKER_CROSS,  # Backpack's table said MARKER_DIAMOND here
        style.TILTED_CROSS: cv2.MARKER_TILTED_CROSS,
        style.STAR: cv2.MARKER_STAR,
        style.DIAMOND: cv2.MARKER_DIAMOND,
        style.SQUARE: cv2.MARKER_SQUARE,
        style.TRIANGLE_UP: cv2.MARKER_TRIANGLE_UP,
        style.TRIANGLE_DOWN: cv2.MARKER_TRIANGLE_DOWN,
    }

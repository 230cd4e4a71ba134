from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

from framescope.annotation import (  # noqa: E402
    BoundingBoxAnnotation,
    Color,
    HorizontalAnchor,
    LabelAnnotation,
    Line,
    LineAnnotation,
    MarkerAnnotation,
    MarkerStyle,
    OpenCVImageAnnotationDriver,
    PanoramaMediaAnnotationDriver,
    PillowImageAnnotationDriver,
    Point,
    PolyLine,
    PolyLineAnnotation,
    Rectangle,
    RectAnnotation,
    TimestampAnnotation,
    VerticalAnchor,
)

RED = Color(255, 0, 0)


def black(height: int = 100, width: int = 200) -> Any:
    return np.zeros((height, width, 3), np.uint8)


def ink_box(image: Any) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of every non-black pixel, inclusive."""
    ys, xs = np.nonzero(image.reshape(image.shape[0], image.shape[1], -1).max(axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_the_issue_example_runs_as_written() -> None:
    frame = black(480, 640)
    annotations = [
        TimestampAnnotation(),
        RectAnnotation(point1=Point(0.1, 0.1), point2=Point(0.9, 0.9)),
        LabelAnnotation(point=Point(0.5, 0.5), text="Hello World!"),
    ]
    rendered = OpenCVImageAnnotationDriver().render(annotations, frame.copy())
    assert rendered.shape == frame.shape
    assert not frame.any()  # the original frame is untouched
    assert (rendered[48, 64:577] == 255).all()  # the top edge of the rectangle
    assert rendered[220:240, 320:420].any()  # the label: right of and above its point
    assert not rendered[220:240, 100:318].any()
    assert not rendered[242:300, 300:420].any()


def test_rectangle_edges_land_on_the_right_pixels() -> None:
    image = OpenCVImageAnnotationDriver().render(
        [RectAnnotation(point1=Point(0.1, 0.1), point2=Point(0.9, 0.9), color=RED, thickness=1)],
        black(),
    )
    assert image[10, 20].tolist() == [0, 0, 255]  # BGR red at the top-left corner
    assert image[90, 180].tolist() == [0, 0, 255]
    assert (image[10, 20:181, 2] == 255).all()
    assert (image[10:91, 20, 2] == 255).all()
    assert image[50, 100].tolist() == [0, 0, 0]  # inside stays empty
    assert ink_box(image) == (20, 10, 180, 90)


def test_filled_rectangle_and_thickness() -> None:
    image = OpenCVImageAnnotationDriver().render(
        [
            RectAnnotation(
                point1=(0.1, 0.1), point2=(0.5, 0.5), fill_color=Color(0, 255, 0), thickness=3
            )
        ],
        black(),
    )
    assert image[30, 60].tolist() == [0, 255, 0]
    assert image[9, 20].tolist() == [255, 255, 255]  # a 3-pixel edge reaches 1 pixel outside


def test_transparency_blends_only_the_annotation_area() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    image = frame.copy()
    OpenCVImageAnnotationDriver().render(
        [
            RectAnnotation(
                point1=(0.25, 0.2), point2=(0.5, 0.6), fill_color=Color(255, 255, 255, 0.3)
            )
        ],
        image,
    )
    inside = image[30:50, 60:90].astype(int)
    # alpha 0.3 (not 0.5, where swapped weights would look the same): 30% white, 70% frame.
    expected = 0.7 * frame[30:50, 60:90].astype(int) + 0.3 * 255
    assert np.abs(inside - expected).max() <= 1
    outside = np.ones(frame.shape[:2], bool)
    outside[19:62, 49:102] = False
    assert (image[outside] == frame[outside]).all()


def test_alpha_zero_draws_nothing_and_alpha_one_is_opaque() -> None:
    image = OpenCVImageAnnotationDriver().render(
        [RectAnnotation(point1=(0.1, 0.1), point2=(0.9, 0.9), color=RED.with_alpha(0.0))], black()
    )
    assert not image.any()
    frame = np.full((100, 200, 3), 77, np.uint8)
    OpenCVImageAnnotationDriver().render(
        [RectAnnotation(point1=(0.1, 0.1), point2=(0.9, 0.9), color=RED.with_alpha(1.0))], frame
    )
    assert frame[10, 20].tolist() == [0, 0, 255]


@pytest.mark.parametrize("driver_type", ["opencv", "pillow"])
def test_anchors_move_labels_as_named(driver_type: str) -> None:
    opencv, pillow = OpenCVImageAnnotationDriver(), PillowImageAnnotationDriver()

    def box(horizontal: HorizontalAnchor, vertical: VerticalAnchor) -> tuple[int, int, int, int]:
        label = LabelAnnotation(
            Point(0.5, 0.5), "Mg", horizontal_anchor=horizontal, vertical_anchor=vertical, size=3
        )
        if driver_type == "opencv":
            return ink_box(opencv.render([label], black(200, 400)))
        return ink_box(np.asarray(pillow.render([label], Image.new("RGB", (400, 200)))))

    x, y = 200, 100
    left_bottom = box(HorizontalAnchor.LEFT, VerticalAnchor.BOTTOM)
    assert left_bottom[0] >= x - 1 and left_bottom[3] <= y
    right_top = box(HorizontalAnchor.RIGHT, VerticalAnchor.TOP)
    assert right_top[2] <= x + 1 and right_top[1] >= y - 1
    center = box(HorizontalAnchor.CENTER, VerticalAnchor.CENTER)
    assert center[0] < x < center[2] and center[1] < y < center[3]
    baseline = box(HorizontalAnchor.LEFT, VerticalAnchor.BASELINE)
    assert baseline[1] < y < baseline[3]  # the descender of "g" hangs below the baseline
    width = left_bottom[2] - left_bottom[0]
    assert right_top[0] == pytest.approx(left_bottom[0] - width, abs=8)


def test_markers_are_drawn_as_named() -> None:
    driver = OpenCVImageAnnotationDriver()
    cross = driver.render([MarkerAnnotation(Point(0.5, 0.5), MarkerStyle.CROSS)], black(400, 400))
    tilted = driver.render(
        [MarkerAnnotation(Point(0.5, 0.5), MarkerStyle.TILTED_CROSS)], black(400, 400)
    )
    assert cross[200, 192].any() and cross[192, 200].any()  # arms along x and y
    assert not cross[193, 193].any()
    assert tilted[194, 194].any() and not tilted[200, 192].any()  # arms along the diagonals
    for style in MarkerStyle:
        drawn = driver.render([MarkerAnnotation(Point(0.5, 0.5), style)], black(400, 400))
        x0, y0, x1, y1 = ink_box(drawn)
        assert x0 < 200 < x1 and y0 < 200 < y1


def test_polyline_fill_and_outline() -> None:
    triangle = PolyLine([Point(0.1, 0.1), Point(0.9, 0.1), Point(0.5, 0.9)])
    image = OpenCVImageAnnotationDriver().render(
        [PolyLineAnnotation(triangle, color=RED, fill_color=Color(0, 0, 255))], black()
    )
    assert image[30, 100].tolist() == [255, 0, 0]  # blue inside (BGR)
    assert not image[80, 30].any()  # outside the triangle
    assert image[10, 100, 2] > 200  # the red top edge


def test_line_annotation() -> None:
    image = OpenCVImageAnnotationDriver().render(
        [LineAnnotation(Line(Point(0.0, 0.5), Point(1.0, 0.5)), color=RED, thickness=1)], black()
    )
    assert (image[50, 5:195, 2] > 0).all()
    assert not image[40].any()


def test_points_outside_the_image_are_clipped() -> None:
    image = OpenCVImageAnnotationDriver().render(
        [RectAnnotation(point1=(-0.5, -0.5), point2=(1.5, 0.5), color=RED)], black()
    )
    assert (image[0, :, 2] == 255).all()
    assert (image[50, :, 2] == 255).all()


def test_timestamp_and_bounding_box() -> None:
    stamp = TimestampAnnotation(datetime.datetime(2024, 5, 6, 7, 8, 9))
    assert stamp.text == "2024-05-06 07:08:09"
    assert stamp.point == Point(0.02, 0.04)
    image = OpenCVImageAnnotationDriver().render([stamp], black(400, 800))
    x0, _, _, y1 = ink_box(image)
    assert x0 >= 16 and y1 <= 16
    box = BoundingBoxAnnotation(
        Rectangle(Point(0.25, 0.5), Point(0.75, 0.75)),
        top_label="car",
        bottom_label="id 3",
        color=RED,
    )
    drawn = OpenCVImageAnnotationDriver().render([box], black(400, 800))
    above = drawn[:200, 200:600]
    below = drawn[301:, 200:600]
    assert above.any() and below.any()  # the labels sit outside the box, above and below
    assert not drawn[210:290, 210:590].any()


def test_unknown_annotation_and_wrong_context_are_clear_errors() -> None:
    driver = OpenCVImageAnnotationDriver()
    with pytest.raises(TypeError, match="cannot draw 'str'"):
        driver.render(["a box"], black())  # type: ignore[list-item]
    with pytest.raises(TypeError, match="context must be a numpy image, got list"):
        driver.render([], [[0]])
    with pytest.raises(TypeError, match=r"must be a uint8 image .* got float64"):
        driver.render([], np.zeros((10, 10, 3)))
    with pytest.raises(TypeError, match=r"context must be a PIL\.Image\.Image"):
        PillowImageAnnotationDriver().render([], black())
    with pytest.raises(TypeError, match="lacks add_rect, add_label"):
        PanoramaMediaAnnotationDriver().render([], object())


def test_pillow_draws_rectangles_and_blends() -> None:
    image = Image.new("RGB", (200, 100))
    PillowImageAnnotationDriver().render(
        [
            RectAnnotation(point1=(0.1, 0.1), point2=(0.9, 0.9), color=RED),
            RectAnnotation(point1=(0.3, 0.3), point2=(0.5, 0.5), fill_color=Color(0, 0, 255, 0.25)),
        ],
        image,
    )
    assert image.getpixel((20, 10)) == (255, 0, 0)
    assert image.getpixel((180, 90)) == (255, 0, 0)
    blue = image.getpixel((80, 40))
    assert blue[:2] == (0, 0) and abs(blue[2] - 64) <= 1  # 25% of 255 over black
    assert image.getpixel((100, 60)) == (0, 0, 0)


def test_the_same_list_on_opencv_and_pillow_agrees_on_geometry() -> None:
    annotations = [
        RectAnnotation(point1=(0.1, 0.2), point2=(0.6, 0.7), color=RED),
        MarkerAnnotation(Point(0.8, 0.5), MarkerStyle.SQUARE),
    ]
    cv_image = OpenCVImageAnnotationDriver().render(annotations, black(200, 400))
    pil_image = np.asarray(
        PillowImageAnnotationDriver().render(annotations, Image.new("RGB", (400, 200)))
    )
    assert cv_image[40, 40:241, 2].min() == 255 and pil_image[40, 40:241, 0].min() == 255
    assert cv_image[100, 320].sum() == 0 and pil_image[100, 320].sum() == 0  # marker centre empty


class RecordingMedia:
    """Stands in for panoramasdk.media: records what it is asked to draw."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def add_rect(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.calls.append(("rect", x1, y1, x2, y2))

    def add_label(self, text: str, x: float, y: float) -> None:
        self.calls.append(("label", text, x, y))


def test_panorama_driver_sends_normalised_arguments(caplog: pytest.LogCaptureFixture) -> None:
    media = RecordingMedia()
    driver = PanoramaMediaAnnotationDriver()
    with caplog.at_level(logging.WARNING):
        result = driver.render(
            [
                RectAnnotation(point1=Point(0.9, 0.8), point2=Point(0.1, 0.2)),
                LabelAnnotation(Point(0.5, 1.5), "hi"),
                MarkerAnnotation(Point(0.3, 0.4), MarkerStyle.CROSS),
                BoundingBoxAnnotation(Rectangle(Point(0.2, 0.2), Point(0.4, 0.6)), "car", "id 1"),
                TimestampAnnotation(datetime.datetime(2024, 1, 2, 3, 4, 5)),
                LineAnnotation(Line(Point(0, 0), Point(1, 1))),
                LineAnnotation(Line(Point(0, 1), Point(1, 0))),
                PolyLineAnnotation(PolyLine([(0, 0), (1, 0), (1, 1)])),
                RectAnnotation(point1=(0, 0), point2=(1, 1), color=RED),
            ],
            media,
        )
    assert result is media
    assert media.calls == [
        ("rect", 0.1, 0.2, 0.9, 0.8),
        ("label", "hi", 0.5, 1.0),
        ("label", "+", 0.3, 0.4),
        ("rect", 0.2, 0.2, 0.4, 0.6),
        ("label", "car", 0.2, 0.2),
        ("label", "id 1", 0.2, 0.64),  # under the box: a label's height lower
        ("label", "2024-01-02 03:04:05", 0.02, 0.04),
        ("rect", 0.0, 0.0, 1.0, 1.0),
    ]
    assert driver.unsupported == {
        "lines": 2,
        "polylines": 1,
        "rectangle colours": 1,
        "label colours": 2,  # the box labels' black text
        "label backgrounds": 2,  # and their boxes
    }
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("cannot draw lines" in w for w in warnings) == 1  # reported once


def test_opencv_refuses_arrays_it_cannot_draw_into() -> None:
    driver = OpenCVImageAnnotationDriver()
    box = [RectAnnotation(point1=(0.1, 0.1), point2=(0.9, 0.9), color=RED)]
    with pytest.raises(ValueError, match="non-empty"):
        driver.render(box, np.zeros((0, 10, 3), np.uint8))
    frozen = np.zeros((20, 20, 3), np.uint8)
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        driver.render(box, frozen)
    with pytest.raises(ValueError, match="C-contiguous"):
        driver.render(box, np.zeros((20, 20, 3), np.uint8, order="F"))
    with pytest.raises(ValueError, match="C-contiguous"):
        driver.render(box, np.zeros((40, 40, 3), np.uint8)[::2, ::2])
    fine = np.zeros((20, 20, 3), np.uint8)
    assert driver.render(box, fine) is fine and fine.any()


def test_one_annotation_may_be_given_without_a_list() -> None:
    rect = RectAnnotation(Rectangle(Point(0.1, 0.1), Point(0.5, 0.5)), color=RED)
    alone = OpenCVImageAnnotationDriver().render(rect, black())
    listed = OpenCVImageAnnotationDriver().render([rect], black())
    assert np.array_equal(alone, listed) and alone.any()


def test_pixel_coordinates_by_mistake_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    driver = OpenCVImageAnnotationDriver()
    in_pixels = RectAnnotation(Rectangle(Point(20, 10), Point(120, 80)))
    with caplog.at_level(logging.WARNING, logger="framescope.annotation"):
        driver.render([LabelAnnotation(Point(0.5, 0.5), "fine")], black())
        assert not caplog.records  # normalised: nothing to say
        driver.render([in_pixels], black())
        driver.render([in_pixels], black())
    (record,) = caplog.records
    assert "normalised" in record.getMessage() and "RectAnnotation" in record.getMessage()

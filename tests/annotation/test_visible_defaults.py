"""What the defaults look like: bright colours, lines that show, labels that read."""

from __future__ import annotations

import colorsys
from dataclasses import replace
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

from framescope.annotation import (  # noqa: E402
    BoundingBoxAnnotation,
    Color,
    LabelAnnotation,
    OpenCVImageAnnotationDriver,
    PanoramaMediaAnnotationDriver,
    PillowImageAnnotationDriver,
    Point,
    Rectangle,
    RectAnnotation,
    VerticalAnchor,
)
from framescope.annotation.color import ID_PALETTE  # noqa: E402

GREY = 128
DRIVERS = ["opencv", "pillow"]


def grey_frame(driver: str, width: int = 1920, height: int = 1080) -> Any:
    if driver == "opencv":
        return np.full((height, width, 3), GREY, np.uint8)
    return Image.new("RGB", (width, height), (GREY, GREY, GREY))


def render(driver: str, annotations: list[Any], frame: Any) -> Any:
    """Draw with the named driver; the result as an RGB numpy array."""
    if driver == "opencv":
        drawn = OpenCVImageAnnotationDriver().render(annotations, frame)
        return drawn[:, :, ::-1]
    return np.asarray(PillowImageAnnotationDriver().render(annotations, frame))


def matches(image: Any, color: Color) -> Any:
    """Mask of the pixels that are ``color`` (within 1 per channel: antialiasing aside)."""
    return (np.abs(image.astype(int) - np.array(color.rgb)) <= 1).all(axis=-1)


def test_from_id_gives_distinct_bright_saturated_colours_cycling() -> None:
    colours = [Color.from_id(i) for i in range(16)]
    assert len(set(colours)) == 16  # 16 classes, 16 colours
    for colour in colours:
        _, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in colour.rgb))
        assert saturation >= 0.5 and value >= 0.75, colour
    assert Color.from_id(16) == Color.from_id(0)
    assert Color.from_id(0) != Color(21, 73, 4)  # what the hash gave: dark green
    assert Color.from_id("car") in ID_PALETTE and Color.from_id("car") == Color.from_id("car")
    assert Color.from_id(3, salt="other") in ID_PALETTE
    assert Color.from_id(np.int64(5)) == Color.from_id(5)  # a detector's class id
    assert Color.from_id(2.5) in ID_PALETTE  # anything else is hashed, as Backpack did


@pytest.mark.parametrize(
    ("background", "text"),
    [(Color(255, 220, 0), Color(0, 0, 0)), (Color(0, 0, 160), Color(255, 255, 255))],
)
def test_text_colour_is_black_or_white_whichever_contrasts(background: Color, text: Color) -> None:
    assert background.text_color() == text


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_readme_box_is_drawn_in_the_bright_colour_and_thick_at_1080p(driver: str) -> None:
    colour = Color.from_id(0)
    box = BoundingBoxAnnotation(
        Rectangle(Point(0.25, 0.25), Point(0.75, 0.75)), top_label="person 0.93", color=colour
    )
    image = render(driver, [box], grey_frame(driver))
    row = matches(image[540], colour)  # across the middle: the left and right edges
    left = np.flatnonzero(row[:960])
    assert len(left) >= 2, "the box's left edge is at least 2 px wide at 1080p"
    assert left.max() - left.min() + 1 == len(left)  # one solid run
    half = render(
        driver,
        [BoundingBoxAnnotation(box.rectangle, color=colour.with_alpha(0.5))],
        grey_frame(driver),
    )
    blended = half[540, int(left.min())]
    expected = [round((c + GREY) / 2) for c in colour.rgb]
    assert np.abs(blended.astype(int) - expected).max() <= 1  # half-way to grey, still bright


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_explicit_thickness_is_kept(driver: str) -> None:
    colour = Color.from_id(2)
    rect = RectAnnotation(point1=(0.25, 0.25), point2=(0.75, 0.75), color=colour, thickness=1)
    image = render(driver, [rect], grey_frame(driver))
    assert matches(image[540, :960], colour).sum() == 1


def test_line_width_grows_with_the_image() -> None:
    width = OpenCVImageAnnotationDriver.line_width
    assert width(640, 480) == 2 and width(1920, 1080) == 3 and width(3840, 2160) == 6
    assert width(1080, 1920) == 3  # portrait: the shorter side counts


def label_pixels(image: Any, colour: Color, box: tuple[int, int, int, int]) -> tuple[Any, Any]:
    """(background mask, text mask) inside ``box`` (x0, y0, x1, y1) of an RGB image."""
    x0, y0, x1, y1 = box
    region = image[y0:y1, x0:x1]
    return matches(region, colour), matches(region, colour.text_color())


@pytest.mark.parametrize("driver", DRIVERS)
def test_box_label_sits_on_a_filled_box_with_contrasting_text(driver: str) -> None:
    for colour in (Color(255, 220, 0), Color(0, 0, 160)):  # yellow: black text; navy: white
        box = BoundingBoxAnnotation(
            Rectangle(Point(0.25, 0.5), Point(0.75, 0.75)), top_label="person 0.93", color=colour
        )
        image = render(driver, [box], grey_frame(driver))
        # The strip just above the box's top edge (y 540), from its left edge on.
        background, text = label_pixels(image, colour, (480, 460, 960, 538))
        assert background.sum() > 2000, "a filled label box in the box colour"
        assert text.sum() > 100, "text in black or white, whichever contrasts"
        assert background.sum() > 2 * text.sum()
        assert not matches(image[300:440], colour).any()  # nothing far above the label


@pytest.mark.parametrize("driver", DRIVERS)
def test_label_of_a_box_at_the_top_edge_is_drawn_inside_the_box(driver: str) -> None:
    colour = Color.from_id(3)
    box = BoundingBoxAnnotation(
        Rectangle(Point(0.25, 0.0), Point(0.75, 0.5)), top_label="person 0.93", color=colour
    )
    image = render(driver, [box], grey_frame(driver))
    background, text = label_pixels(image, colour, (480, 0, 1440, 500))  # above the bottom edge
    assert background.sum() > 2000 and text.sum() > 100
    label_rows = np.flatnonzero(background[:, 100:400].any(axis=1))  # clear of the side edges
    assert label_rows.min() < 10 and label_rows.max() < 100  # a label strip at the top, inside
    label_columns = np.flatnonzero(background[5:60].all(axis=0))
    assert label_columns.min() <= 5 and label_columns.max() < 960  # from the box's left edge


@pytest.mark.parametrize("driver", DRIVERS)
def test_label_near_the_right_edge_is_moved_inside_the_image(driver: str) -> None:
    colour = Color.from_id(1)
    label = LabelAnnotation(
        Point(0.98, 0.5), "a long label text", colour.text_color(), background=colour
    )
    image = render(driver, [label], grey_frame(driver))
    centred = render(driver, [replace(label, point=Point(0.5, 0.5))], grey_frame(driver))
    text = colour.text_color()
    assert matches(image, text).sum() == pytest.approx(matches(centred, text).sum(), rel=0.05)
    columns = np.flatnonzero(matches(image, colour).any(axis=0))
    assert columns.max() <= 1919 and columns.min() < 0.98 * 1920 - 150  # moved left to fit


def test_panorama_moves_a_top_edge_box_label_inside() -> None:
    calls: list[tuple[Any, ...]] = []

    class Media:
        def add_rect(self, *args: float) -> None:
            calls.append(("rect", *args))

        def add_label(self, text: str, x: float, y: float) -> None:
            calls.append(("label", text, x, y))

    driver = PanoramaMediaAnnotationDriver()
    driver.render(
        [
            BoundingBoxAnnotation(Rectangle(Point(0.2, 0.0), Point(0.4, 0.5)), "top"),
            BoundingBoxAnnotation(Rectangle(Point(0.2, 0.3), Point(0.4, 1.0)), "a", "bottom"),
        ],
        Media(),
    )
    label_height = driver.LABEL_HEIGHT
    assert ("label", "top", 0.2, label_height) in calls  # down a line: inside the box
    assert ("label", "a", 0.2, 0.3) in calls  # room above: outside as before
    assert ("label", "bottom", 0.2, 1.0) in calls  # no room below: inside, on the bottom edge
    assert LabelAnnotation(Point(0, 0), "x").vertical_anchor is VerticalAnchor.BOTTOM


def test_a_see_through_outline_blends_each_pixel_once() -> None:
    """The outline is blended strip by strip: corners are not blended twice."""
    colour = Color.from_id(0).with_alpha(0.5)
    frame = grey_frame("opencv")
    rects = [
        RectAnnotation(point1=(0.1, 0.1), point2=(0.6, 0.8), color=colour),
        RectAnnotation(point1=(0.7, 0.7), point2=(0.702, 0.703), color=colour),  # tiny: whole
    ]
    image = render("opencv", rects, frame)
    blend = np.array([round((c + GREY) / 2) for c in colour.rgb])
    grey = (image == GREY).all(axis=2)
    blended = (np.abs(image.astype(int) - blend) <= 1).all(axis=2)
    assert (grey | blended).all()  # nothing blended twice, nothing else touched
    assert blended[108:110, 192:1152].all()  # the top edge (y 108), 3 px at 1080p
    assert blended[1080 * 8 // 10, 192] and grey[540, 600]  # an edge, the inside


@pytest.mark.parametrize("driver", DRIVERS)
def test_bottom_label_of_a_box_at_the_bottom_edge_is_drawn_inside_the_box(driver: str) -> None:
    colour = Color.from_id(4)
    box = BoundingBoxAnnotation(
        Rectangle(Point(0.25, 0.5), Point(0.75, 1.0)), bottom_label="id 7", color=colour
    )
    image = render(driver, [box], grey_frame(driver))
    background, text = label_pixels(image, colour, (480, 560, 1440, 1080))
    assert background.sum() > 1000 and text.sum() > 50
    rows = np.flatnonzero(background[:, 100:300].any(axis=1)) + 560  # clear of the side edges
    assert rows.min() > 1080 - 100 and rows.max() >= 1075  # a strip on the bottom edge, inside

"""Cost of drawing labelled boxes with OpenCV, as ratios measured in one run.

Run: python benchmarks/annotation.py [--rounds N] [--frames N]

50 bounding boxes, each with a label on a filled box, on a 1920x1080 BGR
frame, with the driver's default look (3 px lines at 1080p, font scale 2.7,
black text on the bright palette colours). Two scenes:

- ``alpha 0.5`` (the README's example): ``OpenCVImageAnnotationDriver.render``
  (blends each box and label background over its own region, text opaque)
  against bare OpenCV written by hand (boxes and label backgrounds on one
  copy of the frame, one full-frame ``cv2.addWeighted``, then the text) and
  against a full-frame copy and blend per annotation (how drivers that blend
  the whole frame behave);
- ``opaque``: the driver against bare OpenCV (``cv2.rectangle`` and
  ``cv2.putText`` straight onto the frame) and, when it is installed, Roboflow
  supervision's ``BoxAnnotator`` + ``LabelAnnotator`` drawing the same boxes,
  colours, line width and labels (its font is Hershey Simplex at scale 1.0).

The ways alternate within each round (their order rotating), each drawing
on fresh copies of the frame and timed by its quickest frame of the round;
ratios are per round against bare OpenCV, and the median over the rounds is
printed with the range. Target: the driver within 1.5x of bare OpenCV in both
scenes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from framescope.annotation import (
    BoundingBoxAnnotation,
    Color,
    OpenCVImageAnnotationDriver,
    Point,
    Rectangle,
)

WIDTH, HEIGHT, BOXES = 1920, 1080, 50
FONT = OpenCVImageAnnotationDriver.DEFAULT_FONT
SCALE = HEIGHT / OpenCVImageAnnotationDriver.IMG_HEIGHT_FOR_UNIT_FONT_SCALE
TEXT_THICKNESS = max(int(SCALE), 1)
LINE = OpenCVImageAnnotationDriver.line_width(WIDTH, HEIGHT)

Box = tuple[int, int, int, int, tuple[int, int, int], tuple[int, int, int], str]


def make_boxes(alpha: float, seed: int = 0) -> list[BoundingBoxAnnotation]:
    """50 boxes of assorted sizes, each with a class label, in palette colours."""
    rng = np.random.default_rng(seed)
    boxes = []
    for index in range(BOXES):
        x, y = rng.uniform(0.02, 0.8), rng.uniform(0.08, 0.8)
        w, h = rng.uniform(0.03, 0.15), rng.uniform(0.05, 0.15)
        boxes.append(
            BoundingBoxAnnotation(
                Rectangle(Point(x, y), Point(x + w, y + h)),
                top_label=f"person {rng.uniform(0.5, 1):.2f}",
                color=Color.from_id(index % 7).with_alpha(alpha),
            )
        )
    return boxes


def in_pixels(boxes: list[BoundingBoxAnnotation]) -> list[Box]:
    """(x0, y0, x1, y1, BGR colour, BGR text colour, label) of each box."""
    rows = []
    for box in boxes:
        assert box.color is not None
        assert box.top_label is not None
        x0, y0 = box.rectangle.pt_min.to_pixels(WIDTH, HEIGHT)
        x1, y1 = box.rectangle.pt_max.to_pixels(WIDTH, HEIGHT)
        text = box.color.text_color().bgr
        rows.append((x0, y0, x1, y1, box.color.bgr, text, box.top_label))
    return rows


def label_at(x0: int, y0: int, label: str) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Text origin and background box of a label sitting on a box's top-left corner."""
    (text_w, text_h), baseline = cv2.getTextSize(label, FONT, SCALE, TEXT_THICKNESS)
    pad = OpenCVImageAnnotationDriver.label_padding(text_h)
    org = (x0 + pad, y0 - baseline - pad)
    return org, (x0, org[1] - text_h - pad, org[0] + text_w + pad, y0)


def bare_opaque(frame: Any, boxes: list[Box]) -> None:
    """cv2.rectangle and cv2.putText straight onto the frame."""
    for x0, y0, x1, y1, color, text_color, label in boxes:
        cv2.rectangle(frame, (x0, y0), (x1, y1), color, LINE)
        org, (bx0, by0, bx1, by1) = label_at(x0, y0, label)
        cv2.rectangle(frame, (bx0, by0), (bx1, by1), color, -1)
        cv2.putText(frame, label, org, FONT, SCALE, text_color, TEXT_THICKNESS, cv2.LINE_AA)


def bare_blended(frame: Any, boxes: list[Box]) -> None:
    """Boxes and label backgrounds on one overlay, one full-frame blend, then the text."""
    overlay = frame.copy()
    texts = []
    for x0, y0, x1, y1, color, text_color, label in boxes:
        cv2.rectangle(overlay, (x0, y0), (x1, y1), color, LINE)
        org, (bx0, by0, bx1, by1) = label_at(x0, y0, label)
        cv2.rectangle(overlay, (bx0, by0), (bx1, by1), color, -1)
        texts.append((label, org, text_color))
    cv2.addWeighted(overlay, 0.5, frame, 0.5, 0.0, dst=frame)
    for label, org, text_color in texts:
        cv2.putText(frame, label, org, FONT, SCALE, text_color, TEXT_THICKNESS, cv2.LINE_AA)


def full_frame_blends(frame: Any, boxes: list[Box]) -> None:
    """A copy and a blend of the whole frame for each box and each label background."""
    for x0, y0, x1, y1, color, text_color, label in boxes:
        _, background = label_at(x0, y0, label)
        for corner1, corner2, width in (
            ((x0, y0), (x1, y1), LINE),
            (background[:2], background[2:], -1),
        ):
            overlay = frame.copy()
            cv2.rectangle(overlay, corner1, corner2, color, width)
            cv2.addWeighted(overlay, 0.5, frame, 0.5, 0.0, dst=frame)
        org, _ = label_at(x0, y0, label)
        cv2.putText(frame, label, org, FONT, SCALE, text_color, TEXT_THICKNESS, cv2.LINE_AA)


def supervision_way(boxes: list[BoundingBoxAnnotation]) -> Callable[[Any], None] | None:
    """Roboflow supervision drawing the same boxes, or None when it is not installed."""
    try:
        import supervision as sv  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    rows = in_pixels(boxes)
    detections = sv.Detections(
        xyxy=np.array([row[:4] for row in rows], dtype=np.float32),
        class_id=np.array([index % 7 for index in range(len(rows))]),
    )
    labels = [row[6] for row in rows]
    palette = sv.ColorPalette([sv.Color(*Color.from_id(i).rgb) for i in range(7)])
    lookup = sv.ColorLookup.CLASS
    box_annotator = sv.BoxAnnotator(color=palette, thickness=LINE, color_lookup=lookup)
    label_annotator = sv.LabelAnnotator(
        color=palette,
        text_color=sv.Color.BLACK,
        text_scale=1.0,
        text_thickness=TEXT_THICKNESS,
        text_padding=8,
        color_lookup=lookup,
    )

    def draw(frame: Any) -> None:
        box_annotator.annotate(frame, detections)
        label_annotator.annotate(frame, detections, labels=labels)

    print(f"supervision {sv.__version__}")
    return draw


def per_frame(draw: Callable[[Any], None], frames: list[Any]) -> float:
    """Seconds for one frame: the quickest of drawing on each of ``frames``.

    The quickest frame of a round is the one least disturbed by other
    processes on the machine; the rounds still show the spread.
    """
    best = float("inf")
    for frame in frames:
        start = time.perf_counter()
        draw(frame)
        best = min(best, time.perf_counter() - start)
    return best


def run_scene(
    title: str, ways: dict[str, Callable[[Any], None]], background: Any, rounds: int, frames: int
) -> float:
    """Time the ways, alternating within each round; print them; return the driver's ratio."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for index in range(rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            copies = [background.copy() for _ in range(frames)]
            times[name].append(per_frame(ways[name], copies))
    print(f"\n{title}: {rounds} rounds x {frames} frames, ratios per round vs bare OpenCV")
    print("(ms for one frame: median over the rounds of each round's quickest frame)")
    for name, values in times.items():
        ratios = [a / b for a, b in zip(values, times["bare OpenCV"], strict=True)]
        print(
            f"{name:>22}: {statistics.median(values) * 1e3:7.2f} ms "
            f"(best {min(values) * 1e3:7.2f})  {statistics.median(ratios):6.2f}x bare "
            f"[{min(ratios):.2f}-{max(ratios):.2f}]"
        )
    return statistics.median(
        a / b for a, b in zip(times["framescope"], times["bare OpenCV"], strict=True)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args()
    background = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    driver = OpenCVImageAnnotationDriver()
    print(f"{BOXES} labelled boxes, {WIDTH}x{HEIGHT}, {LINE} px lines, OpenCV {cv2.__version__}")
    half, opaque = make_boxes(0.5), make_boxes(1.0)
    half_px, opaque_px = in_pixels(half), in_pixels(opaque)
    ratios = [
        run_scene(
            "alpha 0.5",
            {
                "framescope": lambda frame: driver.render(half, frame),
                "bare OpenCV": lambda frame: bare_blended(frame, half_px),
                "full-frame blends": lambda frame: full_frame_blends(frame, half_px),
            },
            background,
            args.rounds,
            args.frames,
        )
    ]
    ways: dict[str, Callable[[Any], None]] = {
        "framescope": lambda frame: driver.render(opaque, frame),
        "bare OpenCV": lambda frame: bare_opaque(frame, opaque_px),
    }
    theirs = supervision_way(opaque)
    if theirs is None:
        print("supervision is not installed: its column is left out")
    else:
        ways["supervision Box+Label"] = theirs
    ratios.append(run_scene("opaque", ways, background, args.rounds, args.frames))
    ok = all(ratio <= 1.5 for ratio in ratios)
    print(
        f"\nframescope / bare OpenCV = {ratios[0]:.2f} (alpha 0.5), {ratios[1]:.2f} (opaque); "
        f"target <= 1.5: {'ok' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

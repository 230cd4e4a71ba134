"""Cost of drawing annotations with OpenCV, as ratios measured in one run.

Run: python benchmarks/annotation.py [--rounds N]

50 bounding boxes with a label each, colour alpha 0.5, on a 1920x1080 BGR
frame, drawn three ways (alternating, best round of each):

1. ``OpenCVImageAnnotationDriver.render`` (blends each annotation over its
   own region only);
2. bare OpenCV calls as one would write them by hand: draw every box and
   label on one copy of the frame, then one ``cv2.addWeighted`` of the whole
   frame;
3. a full-frame copy and blend per annotation (how drivers that blend the
   whole frame behave).

Target: 1 within 1.5x of 2, and far below 3.
"""

from __future__ import annotations

import argparse
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


def make_boxes(seed: int = 0) -> list[BoundingBoxAnnotation]:
    """50 boxes of assorted sizes, each with a class label and a colour at alpha 0.5."""
    rng = np.random.default_rng(seed)
    boxes = []
    for index in range(BOXES):
        x, y = rng.uniform(0.02, 0.8), rng.uniform(0.05, 0.8)
        w, h = rng.uniform(0.03, 0.15), rng.uniform(0.05, 0.15)
        boxes.append(
            BoundingBoxAnnotation(
                Rectangle(Point(x, y), Point(x + w, y + h)),
                top_label=f"person {rng.uniform(0.5, 1):.2f}",
                color=Color.from_id(index % 7).with_alpha(0.5),
            )
        )
    return boxes


def box_in_pixels(box: BoundingBoxAnnotation) -> tuple[int, int, int, int, Any, str]:
    """(x0, y0, x1, y1, BGR colour, label) of a box on the frame."""
    x0, y0 = int(box.rectangle.pt_min.x * WIDTH), int(box.rectangle.pt_min.y * HEIGHT)
    x1, y1 = int(box.rectangle.pt_max.x * WIDTH), int(box.rectangle.pt_max.y * HEIGHT)
    assert box.color is not None
    assert box.top_label is not None
    return x0, y0, x1, y1, box.color.bgr, box.top_label


SCALE = HEIGHT / 400  # the driver's font scale on this frame
THICKNESS = max(int(SCALE), 1)


def bare_opencv(frame: Any, boxes: list[BoundingBoxAnnotation]) -> None:
    """Every box and label on one overlay, then one full-frame blend."""
    overlay = frame.copy()
    for box in boxes:
        x0, y0, x1, y1, color, label = box_in_pixels(box)
        cv2.rectangle(overlay, (x0, y0), (x1, y1), color, 1)
        cv2.putText(overlay, label, (x0, y0 - 2), cv2.FONT_HERSHEY_PLAIN, SCALE, color, THICKNESS)
    cv2.addWeighted(overlay, 0.5, frame, 0.5, 0.0, dst=frame)


def full_frame_per_annotation(frame: Any, boxes: list[BoundingBoxAnnotation]) -> None:
    """A copy and a blend of the whole frame for each rectangle and each label."""
    for box in boxes:
        x0, y0, x1, y1, color, label = box_in_pixels(box)
        overlay = frame.copy()
        cv2.rectangle(overlay, (x0, y0), (x1, y1), color, 1)
        cv2.addWeighted(overlay, 0.5, frame, 0.5, 0.0, dst=frame)
        overlay = frame.copy()
        cv2.putText(overlay, label, (x0, y0 - 2), cv2.FONT_HERSHEY_PLAIN, SCALE, color, THICKNESS)
        cv2.addWeighted(overlay, 0.5, frame, 0.5, 0.0, dst=frame)


def best_time(draw: Callable[[Any], None], frames: list[Any]) -> float:
    """Seconds per frame, drawing on each of ``frames`` (fresh copies)."""
    start = time.perf_counter()
    for frame in frames:
        draw(frame)
    return (time.perf_counter() - start) / len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    background = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    boxes = make_boxes()
    driver = OpenCVImageAnnotationDriver()
    ways: dict[str, Callable[[Any], None]] = {
        "framescope": lambda frame: driver.render(boxes, frame),
        "bare OpenCV": lambda frame: bare_opencv(frame, boxes),
        "full-frame blends": lambda frame: full_frame_per_annotation(frame, boxes),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, draw in ways.items():
            frames = [background.copy() for _ in range(args.frames)]
            times[name].append(best_time(draw, frames))
    best = {name: min(values) for name, values in times.items()}
    print(f"{BOXES} labelled boxes, alpha 0.5, {WIDTH}x{HEIGHT}, OpenCV {cv2.__version__}")
    print(f"best of {args.rounds} rounds x {args.frames} frames\n")
    for name, seconds in best.items():
        print(
            f"{name:>18}: {seconds * 1e3:8.2f} ms/frame  {seconds / best['bare OpenCV']:6.2f}x bare"
        )
    ratio = best["framescope"] / best["bare OpenCV"]
    ok = ratio <= 1.5 and best["framescope"] < best["full-frame blends"] / 10
    print(f"\nframescope / bare OpenCV = {ratio:.2f} (target <= 1.5): {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

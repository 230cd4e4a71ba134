"""The driver contract: ``render(annotations, context) -> context`` on any backend."""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from typing import Any, TypeVar

from framescope.annotation.annotations import (
    Annotation,
    BoundingBoxAnnotation,
    HorizontalAnchor,
    LabelAnnotation,
    LineAnnotation,
    MarkerAnnotation,
    PolyLineAnnotation,
    RectAnnotation,
    VerticalAnchor,
)
from framescope.annotation.color import Color
from framescope.annotation.geometry import Point

__all__ = ["AnnotationDriverBase", "UnknownAnnotationError"]

_FAR_OUTSIDE = 4.0  # a normalised coordinate beyond -4..5 is surely a pixel position


_LOW, _HIGH = -_FAR_OUTSIDE, 1 + _FAR_OUTSIDE


def _outside(point: Point) -> bool:
    return not (_LOW <= point.x <= _HIGH and _LOW <= point.y <= _HIGH)


def _points(annotation: Any) -> tuple[Point, ...] | None:
    """The points of a known annotation type (None for any other object)."""
    if isinstance(annotation, (LabelAnnotation, MarkerAnnotation)):
        return (annotation.point,)
    if isinstance(annotation, BoundingBoxAnnotation):
        return annotation.rectangle.pt1, annotation.rectangle.pt2
    if isinstance(annotation, RectAnnotation):
        return annotation.rect.pt1, annotation.rect.pt2
    if isinstance(annotation, LineAnnotation):
        return annotation.line.pt1, annotation.line.pt2
    if isinstance(annotation, PolyLineAnnotation):
        return tuple(annotation.polyline.points)
    return None


def _looks_like_pixels(value: Any, depth: int = 0) -> bool:
    """Whether an annotation holds a point far outside the normalised range."""
    points = _points(value)
    if points is not None:
        return any(_outside(point) for point in points)
    if isinstance(value, Point):
        return _outside(value)
    if depth > 3:
        return False
    if isinstance(value, (list, tuple)):
        return any(_looks_like_pixels(item, depth + 1) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(
            _looks_like_pixels(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        )
    return False


_A = TypeVar("_A", bound=Annotation)


def _checked(cls: type[_A], **fields: Any) -> _A:
    """An annotation made of field values that are already checked and converted.

    A bounding box's rectangle and labels are built on every frame from the
    box's own checked values: this skips checking them again. Every field of
    ``cls`` must be given.
    """
    made = object.__new__(cls)
    made.__dict__.update(fields)  # frozen dataclasses refuse setattr, not their __dict__
    return made


class UnknownAnnotationError(ValueError, TypeError):
    """``render`` was given something that is not an annotation (a ValueError, as Backpack
    raised, and a TypeError)."""


class AnnotationDriverBase(ABC):
    """Draws annotations on one kind of context; subclasses implement the ``add_*`` methods.

    A :class:`BoundingBoxAnnotation` is drawn as its rectangle plus its labels,
    each on a filled box in the box's colour with black or white text
    (whichever contrasts more): the top label above the top edge, the bottom
    label under the bottom edge, or just inside the box where outside would
    leave the image. Lines without a thickness get :meth:`line_width`. What a
    backend cannot draw is reported once per kind in the log and counted in
    :attr:`unsupported`.

    Args:
        parent_logger: a logger to attach this driver's logger to.
    """

    DEFAULT_COLOR = Color(255, 255, 255)
    LINE_WIDTH_PIXELS_PER_STEP = 360
    """Lines without a thickness get one pixel per this many pixels of the shorter side."""
    MIN_LINE_WIDTH = 2
    """The thinnest line drawn without a thickness, in pixels (1 px hardly shows on video)."""

    def __init__(self, parent_logger: logging.Logger | None = None) -> None:
        name = type(self).__name__
        self.logger = (
            parent_logger.getChild(name)
            if parent_logger is not None
            else logging.getLogger(f"framescope.annotation.{name}")
        )
        self.unsupported: Counter[str] = Counter()
        self._warned_pixels = False

    def render(self, annotations: Iterable[Annotation] | Annotation, context: Any) -> Any:
        """Draw every annotation on ``context`` in order; return the context.

        ``annotations`` is a list (or any iterable) of annotations, or one
        annotation. Coordinates are normalised (0 to 1 across the image):
        the first annotation with points far outside that (pixel
        coordinates by mistake) is reported once in the log.
        """
        self.check_context(context)
        if isinstance(annotations, Annotation):
            annotations = [annotations]
        for annotation in annotations:
            if not self._warned_pixels and _looks_like_pixels(annotation):
                self._warned_pixels = True
                self.logger.warning(
                    "%s has coordinates far outside 0..1; annotation coordinates are "
                    "normalised (x / width, y / height), not pixels",
                    type(annotation).__name__,
                )
            if isinstance(annotation, LabelAnnotation):
                self.add_label(annotation, context)
            elif isinstance(annotation, RectAnnotation):
                self.add_rect(annotation, context)
            elif isinstance(annotation, BoundingBoxAnnotation):
                self.add_bounding_box(annotation, context)
            elif isinstance(annotation, MarkerAnnotation):
                self.add_marker(annotation, context)
            elif isinstance(annotation, LineAnnotation):
                self.add_line(annotation, context)
            elif isinstance(annotation, PolyLineAnnotation):
                self.add_polyline(annotation, context)
            else:
                raise UnknownAnnotationError(
                    f"{type(self).__name__} cannot draw {type(annotation).__name__!r}: "
                    "annotations must be framescope.annotation types (LabelAnnotation, "
                    "RectAnnotation, LineAnnotation, MarkerAnnotation, PolyLineAnnotation, "
                    "TimestampAnnotation, BoundingBoxAnnotation)"
                )
        return context

    def check_context(self, context: Any) -> None:  # noqa: B027 (optional hook)
        """Raise TypeError when ``context`` is not something this driver draws on."""

    def report_unsupported(self, what: str) -> None:
        """Count something this backend cannot draw; log it the first time."""
        self.unsupported[what] += 1
        if self.unsupported[what] == 1:
            self.logger.warning("%s cannot draw %s; it is skipped", type(self).__name__, what)

    @classmethod
    def line_width(cls, width: int, height: int) -> int:
        """The width of a line without a thickness on a ``width`` x ``height`` image.

        ``max(2, round(min(width, height) / 360))``: 2 px up to 720p, 3 px at
        1080p, 6 px at 4K.
        """
        return max(cls.MIN_LINE_WIDTH, round(min(width, height) / cls.LINE_WIDTH_PIXELS_PER_STEP))

    def label_leaves_image(self, label: LabelAnnotation, context: Any) -> bool:
        """Whether ``label`` drawn as given would reach past the top or bottom of the image.

        Drivers that know their text size answer it; this default says no.
        """
        return False

    def add_bounding_box(self, box: BoundingBoxAnnotation, context: Any) -> None:
        """Draw a bounding box as its rectangle and labels (see the class docs)."""
        rect = box.rectangle
        self.add_rect(
            _checked(RectAnnotation, rect=rect, color=box.color, thickness=None, fill_color=None),
            context,
        )
        color = box.color or self.DEFAULT_COLOR
        for text, corner, outside, inside in (
            (box.top_label, rect.pt_min, VerticalAnchor.BOTTOM, VerticalAnchor.TOP),
            (
                box.bottom_label,
                Point(rect.pt_min.x, rect.pt_max.y),
                VerticalAnchor.TOP,
                VerticalAnchor.BOTTOM,
            ),
        ):
            if not text:
                continue
            label = _checked(
                LabelAnnotation,
                point=corner,
                text=text,
                color=color.text_color(),
                horizontal_anchor=HorizontalAnchor.LEFT,
                vertical_anchor=outside,
                size=1.0,
                background=color,
            )
            if self.label_leaves_image(label, context):
                label = dataclasses.replace(label, vertical_anchor=inside)
            self.add_label(label, context)

    @abstractmethod
    def add_rect(self, rect: RectAnnotation, context: Any) -> None:
        """Draw a rectangle."""

    @abstractmethod
    def add_label(self, label: LabelAnnotation, context: Any) -> None:
        """Draw a label."""

    @abstractmethod
    def add_marker(self, marker: MarkerAnnotation, context: Any) -> None:
        """Draw a marker."""

    @abstractmethod
    def add_line(self, line: LineAnnotation, context: Any) -> None:
        """Draw a line."""

    @abstractmethod
    def add_polyline(self, polyline: PolyLineAnnotation, context: Any) -> None:
        """Draw a polyline (filled first when it has a fill colour)."""

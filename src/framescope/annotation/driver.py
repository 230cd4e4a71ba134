"""The driver contract: ``render(annotations, context) -> context`` on any backend."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from typing import Any

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

__all__ = ["AnnotationDriverBase"]


class AnnotationDriverBase(ABC):
    """Draws annotations on one kind of context; subclasses implement the ``add_*`` methods.

    A :class:`BoundingBoxAnnotation` is drawn as its rectangle plus its labels
    (the top label sits on the box's top edge, the bottom label under its
    bottom edge). What a backend cannot draw is reported once per kind in the
    log and counted in :attr:`unsupported`.

    Args:
        parent_logger: a logger to attach this driver's logger to.
    """

    DEFAULT_COLOR = Color(255, 255, 255)

    def __init__(self, parent_logger: logging.Logger | None = None) -> None:
        name = type(self).__name__
        self.logger = (
            parent_logger.getChild(name)
            if parent_logger is not None
            else logging.getLogger(f"framescope.annotation.{name}")
        )
        self.unsupported: Counter[str] = Counter()

    def render(self, annotations: Iterable[Annotation], context: Any) -> Any:
        """Draw every annotation on ``context`` in order; return the context."""
        self.check_context(context)
        for annotation in annotations:
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
                raise TypeError(
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

    def add_bounding_box(self, box: BoundingBoxAnnotation, context: Any) -> None:
        """Draw a bounding box as its rectangle and labels."""
        rect = box.rectangle
        self.add_rect(RectAnnotation(rect=rect, color=box.color), context)
        if box.top_label:
            self.add_label(
                LabelAnnotation(
                    rect.pt_min,
                    box.top_label,
                    box.color,
                    HorizontalAnchor.LEFT,
                    VerticalAnchor.BOTTOM,
                ),
                context,
            )
        if box.bottom_label:
            self.add_label(
                LabelAnnotation(
                    Point(rect.pt_min.x, rect.pt_max.y),
                    box.bottom_label,
                    box.color,
                    HorizontalAnchor.LEFT,
                    VerticalAnchor.TOP,
                ),
                context,
            )

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

"""Drawing on AWS Panorama media objects (``add_rect`` and ``add_label`` only)."""

from __future__ import annotations

from typing import Any, ClassVar

from framescope.annotation.annotations import (
    HorizontalAnchor,
    LabelAnnotation,
    LineAnnotation,
    MarkerAnnotation,
    MarkerStyle,
    PolyLineAnnotation,
    RectAnnotation,
    VerticalAnchor,
)
from framescope.annotation.driver import AnnotationDriverBase

__all__ = ["PanoramaMediaAnnotationDriver"]


class PanoramaMediaAnnotationDriver(AnnotationDriverBase):
    """Draws on any object with the Panorama media methods ``add_rect(x1, y1, x2, y2)``
    and ``add_label(text, x, y)``, in normalised coordinates clipped to [0, 1].

    That is all such a media object can draw, so: a marker becomes a one- or
    two-character label centred on its point; a line and a polyline are
    skipped; colours, alpha, thickness, fills, label sizes and anchors other
    than left/bottom are ignored. Each such loss is logged once per kind and
    counted in :attr:`unsupported`; nothing raises.
    """

    MARKER_STYLE_TO_STR: ClassVar[dict[MarkerStyle, str]] = {
        MarkerStyle.CROSS: "+",
        MarkerStyle.TILTED_CROSS: "x",
        MarkerStyle.STAR: "*",
        MarkerStyle.DIAMOND: "<>",
        MarkerStyle.SQUARE: "[]",
        MarkerStyle.TRIANGLE_UP: "^",
        MarkerStyle.TRIANGLE_DOWN: "v",
    }

    def check_context(self, context: Any) -> None:
        """The context must have callable ``add_rect`` and ``add_label``."""
        missing = [m for m in ("add_rect", "add_label") if not callable(getattr(context, m, None))]
        if missing:
            raise TypeError(
                f"context must be a Panorama media object with add_rect and add_label; "
                f"{type(context).__name__} lacks {', '.join(missing)}"
            )

    def _note_color(self, color: Any, what: str) -> None:
        if color is not None:
            self.report_unsupported(f"{what} colours")

    def add_rect(self, rect: RectAnnotation, context: Any) -> None:
        """Draw a rectangle outline."""
        x1, y1 = rect.rect.pt_min.clipped()
        x2, y2 = rect.rect.pt_max.clipped()
        self._note_color(rect.color, "rectangle")
        if rect.fill_color is not None:
            self.report_unsupported("rectangle fills")
        if rect.thickness != 1:
            self.report_unsupported("line thickness")
        context.add_rect(x1, y1, x2, y2)

    def add_label(self, label: LabelAnnotation, context: Any) -> None:
        """Draw a label at its point."""
        x, y = label.point.clipped()
        self._note_color(label.color, "label")
        if (
            label.horizontal_anchor is not HorizontalAnchor.LEFT
            or label.vertical_anchor is not VerticalAnchor.BOTTOM
        ):
            self.report_unsupported("label anchors other than LEFT/BOTTOM")
        if label.size != 1.0:
            self.report_unsupported("label sizes")
        context.add_label(label.text, x, y)

    def add_marker(self, marker: MarkerAnnotation, context: Any) -> None:
        """Approximate a marker with a short label on its point."""
        x, y = marker.point.clipped()
        self._note_color(marker.color, "marker")
        context.add_label(self.MARKER_STYLE_TO_STR[marker.style], x, y)

    def add_line(self, line: LineAnnotation, context: Any) -> None:
        """A Panorama media object cannot draw lines: reported and skipped."""
        self.report_unsupported("lines")

    def add_polyline(self, polyline: PolyLineAnnotation, context: Any) -> None:
        """A Panorama media object cannot draw polylines: reported and skipped."""
        self.report_unsupported("polylines")

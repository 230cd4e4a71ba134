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
from framescope.annotation.geometry import Point

__all__ = ["PanoramaMediaAnnotationDriver"]


class PanoramaMediaAnnotationDriver(AnnotationDriverBase):
    """Draws on any object with the Panorama media methods ``add_rect(x1, y1, x2, y2)``
    and ``add_label(text, x, y)``, in normalised coordinates clipped to [0, 1].

    That is all such a media object can draw, so: a marker becomes a one- or
    two-character label centred on its point; a label anchored at its top (or
    centre) moves down a line (or half); a line and a polyline are skipped;
    colours, alpha, thickness, fills, label backgrounds, label sizes and
    horizontal anchors other than left are ignored. Each such loss is logged
    once per kind and counted in :attr:`unsupported`; nothing raises.
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

    LABEL_HEIGHT = 0.04
    """About the height of a media object's label, as a fraction of the frame height."""

    def _label_point(self, label: LabelAnnotation) -> tuple[float, float]:
        """Where the media object's label goes: its text runs up from this point."""
        x, y = label.point.x, label.point.y
        if label.vertical_anchor is VerticalAnchor.TOP:
            y += self.LABEL_HEIGHT
        elif label.vertical_anchor is VerticalAnchor.CENTER:
            y += self.LABEL_HEIGHT / 2
        return x, y

    def label_leaves_image(self, label: LabelAnnotation, context: Any) -> bool:
        """Whether the label, about :attr:`LABEL_HEIGHT` high, would reach past the top or
        bottom of the frame."""
        y = self._label_point(label)[1]
        return y - self.LABEL_HEIGHT < 0 or y > 1

    def add_rect(self, rect: RectAnnotation, context: Any) -> None:
        """Draw a rectangle outline."""
        x1, y1 = rect.rect.pt_min.clipped()
        x2, y2 = rect.rect.pt_max.clipped()
        self._note_color(rect.color, "rectangle")
        if rect.fill_color is not None:
            self.report_unsupported("rectangle fills")
        if rect.thickness is not None:
            self.report_unsupported("line thickness")
        context.add_rect(x1, y1, x2, y2)

    def add_label(self, label: LabelAnnotation, context: Any) -> None:
        """Draw a label at its point (moved down a line for a top or centre anchor)."""
        x, y = Point(*self._label_point(label)).clipped()
        self._note_color(label.color, "label")
        if label.horizontal_anchor is not HorizontalAnchor.LEFT:
            self.report_unsupported("label anchors other than LEFT")
        if label.size != 1.0:
            self.report_unsupported("label sizes")
        if label.background is not None:
            self.report_unsupported("label backgrounds")
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

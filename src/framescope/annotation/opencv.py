"""Drawing on OpenCV images (numpy arrays, BGR)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from framescope._optional import require
from framescope._validation import check_number
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
from framescope.annotation.color import Color
from framescope.annotation.driver import AnnotationDriverBase
from framescope.annotation.geometry import Point

__all__ = ["OpenCVImageAnnotationDriver"]

_Geometry = tuple[int, int, int, int, int, float, int]
_Box = tuple[int, int, int, int]

Drawer = Callable[[Any, int, int], None]
"""Draws opaquely on an image whose origin is at pixel (ox, oy) of the frame."""


def _outline_strips(
    box: tuple[int, int, int, int], reach: int
) -> tuple[tuple[int, int, int, int], ...]:
    """The parts of ``box`` an outline ``reach`` px from its sides covers: the top and
    bottom strips, then the left and right ones between them (no pixel twice).

    Blending only these, not the whole box, keeps a see-through outline's cost
    to its own pixels.
    """
    x0, y0, x1, y1 = box
    band = 2 * reach + 1
    if x1 - x0 <= 2 * band or y1 - y0 <= 2 * band:
        return (box,)
    return (
        (x0, y0, x1, y0 + band),
        (x0, y1 - band, x1, y1),
        (x0, y0 + band, x0 + band, y1 - band),
        (x1 - band, y0 + band, x1, y1 - band),
    )


def import_cv2() -> Any:
    """The cv2 module, or an ImportError naming the extra to install."""
    return require("cv2", "opencv", "the OpenCV driver")


class OpenCVImageAnnotationDriver(AnnotationDriverBase):
    """Draws on a numpy image (H x W x 3 BGR, H x W x 4 BGRA or H x W gray, uint8), in place.

    A colour with alpha < 1 is blended over the region the annotation covers
    only (its bounding box plus the line width), never over a copy of the
    whole frame. Text scales with the image: ``size=1`` is font scale 1 on a
    400-pixel-high image.
    """

    IMG_HEIGHT_FOR_UNIT_FONT_SCALE = 400
    MARKER_SIZE_AT_UNIT = 20  # pixels on a 400-pixel-high image
    DEFAULT_FONT = 1  # cv2.FONT_HERSHEY_PLAIN (a class attribute, as in Backpack)
    DEFAULT_LINEWIDTH = 1  # the thinnest text stroke, in pixels
    DEFAULT_TEXT_PADDING = (2, 2)  # pixels between an anchor and its label's side, as Backpack's
    # OpenCV's cv2.MARKER_* values (stable since OpenCV 3), so cv2 is imported only by a driver.
    MARKER_STYLE_TO_CV2: ClassVar[dict[MarkerStyle, int]] = {
        MarkerStyle.CROSS: 0,  # cv2.MARKER_CROSS
        MarkerStyle.TILTED_CROSS: 1,  # cv2.MARKER_TILTED_CROSS
        MarkerStyle.STAR: 2,  # cv2.MARKER_STAR
        MarkerStyle.DIAMOND: 3,  # cv2.MARKER_DIAMOND
        MarkerStyle.SQUARE: 4,  # cv2.MARKER_SQUARE
        MarkerStyle.TRIANGLE_UP: 5,  # cv2.MARKER_TRIANGLE_UP
        MarkerStyle.TRIANGLE_DOWN: 6,  # cv2.MARKER_TRIANGLE_DOWN
    }
    """Each marker style to the ``cv2.MARKER_*`` shape it is drawn with (Backpack's name)."""

    def __init__(self, parent_logger: Any = None) -> None:
        super().__init__(parent_logger)
        self._cv2 = import_cv2()
        self._geometry: tuple[LabelAnnotation, tuple[int, ...], tuple[_Geometry, _Box]] | None = (
            None
        )
        self._np = require("numpy", "opencv", "the OpenCV driver")

    def draw_transparent(self, alpha: float, context: Any, drawer: Callable[[Any], None]) -> None:
        """Draw with ``drawer(image)`` on ``context``, blended at opacity ``alpha`` (Backpack's).

        ``alpha`` 1 draws opaquely, 0 draws nothing, in between blends the
        drawing over the image (as Backpack's code does; its docstring says the
        reverse).
        """
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
        if alpha == 1.0:
            drawer(context)
        elif alpha > 0.0:
            overlay = context.copy()
            drawer(overlay)
            self._np.copyto(context, self._cv2.addWeighted(overlay, alpha, context, 1 - alpha, 0))

    def check_context(self, context: Any) -> None:
        """The context must be a non-empty, writeable, C-contiguous uint8 image (1, 3, 4 channels).

        OpenCV draws in place into such arrays only; anything else would fail
        inside cv2 or draw into a temporary copy.
        """
        np = self._np
        if not isinstance(context, np.ndarray):
            raise TypeError(f"context must be a numpy image, got {type(context).__name__}")
        shape_ok = context.ndim == 2 or (context.ndim == 3 and context.shape[2] in (1, 3, 4))
        if context.dtype != np.uint8 or not shape_ok:
            raise TypeError(
                "context must be a uint8 image of shape (H, W), (H, W, 3) or (H, W, 4); "
                f"got {context.dtype} {context.shape}"
            )
        if context.shape[0] == 0 or context.shape[1] == 0:
            raise ValueError(f"context must be a non-empty image, got shape {context.shape}")
        if not context.flags.writeable:
            raise ValueError("context must be writeable: the driver draws in place (pass a copy)")
        if not context.flags.c_contiguous:
            raise ValueError(
                "context must be C-contiguous (a slice with steps, a transposed or "
                "Fortran-order array is not): pass np.ascontiguousarray(image)"
            )

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def scale(point: Point, context: Any) -> tuple[int, int]:
        """Pixel coordinates of a normalised point on ``context`` (clipped to the image)."""
        height, width = context.shape[:2]
        return Point.from_value(point).to_pixels(width, height)

    @staticmethod
    def _ink(color: Color, context: Any) -> tuple[int, ...]:
        if context.ndim == 2 or context.shape[2] == 1:
            return (round(0.299 * color.r + 0.587 * color.g + 0.114 * color.b),)
        if context.shape[2] == 4:
            return color.b, color.g, color.r, 255
        return color.bgr

    def _paint(
        self, image: Any, box: tuple[int, int, int, int], alpha: float, draw: Drawer
    ) -> None:
        """Draw with ``draw``; blend at ``alpha`` over ``box`` (x0, y0, x1, y1) only."""
        if alpha <= 0.0:
            return
        if alpha >= 1.0:
            draw(image, 0, 0)
            return
        height, width = image.shape[:2]
        x0, y0 = max(box[0], 0), max(box[1], 0)
        x1, y1 = min(box[2], width), min(box[3], height)
        if x1 <= x0 or y1 <= y0:
            return
        region = image[y0:y1, x0:x1]
        overlay = region.copy()
        draw(overlay, x0, y0)
        self._cv2.addWeighted(overlay, alpha, region, 1.0 - alpha, 0.0, dst=region)

    def _width(self, thickness: int | None, context: Any) -> int:
        if thickness is not None:
            return thickness
        height, width = context.shape[:2]
        return self.line_width(width, height)

    # -- annotations ----------------------------------------------------------------

    def add_rect(self, rect: RectAnnotation, context: Any) -> None:
        """Draw a rectangle (filled first when it has a fill colour)."""
        cv2 = self._cv2
        height, width = context.shape[:2]  # annotations hold Points: no conversion needed
        x0, y0 = rect.rect.pt_min.to_pixels(width, height)
        x1, y1 = rect.rect.pt_max.to_pixels(width, height)
        t = self._width(rect.thickness, context)
        box = (x0 - t, y0 - t, x1 + t + 1, y1 + t + 1)
        if rect.fill_color is not None:
            fill = self._ink(rect.fill_color, context)

            def draw_fill(img: Any, ox: int, oy: int) -> None:
                cv2.rectangle(img, (x0 - ox, y0 - oy), (x1 - ox, y1 - oy), fill, -1)

            self._paint(context, box, rect.fill_color.alpha, draw_fill)
        color = rect.color or self.DEFAULT_COLOR
        ink = self._ink(color, context)
        if color.alpha >= 1.0:  # the common case, without a closure
            cv2.rectangle(context, (x0, y0), (x1, y1), ink, t)
            return

        def draw(img: Any, ox: int, oy: int) -> None:
            cv2.rectangle(img, (x0 - ox, y0 - oy), (x1 - ox, y1 - oy), ink, t)

        for strip in _outline_strips(box, t):
            self._paint(context, strip, color.alpha, draw)

    def text_geometry(self, label: LabelAnnotation, context: Any) -> _Geometry:
        """Where a label goes: (org x, org y, width, height, baseline, font scale, thickness).

        A label with a background is placed so that the background's edge,
        :meth:`label_padding` pixels around the text, sits on the anchor point,
        and is moved sideways to stay inside the image.
        """
        return self._layout(label, context)[0]

    def _layout(self, label: LabelAnnotation, context: Any) -> tuple[_Geometry, _Box]:
        """The label's text geometry and the box it covers (kept for the same label)."""
        memo = self._geometry
        if memo is not None and memo[0] is label and memo[1] == context.shape:
            return memo[2]  # the same label again: placed, then drawn
        height, width = context.shape[:2]
        scale = height / self.IMG_HEIGHT_FOR_UNIT_FONT_SCALE * label.size
        thickness = max(int(scale), self.DEFAULT_LINEWIDTH)
        (text_w, text_h), baseline = self._cv2.getTextSize(
            label.text, self.DEFAULT_FONT, scale, thickness
        )
        x, y = label.point.to_pixels(width, height)
        horizontal, vertical = label.horizontal_anchor, label.vertical_anchor
        # Backpack keeps a label placed by its anchors DEFAULT_TEXT_PADDING away
        # from them (all but the default left-bottom placement).
        pad_x, pad_y = self.DEFAULT_TEXT_PADDING
        if label.background is not None:
            pad_x = pad_y = self.label_padding(text_h)
        elif horizontal is HorizontalAnchor.LEFT and vertical is VerticalAnchor.BOTTOM:
            pad_x = pad_y = 0
        if horizontal is HorizontalAnchor.CENTER:
            x -= text_w // 2
        elif horizontal is HorizontalAnchor.RIGHT:
            x -= text_w + pad_x
        else:
            x += pad_x
        if vertical is VerticalAnchor.TOP:
            y += text_h + pad_y
        elif vertical is VerticalAnchor.CENTER:
            y += text_h // 2
        elif vertical is VerticalAnchor.BOTTOM:
            y -= baseline + pad_y
        if label.background is not None:
            x = max(pad_x, min(x, width - text_w - pad_x))
            box = (x - pad_x, y - text_h - pad_y, x + text_w + pad_x, y + baseline + pad_y)
        else:
            t = thickness
            box = (x - t, y - text_h - t, x + text_w + t, y + baseline + t)
        layout = (x, y, text_w, text_h, baseline, scale, thickness), box
        self._geometry = (label, context.shape, layout)
        return layout

    @staticmethod
    def label_padding(text_height: int) -> int:
        """Pixels between a label's text and the edge of its background box."""
        return max(2, round(text_height / 4))

    def label_box(self, label: LabelAnnotation, context: Any) -> _Box:
        """(x0, y0, x1, y1): the pixels a label covers (its background box when it has one)."""
        return self._layout(label, context)[1]

    def label_leaves_image(self, label: LabelAnnotation, context: Any) -> bool:
        """Whether the label would reach past the top or bottom of the image."""
        _, y0, _, y1 = self._layout(label, context)[1]
        return y0 < 0 or y1 > context.shape[0]

    def add_label(self, label: LabelAnnotation, context: Any) -> None:
        """Draw a label, placed by its anchors, on its background box when it has one."""
        cv2 = self._cv2
        (x, y, _, _, _, scale, thickness), box = self._layout(label, context)
        background = label.background
        if background is not None:
            fill = self._ink(background, context)
            if background.alpha >= 1.0:  # the common case, without a closure
                cv2.rectangle(context, box[:2], box[2:], fill, -1)
            else:

                def draw_background(img: Any, ox: int, oy: int) -> None:
                    corner = (box[0] - ox, box[1] - oy)
                    cv2.rectangle(img, corner, (box[2] - ox, box[3] - oy), fill, -1)

                self._paint(context, box, background.alpha, draw_background)
        color = label.color or self.DEFAULT_COLOR
        ink, font, text = self._ink(color, context), self.DEFAULT_FONT, label.text
        if color.alpha >= 1.0:
            cv2.putText(context, text, (x, y), font, scale, ink, thickness, cv2.LINE_AA)
            return

        def draw(img: Any, ox: int, oy: int) -> None:
            cv2.putText(img, text, (x - ox, y - oy), font, scale, ink, thickness, cv2.LINE_AA)

        self._paint(context, box, color.alpha, draw)

    def add_marker(self, marker: MarkerAnnotation, context: Any) -> None:
        """Draw a marker of the named style."""
        cv2 = self._cv2
        height = context.shape[0]
        size = max(
            3,
            round(
                self.MARKER_SIZE_AT_UNIT
                * marker.size
                * height
                / self.IMG_HEIGHT_FOR_UNIT_FONT_SCALE
            ),
        )
        thickness = max(1, size // 10)
        x, y = self.scale(marker.point, context)
        color = marker.color or self.DEFAULT_COLOR
        ink, kind = self._ink(color, context), self.MARKER_STYLE_TO_CV2[marker.style]
        reach = size // 2 + thickness + 1
        box = (x - reach, y - reach, x + reach + 1, y + reach + 1)

        def draw(img: Any, ox: int, oy: int) -> None:
            cv2.drawMarker(img, (x - ox, y - oy), ink, kind, size, thickness)

        self._paint(context, box, color.alpha, draw)

    def add_line(self, line: LineAnnotation, context: Any) -> None:
        """Draw a line segment."""
        cv2 = self._cv2
        x0, y0 = self.scale(line.line.pt1, context)
        x1, y1 = self.scale(line.line.pt2, context)
        t = self._width(line.thickness, context)
        color = line.color or self.DEFAULT_COLOR
        ink = self._ink(color, context)
        box = (min(x0, x1) - t, min(y0, y1) - t, max(x0, x1) + t + 1, max(y0, y1) + t + 1)

        def draw(img: Any, ox: int, oy: int) -> None:
            cv2.line(img, (x0 - ox, y0 - oy), (x1 - ox, y1 - oy), ink, t, cv2.LINE_AA)

        self._paint(context, box, color.alpha, draw)

    def add_polyline(self, polyline: PolyLineAnnotation, context: Any) -> None:
        """Draw a polyline; a fill colour fills the polygon first."""
        cv2, np = self._cv2, self._np
        points = np.array(
            [self.scale(point, context) for point in polyline.polyline.points], dtype=np.int32
        )
        t = self._width(polyline.thickness, context)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        box = (int(x0) - t, int(y0) - t, int(x1) + t + 1, int(y1) + t + 1)
        if polyline.fill_color is not None:
            fill = self._ink(polyline.fill_color, context)

            def draw_fill(img: Any, ox: int, oy: int) -> None:
                cv2.fillPoly(img, [points - (ox, oy)], fill)

            self._paint(context, box, polyline.fill_color.alpha, draw_fill)
        color = polyline.color or self.DEFAULT_COLOR
        ink, closed = self._ink(color, context), polyline.polyline.closed

        def draw(img: Any, ox: int, oy: int) -> None:
            cv2.polylines(img, [points - (ox, oy)], closed, ink, t, cv2.LINE_AA)

        self._paint(context, box, color.alpha, draw)

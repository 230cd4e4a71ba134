"""Drawing on Pillow images."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from framescope._optional import require
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

__all__ = ["PillowImageAnnotationDriver"]

_HORIZONTAL = {
    HorizontalAnchor.LEFT: "l",
    HorizontalAnchor.CENTER: "m",
    HorizontalAnchor.RIGHT: "r",
}
_VERTICAL = {
    VerticalAnchor.TOP: "t",
    VerticalAnchor.CENTER: "m",
    VerticalAnchor.BASELINE: "s",
    VerticalAnchor.BOTTOM: "d",
}


def _import(module: str) -> Any:
    return require(module, "pillow", "the Pillow driver")


class PillowImageAnnotationDriver(AnnotationDriverBase):
    """Draws on a ``PIL.Image.Image`` (RGB, RGBA or L), in place.

    A colour with alpha < 1 is composited over the annotation's own region
    only. Text uses Pillow's default font at a size that scales with the
    image (``size=1``: 1/40 of the image height).
    """

    TEXT_HEIGHT_AT_UNIT = 1 / 40
    MARKER_SIZE_AT_UNIT = 1 / 20

    def __init__(self, parent_logger: Any = None) -> None:
        super().__init__(parent_logger)
        self._image = _import("PIL.Image")
        self._draw = _import("PIL.ImageDraw")
        self._font = _import("PIL.ImageFont")
        self._fonts: dict[int, Any] = {}

    def check_context(self, context: Any) -> None:
        """The context must be a non-empty Pillow image in mode RGB, RGBA or L."""
        if not isinstance(context, self._image.Image):
            raise TypeError(f"context must be a PIL.Image.Image, got {type(context).__name__}")
        if context.mode not in ("RGB", "RGBA", "L"):
            raise TypeError(f"context must be an RGB, RGBA or L image, got mode {context.mode!r}")
        if context.width == 0 or context.height == 0:
            raise ValueError(f"context must be a non-empty image, got size {context.size}")

    def _pixel(self, point: Point, context: Any) -> tuple[int, int]:
        return Point.from_value(point).to_pixels(*context.size)

    @staticmethod
    def _ink(color: Color, mode: str, alpha: int = 255) -> Any:
        if mode == "L":
            return round(0.299 * color.r + 0.587 * color.g + 0.114 * color.b)
        return (color.r, color.g, color.b, alpha) if alpha != 255 or mode == "RGBA" else color.rgb

    def _paint(
        self,
        context: Any,
        box: tuple[int, int, int, int],
        color: Color,
        draw: Callable[[Any, Any, int, int], None],
    ) -> None:
        """``draw(drawer, ink, ox, oy)``; at alpha < 1 it draws on a layer over ``box`` only."""
        if color.alpha <= 0.0:
            return
        if color.alpha >= 1.0:
            draw(self._draw.Draw(context), self._ink(color, context.mode), 0, 0)
            return
        width, height = context.size
        x0, y0 = max(box[0], 0), max(box[1], 0)
        x1, y1 = min(box[2], width), min(box[3], height)
        if x1 <= x0 or y1 <= y0:
            return
        region = context.crop((x0, y0, x1, y1)).convert("RGBA")
        layer = self._image.new("RGBA", region.size, (0, 0, 0, 0))
        draw(self._draw.Draw(layer), self._ink(color, "RGBA", round(color.alpha * 255)), x0, y0)
        blended = self._image.alpha_composite(region, layer).convert(context.mode)
        context.paste(blended, (x0, y0))

    def _font_for(self, size: float, height: int) -> Any:
        pixels = max(6, round(height * self.TEXT_HEIGHT_AT_UNIT * size))
        font = self._fonts.get(pixels)
        if font is None:
            font = self._fonts[pixels] = self._font.load_default(size=pixels)
        return font

    def _width(self, thickness: int | None, context: Any) -> int:
        return thickness if thickness is not None else self.line_width(*context.size)

    def add_rect(self, rect: RectAnnotation, context: Any) -> None:
        """Draw a rectangle (filled first when it has a fill colour)."""
        x0, y0 = self._pixel(rect.rect.pt_min, context)
        x1, y1 = self._pixel(rect.rect.pt_max, context)
        t = self._width(rect.thickness, context)
        box = (x0 - t, y0 - t, x1 + t + 1, y1 + t + 1)
        if rect.fill_color is not None:
            self._paint(
                context,
                box,
                rect.fill_color,
                lambda d, ink, ox, oy: d.rectangle((x0 - ox, y0 - oy, x1 - ox, y1 - oy), fill=ink),
            )
        self._paint(
            context,
            box,
            rect.color or self.DEFAULT_COLOR,
            lambda d, ink, ox, oy: d.rectangle(
                (x0 - ox, y0 - oy, x1 - ox, y1 - oy), outline=ink, width=t
            ),
        )

    def label_box(
        self, label: LabelAnnotation, context: Any
    ) -> tuple[tuple[int, int, int, int], tuple[int, int], str, Any]:
        """Where a label goes: (pixel box it covers, text position, Pillow anchor, font).

        A label with a background is placed so that the background's edge, a
        few pixels around the text, sits on the anchor point, and is moved
        sideways to stay inside the image.
        """
        font = self._font_for(label.size, context.size[1])
        x, y = self._pixel(label.point, context)
        anchor = _HORIZONTAL[label.horizontal_anchor] + _VERTICAL[label.vertical_anchor]
        left, top, right, bottom = self._draw.Draw(context).textbbox(
            (x, y), label.text, font=font, anchor=anchor
        )
        if label.background is None:
            x0, y0 = math.floor(left) - 1, math.floor(top) - 1
            x1, y1 = math.ceil(right) + 1, math.ceil(bottom) + 1
            return (x0, y0, x1, y1), (x, y), anchor, font
        pad = max(2, round((bottom - top) / 4))
        dx = {"l": pad, "m": 0, "r": -pad}[anchor[0]]
        dy = {"t": pad, "m": 0, "s": -pad, "d": -pad}[anchor[1]]
        width = context.size[0]
        dx += int(max(0, pad - (left + dx)) - max(0, right + dx + pad - width))
        x0, y0 = math.floor(left + dx) - pad, math.floor(top + dy) - pad
        x1, y1 = math.ceil(right + dx) + pad, math.ceil(bottom + dy) + pad
        return (x0, y0, x1, y1), (x + dx, y + dy), anchor, font

    def label_leaves_image(self, label: LabelAnnotation, context: Any) -> bool:
        """Whether the label would reach past the top or bottom of the image."""
        (_, y0, _, y1), _, _, _ = self.label_box(label, context)
        return y0 < 0 or y1 > context.size[1]

    def add_label(self, label: LabelAnnotation, context: Any) -> None:
        """Draw a label, placed by its anchors, on its background box when it has one."""
        box, (x, y), anchor, font = self.label_box(label, context)
        if label.background is not None:
            self._paint(
                context,
                box,
                label.background,
                lambda d, ink, ox, oy: d.rectangle(
                    (box[0] - ox, box[1] - oy, box[2] - ox - 1, box[3] - oy - 1), fill=ink
                ),
            )
        self._paint(
            context,
            box,
            label.color or self.DEFAULT_COLOR,
            lambda d, ink, ox, oy: d.text(
                (x - ox, y - oy), label.text, fill=ink, font=font, anchor=anchor
            ),
        )

    def add_marker(self, marker: MarkerAnnotation, context: Any) -> None:
        """Draw a marker of the named style."""
        height = context.size[1]
        half = max(2, round(height * self.MARKER_SIZE_AT_UNIT * marker.size / 2))
        thickness = max(1, half // 5)
        x, y = self._pixel(marker.point, context)
        style = marker.style

        def draw(d: Any, ink: Any, ox: int, oy: int) -> None:
            cx, cy = x - ox, y - oy
            if style in (MarkerStyle.CROSS, MarkerStyle.STAR):
                d.line((cx - half, cy, cx + half, cy), fill=ink, width=thickness)
                d.line((cx, cy - half, cx, cy + half), fill=ink, width=thickness)
            if style in (MarkerStyle.TILTED_CROSS, MarkerStyle.STAR):
                d.line((cx - half, cy - half, cx + half, cy + half), fill=ink, width=thickness)
                d.line((cx - half, cy + half, cx + half, cy - half), fill=ink, width=thickness)
            shapes = {
                MarkerStyle.DIAMOND: [
                    (cx, cy - half),
                    (cx + half, cy),
                    (cx, cy + half),
                    (cx - half, cy),
                ],
                MarkerStyle.SQUARE: [
                    (cx - half, cy - half),
                    (cx + half, cy - half),
                    (cx + half, cy + half),
                    (cx - half, cy + half),
                ],
                MarkerStyle.TRIANGLE_UP: [
                    (cx, cy - half),
                    (cx + half, cy + half),
                    (cx - half, cy + half),
                ],
                MarkerStyle.TRIANGLE_DOWN: [
                    (cx - half, cy - half),
                    (cx + half, cy - half),
                    (cx, cy + half),
                ],
            }
            if style in shapes:
                d.polygon(shapes[style], outline=ink, width=thickness)

        reach = half + thickness + 1
        self._paint(
            context,
            (x - reach, y - reach, x + reach + 1, y + reach + 1),
            marker.color or self.DEFAULT_COLOR,
            draw,
        )

    def add_line(self, line: LineAnnotation, context: Any) -> None:
        """Draw a line segment."""
        x0, y0 = self._pixel(line.line.pt1, context)
        x1, y1 = self._pixel(line.line.pt2, context)
        t = self._width(line.thickness, context)
        box = (min(x0, x1) - t, min(y0, y1) - t, max(x0, x1) + t + 1, max(y0, y1) + t + 1)
        self._paint(
            context,
            box,
            line.color or self.DEFAULT_COLOR,
            lambda d, ink, ox, oy: d.line((x0 - ox, y0 - oy, x1 - ox, y1 - oy), fill=ink, width=t),
        )

    def add_polyline(self, polyline: PolyLineAnnotation, context: Any) -> None:
        """Draw a polyline; a fill colour fills the polygon first."""
        points = [self._pixel(point, context) for point in polyline.polyline.points]
        t = self._width(polyline.thickness, context)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = (min(xs) - t, min(ys) - t, max(xs) + t + 1, max(ys) + t + 1)

        def shifted(ox: int, oy: int) -> list[tuple[int, int]]:
            return [(px - ox, py - oy) for px, py in points]

        if polyline.fill_color is not None:
            self._paint(
                context,
                box,
                polyline.fill_color,
                lambda d, ink, ox, oy: d.polygon(shifted(ox, oy), fill=ink),
            )
        closed = polyline.polyline.closed

        def outline(d: Any, ink: Any, ox: int, oy: int) -> None:
            path = shifted(ox, oy)
            if closed:
                path.append(path[0])
            d.line(path, fill=ink, width=t, joint="curve")

        self._paint(context, box, polyline.color or self.DEFAULT_COLOR, outline)

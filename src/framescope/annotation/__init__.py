"""Draw results on frames: one annotation API, several backends.

Coordinates are normalised to [0, 1] (points outside are clipped when drawn).
Describe what to draw with annotations, then hand the same list to any driver::

    from framescope.annotation import (
        OpenCVImageAnnotationDriver, Point, LabelAnnotation, RectAnnotation, TimestampAnnotation,
    )

    annotations = [
        TimestampAnnotation(),
        RectAnnotation(point1=Point(0.1, 0.1), point2=Point(0.9, 0.9)),
        LabelAnnotation(point=Point(0.5, 0.5), text="Hello World!"),
    ]
    rendered = OpenCVImageAnnotationDriver().render(annotations, frame.copy())

The OpenCV driver needs ``framescope[opencv]``, the Pillow driver Pillow; both
are imported only when a driver is created.
"""

from framescope.annotation.annotations import (
    Annotation,
    BoundingBoxAnnotation,
    HorizontalAnchor,
    LabelAnnotation,
    LineAnnotation,
    MarkerAnnotation,
    MarkerStyle,
    PolyLineAnnotation,
    RectAnnotation,
    TimestampAnnotation,
    VerticalAnchor,
)
from framescope.annotation.color import ID_PALETTE, Color, ColorMap, ColorValueError, HTMLColors
from framescope.annotation.driver import AnnotationDriverBase, UnknownAnnotationError
from framescope.annotation.geometry import Intersection, Line, Point, PolyLine, Rectangle
from framescope.annotation.opencv import OpenCVImageAnnotationDriver
from framescope.annotation.panorama import PanoramaMediaAnnotationDriver
from framescope.annotation.pillow import PillowImageAnnotationDriver

__all__ = [
    "ID_PALETTE",
    "Annotation",
    "AnnotationDriverBase",
    "BoundingBoxAnnotation",
    "Color",
    "ColorMap",
    "ColorValueError",
    "HTMLColors",
    "HorizontalAnchor",
    "Intersection",
    "LabelAnnotation",
    "Line",
    "LineAnnotation",
    "MarkerAnnotation",
    "MarkerStyle",
    "OpenCVImageAnnotationDriver",
    "PanoramaMediaAnnotationDriver",
    "PillowImageAnnotationDriver",
    "Point",
    "PolyLine",
    "PolyLineAnnotation",
    "RectAnnotation",
    "Rectangle",
    "TimestampAnnotation",
    "UnknownAnnotationError",
    "VerticalAnchor",
]

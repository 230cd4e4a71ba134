"""A decoded picture as a numpy array, in the layout a source was asked for.

BGR (or RGB) from the decoder's 8-bit 4:2:0 YUV in BT.601 limited range, of
an even height (what H.264 and HEVC streams without other colour tags
decode to), is converted with OpenCV when it can be imported: faster than
FFmpeg's swscale, and the same up to how chroma is upsampled (OpenCV repeats
each chroma sample over its 2 x 2 pixels, swscale interpolates: a mean
absolute difference below 1, 99.9 % of values within 3, up to about 20 at a
sharp colour edge). Everything else (other colour matrices or full range,
10-bit, 4:2:2, 4:4:4, other target formats, or no OpenCV) is PyAV's
conversion, the values of ``to_ndarray``, through one swscale context kept
for the source (``to_ndarray`` sets one up for every frame, which costs more
than the conversion itself).

``native`` keeps the decoder's format: 4:2:0 pictures as one array of
(H * 3/2) x W (the Y plane, then U and V, or the interleaved UV of NV12), the
layout ``cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)`` (or ``_NV12``) and
most inference runtimes take.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from framescope._optional import require

__all__ = ["NATIVE", "Pictures", "check_pixel_format", "native_array", "yuv420_array"]

logger = logging.getLogger(__name__)

_np = require("numpy", "video", "video input")
_av = require("av", "video", "video input")
_reformatter_module = require("av.video.reformatter", "video", "video input")

NATIVE = "native"

# FFmpeg's AVColorSpace values that swscale converts with the BT.601 matrix,
# as cvtColor does: unspecified (swscale's default), BT470BG, SMPTE170M.
_BT601 = frozenset({2, 5, 6})
# AVColorRange: unspecified (limited, for a non-"j" format) and MPEG (limited).
_LIMITED = frozenset({0, 1})
# 4:2:0 layouts that make one (H * 3/2) x W array: name -> (dtype, planes).
_YUV420 = {
    "yuv420p": ("uint8", 3),
    "yuvj420p": ("uint8", 3),
    "yuv420p10le": ("uint16", 3),
    "nv12": ("uint8", 2),
    "nv21": ("uint8", 2),
}
_CV_CODES = {
    ("yuv420p", "bgr24"): "COLOR_YUV2BGR_I420",
    ("yuv420p", "rgb24"): "COLOR_YUV2RGB_I420",
    ("nv12", "bgr24"): "COLOR_YUV2BGR_NV12",
    ("nv12", "rgb24"): "COLOR_YUV2RGB_NV12",
    ("nv21", "bgr24"): "COLOR_YUV2BGR_NV21",
    ("nv21", "rgb24"): "COLOR_YUV2RGB_NV21",
}
_TWO_PLANE_CODES = {key: name for key, name in _CV_CODES.items() if key[0] != "yuv420p"}
_UINT8 = _np.dtype("uint8")
_EXAMPLES = "'bgr24', 'rgb24', 'gray', 'yuv420p', 'nv12'"


def check_pixel_format(value: object) -> str:
    """``native``, or an FFmpeg pixel format name; TypeError / ValueError naming both."""
    allowed = f"'native' or an FFmpeg pixel format name (e.g. {_EXAMPLES})"
    if not isinstance(value, str):
        raise TypeError(f"pixel_format must be {allowed}, got {type(value).__name__}")
    if value == NATIVE:
        return value
    try:
        _av.VideoFormat(value)
    except (ValueError, TypeError):
        raise ValueError(f"pixel_format must be {allowed}, got {value!r}") from None
    return value


def _load_cv2() -> Any:
    """OpenCV, or None when it cannot be imported (PyAV converts then)."""
    try:
        return importlib.import_module("cv2")
    except ImportError:
        logger.debug("OpenCV not importable: PyAV converts decoded frames", exc_info=True)
        return None


class Pictures:
    """Turns one source's decoded ``av.VideoFrame`` s into numpy arrays.

    Args:
        pixel_format: ``native`` or the FFmpeg pixel format of the arrays.

    Attributes:
        converter: how the last picture was made: ``opencv`` (cvtColor from
            the decoder's YUV), ``pyav`` (PyAV's ``to_ndarray``, FFmpeg's
            swscale), ``none`` (the decoder's own planes); None before the
            first.
    """

    def __init__(self, pixel_format: str) -> None:
        self.pixel_format = check_pixel_format(pixel_format)
        wants_cv2 = any(target == pixel_format for _, target in _CV_CODES)
        self._cv2: Any = _load_cv2() if wants_cv2 else None
        # What cvtColor reads besides the decoder's planes (a 4:2:0 buffer of
        # even sides, or interleaved chroma), reused frame to frame.
        self._scratch: Any = None
        # One swscale context for the whole source: frame.to_ndarray(format=...)
        # makes a new one for every frame, which costs more than the conversion.
        self._reformatter = _reformatter_module.VideoReformatter()
        self.converter: str | None = None

    def convert(self, frame: Any) -> tuple[Any, str, tuple[int, int]]:
        """The frame's picture: (array, its pixel format, (width, height))."""
        size = (frame.width, frame.height)
        if self.pixel_format == NATIVE:
            self.converter = "none"
            return native_array(frame), frame.format.name, size
        code = self._cv_code(frame)
        if code is None:
            self.converter = "pyav"
            converted = self._reformatter.reformat(frame, format=self.pixel_format)
            return converted.to_ndarray(), self.pixel_format, size
        self.converter = "opencv"
        if frame.width & 1:  # copied into an I420 / NV12 buffer of even sides
            self._scratch = yuv420_array(frame, self._scratch)
            image = self._cv2.cvtColor(self._scratch, code)
            return _np.ascontiguousarray(image[:, : frame.width]), self.pixel_format, size
        return self._two_planes(frame), self.pixel_format, size

    def _two_planes(self, frame: Any) -> Any:
        """BGR / RGB of an even-width frame, read from the decoder's luma plane in place."""
        width, height = frame.width, frame.height
        luma = _plane(frame.planes[0], height, width, _UINT8)
        if frame.format.name == "yuv420p":  # U and V interleaved into NV12's chroma plane
            rows, cols = height // 2, width // 2
            u = _plane(frame.planes[1], rows, cols, _UINT8)
            v = _plane(frame.planes[2], rows, cols, _UINT8)
            if self._scratch is None or self._scratch.shape != (rows, cols, 2):
                self._scratch = _np.empty((rows, cols, 2), _UINT8)
            chroma = self._cv2.merge([u, v], dst=self._scratch)
            code = _TWO_PLANE_CODES["nv12", self.pixel_format]
        else:  # NV12 / NV21: both planes as they are
            pairs = _plane(frame.planes[1], height // 2, width, _UINT8)
            chroma = pairs.reshape(height // 2, width // 2, 2)  # a view: pairs are samples
            code = _TWO_PLANE_CODES[frame.format.name, self.pixel_format]
        return self._cv2.cvtColorTwoPlane(luma, chroma, getattr(self._cv2, code))

    def _cv_code(self, frame: Any) -> int | None:
        """cvtColor's code when it converts this frame as FFmpeg would, else None."""
        if self._cv2 is None:
            return None
        name = _CV_CODES.get((frame.format.name, self.pixel_format))
        if name is None or frame.colorspace not in _BT601 or frame.color_range not in _LIMITED:
            return None
        if any(plane.line_size <= 0 for plane in frame.planes):  # a flipped picture
            return None
        if frame.height & 1:
            # swscale stretches the chroma of an odd height over all its rows
            # (colours move by up to a row); 4:2:0 spans it two rows per sample.
            return None
        return int(getattr(self._cv2, name))


def native_array(frame: Any) -> Any:
    """The frame in its own pixel format, without conversion (see the module's doc)."""
    if frame.format.name in _YUV420 and all(plane.line_size > 0 for plane in frame.planes):
        return yuv420_array(frame, None)
    try:
        return frame.to_ndarray()
    except (AssertionError, ValueError) as error:  # PyAV has no array layout for it
        raise ValueError(
            f"pixel_format='native': the decoder gives {frame.format.name} "
            f"{frame.width}x{frame.height}, which PyAV cannot give as an array ({error}); "
            f"pass pixel_format='bgr24' or another format (e.g. {_EXAMPLES})"
        ) from error


def yuv420_array(frame: Any, out: Any) -> Any:
    """A 4:2:0 frame's planes as one (H' * 3/2) x W' array (H', W': the sides rounded up to even).

    Copies the planes (without their line padding) into ``out`` when it has
    the right shape and type, else into a new array. An odd last row or
    column is repeated, so the array is what ``cvtColor`` takes.
    """
    dtype_name, planes = _YUV420[frame.format.name]
    dtype = _np.dtype(dtype_name)
    width, height = frame.width, frame.height
    even_w, even_h = width + (width & 1), height + (height & 1)
    if out is None or out.shape != (even_h * 3 // 2, even_w) or out.dtype != dtype:
        out = _np.empty((even_h * 3 // 2, even_w), dtype)
    flat = out.reshape(-1)
    luma = flat[: even_h * even_w].reshape(even_h, even_w)
    luma[:height, :width] = _plane(frame.planes[0], height, width, dtype)
    if width & 1:
        luma[:height, width] = luma[:height, width - 1]
    if height & 1:
        luma[height] = luma[height - 1]
    start, rows = even_h * even_w, even_h // 2
    if planes == 2:  # NV12 / NV21: one plane of interleaved chroma pairs
        flat[start:].reshape(rows, even_w)[:] = _plane(frame.planes[1], rows, even_w, dtype)
        return out
    cols = even_w // 2
    for index in (1, 2):
        chroma = flat[start : start + rows * cols].reshape(rows, cols)
        chroma[:] = _plane(frame.planes[index], rows, cols, dtype)
        start += rows * cols
    return out


def _plane(plane: Any, rows: int, cols: int, dtype: Any) -> Any:
    """A plane's first ``rows`` x ``cols`` samples: a view of PyAV's buffer, padding left out."""
    line = plane.line_size // dtype.itemsize
    return _np.frombuffer(plane, dtype, count=rows * line).reshape(rows, line)[:, :cols]

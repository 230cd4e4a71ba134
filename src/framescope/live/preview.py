"""Preview video for the live page: the latest frame at a point of a pipeline, as JPEG.

A :class:`PreviewTap` is a pipeline stage that only keeps a reference to the
frame passing through (no copy, no wait) and passes it on. Its own thread
encodes the newest frame to JPEG at most ``fps`` times a second (OpenCV where installed,
else PyAV's MJPEG encoder), so the frame loop never waits for a viewer: frames that come
faster are skipped, never queued. The live server streams the JPEGs as
``multipart/x-mixed-replace`` (MJPEG) to any number of browsers.
"""

from __future__ import annotations

import fractions
import logging
import threading
from typing import Any

from framescope._optional import require
from framescope._validation import check_number
from framescope.clock import SYSTEM_CLOCK, Clock, wait_on
from framescope.pipeline.stage import Stage

__all__ = ["PreviewTap"]

logger = logging.getLogger(__name__)


def _opencv() -> Any:
    """OpenCV, where installed: it encodes JPEG about 3x faster than PyAV here."""
    try:
        import cv2  # noqa: PLC0415 - optional, loaded on the first preview frame
    except ImportError:  # pragma: no cover - depends on the extras installed
        return None
    return cv2


class PreviewTap(Stage):
    """A stage that publishes the frames passing through it as a JPEG preview.

    Put it where the preview should show (typically after annotation); the
    frame is passed on unchanged. A frame is a numpy BGR image or anything
    with an ``image`` attribute (a :class:`~framescope.video.Frame`). The
    encoder reads the frame after the tap has passed it on: stages after the
    tap should not draw on it in place, or the preview may show their work.

    Args:
        name: the preview's name: ``/video/<name>.mjpg`` on the live server.
        fps: the most JPEGs a second (the rest of the frames are skipped).
        clock: the clock of the encoder's pace.
    """

    def __init__(
        self, name: str = "preview", *, fps: float = 10.0, clock: Clock | None = None
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be a simple name (letters, digits, _), got {name!r}")
        self.name = name
        self.fps = check_number(fps, "fps", positive=True)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._latest: Any = None
        self._encoded_from: Any = None
        self._jpeg: bytes | None = None
        self.sequence = 0  # JPEGs made so far
        self.frames_seen = 0
        self.failures = 0
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._codec: Any = None
        self._opencv: Any = False  # not looked for yet

    def __call__(self, frame: Any) -> Any:
        """Keep a reference to ``frame`` for the encoder, and pass it on."""
        self._latest = frame
        self.frames_seen += 1
        return frame

    # -- the encoder thread -----------------------------------------------------------

    def start(self) -> None:
        """Start encoding (the live server does this when it starts)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._encode_loop, name=f"framescope-preview-{self.name}", daemon=True
        )
        self._thread.start()

    def _encode_loop(self) -> None:
        period = 1.0 / self.fps
        main = threading.main_thread()
        while not wait_on(self._clock, self._stop, period) and main.is_alive():
            frame = self._latest
            if frame is None or frame is self._encoded_from:
                continue
            try:
                jpeg = self._encode(frame)
            except Exception as error:  # a bad frame must not end the preview
                self.failures += 1
                if self.failures == 1:
                    logger.warning("preview %r: cannot encode a frame: %s", self.name, error)
                self._encoded_from = frame
                continue
            with self._ready:
                self._jpeg, self._encoded_from = jpeg, frame
                self.sequence += 1
                self._ready.notify_all()

    def _encode(self, frame: Any) -> bytes:
        image = getattr(frame, "image", frame)
        if self._opencv is False:
            self._opencv = _opencv()
        cv2 = self._opencv
        if cv2 is not None:
            ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if not ok:
                raise ValueError("OpenCV could not encode the frame")
            return bytes(buffer)
        av = require("av", "video", "the live preview")
        height, width = image.shape[:2]
        codec = self._codec
        if codec is None or (codec.width, codec.height) != (width - width % 2, height - height % 2):
            codec = av.CodecContext.create("mjpeg", "w")
            codec.width, codec.height = width - width % 2, height - height % 2
            codec.pix_fmt = "yuvj420p"
            codec.time_base = fractions.Fraction(1, 1000)
            self._codec = codec
        video = av.VideoFrame.from_ndarray(image, format="bgr24")
        video = video.reformat(width=codec.width, height=codec.height, format="yuvj420p")
        video.pts = self.sequence
        return b"".join(bytes(packet) for packet in codec.encode(video))

    def latest(self, after: int = 0, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The newest JPEG once there is one newer than number ``after``; None on timeout."""
        with self._ready:
            if not self._ready.wait_for(
                lambda: self.sequence > after or self._stop.is_set(), timeout
            ):
                return None
            if self._jpeg is None or self.sequence <= after:
                return None
            return self.sequence, self._jpeg

    def stop(self, timeout: float = 2.0) -> None:
        """Stop encoding, and wake every viewer waiting for a frame."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def cleanup(self) -> None:
        """As a pipeline stage: stop encoding when the pipeline is cleaned up."""
        self.stop()

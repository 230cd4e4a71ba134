"""Preview video for the live page: the frames at a point of a pipeline, as JPEG and for WebRTC.

A :class:`PreviewTap` is a pipeline stage that only keeps a reference to the
frame passing through (no copy, no wait) and passes it on. Its own thread
encodes the newest frame to JPEG at most ``fps`` times a second (OpenCV where installed,
else PyAV's MJPEG encoder), so the frame loop never waits for a viewer: frames that come
faster are skipped, never queued. :func:`mjpeg_parts` makes the
``multipart/x-mixed-replace`` (MJPEG) stream the live server sends to any
number of browsers. While WebRTC viewers watch, the tap also hands every
frame, with the moment it left the stage, to their video streams
(:mod:`framescope.live.stream`), which encode at the stage's own rate.
"""

from __future__ import annotations

import fractions
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from framescope._optional import require
from framescope._validation import check_number
from framescope.capture import mark_glass, mark_handed
from framescope.clock import SYSTEM_CLOCK, Clock
from framescope.live._pace import Beat, wait_for
from framescope.pipeline.stage import Stage

__all__ = ["MJPEG_TYPE", "ImageChoice", "PreviewTap", "mjpeg_parts", "pick_image"]

logger = logging.getLogger(__name__)


def _opencv() -> Any:
    """OpenCV, where installed: it encodes JPEG about 3x faster than PyAV here."""
    try:
        import cv2  # noqa: PLC0415 - optional, loaded on the first preview frame
    except ImportError:  # pragma: no cover - depends on the extras installed
        return None
    return cv2


ImageChoice = str | int | Callable[[Any], Any] | None
"""Which part of a stage's result is the image: a key or attribute name, a
tuple index, or a function of the result (None: find the one image in it)."""


def _image_of(value: Any) -> Any | None:
    """``value`` as an image (an H x W x 3 or H x W uint8 array, or a Frame's), else None."""
    inner = getattr(value, "image", None)
    if inner is not None and not hasattr(value, "dtype"):
        if getattr(value, "pixel_format", "bgr24") != "bgr24":
            return None  # a Frame kept in the decoder's format (or RGB) is no BGR image
        value = inner  # a framescope.video.Frame, or anything with an image
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or str(dtype) != "uint8":
        return None
    if len(shape) == 2 or (len(shape) == 3 and shape[2] == 3):
        return value if shape[0] and shape[1] else None
    return None


def _chosen(value: Any, image: ImageChoice) -> Any:
    """The part of ``value`` that ``image`` names (None when it is not there)."""
    if image is None:
        return value
    if callable(image):
        return image(value)
    if isinstance(value, Mapping):
        return value.get(image)
    if isinstance(image, int):
        if isinstance(value, (tuple, list)) and -len(value) <= image < len(value):
            return value[image]
        return None
    return getattr(value, image, None)


def pick_image(value: Any, image: ImageChoice = None) -> tuple[Any | None, str | None]:
    """Find the image to preview in what a stage returned: ``(image, None)`` or ``(None, why)``.

    An image is an H x W x 3 (BGR) or H x W (grey) uint8 array, or a
    :class:`~framescope.video.Frame` (its ``image``). ``value`` may be one,
    or a dict, tuple or list holding one: the single image-like value in it
    is taken. ``image`` picks it when there are several (or none is found):
    a key (dict) or attribute name, an index (tuple, list), or a function of
    ``value``. ``why`` says what ``value`` is and what to pass, e.g.
    ``returns dict with 2 images ('frame', 'mask'): pass image=...``.
    """
    kind = type(value).__name__
    if image is not None:
        found = _image_of(_chosen(value, image))
        if found is None:
            return None, f"returns {kind}, and image={image!r} picks no uint8 image in it"
        return found, None
    found = _image_of(value)
    if found is not None:
        return found, None
    pixel_format = getattr(value, "pixel_format", "bgr24")
    if pixel_format != "bgr24":
        return None, f"returns {kind} in {pixel_format!r}: the preview shows BGR frames"
    if isinstance(value, Mapping):
        parts: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, (tuple, list)):
        parts = list(enumerate(value))
    else:
        return None, f"returns {kind}, not an image: pass image=..."
    images = [(key, picked) for key, part in parts if (picked := _image_of(part)) is not None]
    if len(images) == 1:
        return images[0][1], None
    if not images:
        return None, f"returns {kind} without an image in it: pass image=..."
    keys = ", ".join(repr(key) for key, _ in images)
    return None, f"returns {kind} with {len(images)} images ({keys}): pass image=..."


MAX_CAMERAS = 64
"""The most source names a preview lists (a run of more sources shows the first ones)."""


def check_size(size: object) -> tuple[int, int] | None:
    """``size`` as ``(width, height)``, even, at least 16 each, or None (else Type/ValueError)."""
    if size is None:
        return None
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"size must be (width, height) or None, got {size!r}")
    width, height = size
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"size must be two ints (width, height), got {size!r}")
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        raise ValueError(f"size must be from (16, 16) to (7680, 4320), got {size!r}")
    return width - width % 2, height - height % 2


def check_image_choice(image: object) -> ImageChoice:
    """``image`` if it can pick an image (None, a str, an int or a callable); else a TypeError."""
    if image is None or callable(image) or isinstance(image, (str, int)):
        return image
    raise TypeError(
        "image must be a key or attribute name (str), an index (int) or a function, "
        f"got {type(image).__name__}"
    )


class PreviewTap(Stage):
    """A stage that publishes the frames passing through it as a JPEG preview.

    Put it where the preview should show (typically after annotation); what
    passes is passed on unchanged. It shows what stages return in practice:
    an H x W x 3 (BGR) or H x W (grey) uint8 array, a
    :class:`~framescope.video.Frame`, or a dict, tuple or list holding one
    (see :func:`pick_image`; ``image=`` picks it when there are several).
    When there is no image in it, :attr:`problem` says so (the live page
    shows it in the preview's box) and it is logged once. Every result
    counts as a new frame, also one drawn again into the same buffer. The
    encoder reads the frame after the tap has passed it on: stages after the
    tap should not draw on it in place, or the preview may show their work.

    Args:
        name: the preview's name: ``/video/<name>.mjpg`` on the live server.
        fps: the most JPEGs a second (the rest of the frames are skipped).
        clock: the clock of the encoder's pace and of waits for a JPEG.
        image: which part of each result is the image (see :func:`pick_image`).
        source: what the tap sees, for messages (the live view passes the stage's name).
        size: ``(width, height)`` of its WebRTC video (None: the first frame's
            size, rounded down to even numbers). The JPEGs keep the frame's size.
        webrtc_fps: the most frames its WebRTC video sends a second (the
            stage's rate up to it; faster stages are skipped down to it).
    """

    def __init__(
        self,
        name: str = "preview",
        *,
        fps: float = 10.0,
        clock: Clock | None = None,
        image: ImageChoice = None,
        source: str | None = None,
        size: tuple[int, int] | None = None,
        webrtc_fps: float = 30.0,
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be a simple name (letters, digits, _), got {name!r}")
        self.name = name
        self.fps = check_number(fps, "fps", positive=True)
        self.image = check_image_choice(image)
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be a str or None, got {type(source).__name__}")
        self.source = source
        self.size = check_size(size)
        self.webrtc_fps = check_number(webrtc_fps, "webrtc_fps", positive=True)
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._feeds: tuple[Callable[[Any, int], None], ...] = ()  # read without a lock
        self._feeds_lock = threading.Lock()
        self._cameras: dict[str, None] = {}  # source names seen, in order (bounded)
        self._latest: Any = None
        self._encoded_seen = 0  # frames_seen when the encoder last took a frame
        self._jpeg: bytes | None = None
        self.sequence = 0  # JPEGs made so far
        self.frames_seen = 0
        self.failures = 0
        self.problem: str | None = None
        """Why the newest result shows no image (None: it does, or none came yet)."""
        self._problems_logged: set[str] = set()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._codec: Any = None
        self._opencv: Any = False  # not looked for yet

    def __call__(self, frame: Any) -> Any:
        """Keep a reference to ``frame`` for the encoder, and pass it on.

        A frame of a many-source run is out of the pipeline here, handed to
        this output (as :class:`~framescope.video.SpyGlass` hands it), on
        this stage's thread: its way to the glass is the encoder's wait.
        """
        self._latest = frame
        self.frames_seen += 1
        mark_handed(frame)
        camera = getattr(frame, "source", None)
        if camera.__class__ is str and camera not in self._cameras:
            self._saw_camera(camera)
        feeds = self._feeds
        if feeds:
            out_ns = self._clock.monotonic_ns()
            for feed in feeds:
                feed(frame, out_ns)
        return frame

    def _saw_camera(self, camera: str) -> None:
        if len(self._cameras) < MAX_CAMERAS:
            self._cameras[camera] = None

    @property
    def cameras(self) -> tuple[str, ...]:
        """The sources whose frames passed (a many-source run's names), in order of arrival."""
        return tuple(self._cameras)

    def add_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Call ``feed(frame, out_ns)`` with every frame from now on, on the stage's thread.

        ``out_ns`` is when the frame left the stage, on the tap's clock. A
        feed must be quick (it runs inside the stage's time): the WebRTC
        streams keep a reference and wake their encoder.
        """
        with self._feeds_lock:  # added and removed from different threads
            self._feeds = (*self._feeds, feed)

    def remove_feed(self, feed: Callable[[Any, int], None]) -> None:
        """Stop calling ``feed`` (a feed not added is ignored)."""
        with self._feeds_lock:  # bound methods are equal, not one: compared with !=
            self._feeds = tuple(f for f in self._feeds if f != feed)

    # -- the encoder thread -----------------------------------------------------------

    def start(self) -> None:
        """Start encoding (the live server does this when it starts)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        beat = Beat(self._clock, 1.0 / self.fps, self._stop)
        self._thread = threading.Thread(
            target=self._encode_loop,
            args=(beat,),
            name=f"framescope-preview-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def _encode_loop(self, beat: Beat) -> None:
        while beat.wait():
            # A counter, not the frame's identity: a stage that draws into one
            # buffer every time returns the same object with new pixels.
            seen = self.frames_seen
            if seen == self._encoded_seen:
                continue
            self._encoded_seen = seen
            value = self._latest
            image = self._image(value)
            if image is None:
                continue
            try:
                jpeg = self._encode(image)
            except Exception as error:  # a bad frame must not end the preview
                self.failures += 1
                if self.failures == 1:
                    logger.warning("preview %r: cannot encode a frame: %s", self.name, error)
                continue
            with self._ready:
                self._jpeg = jpeg
                self.sequence += 1
                self._ready.notify_all()
            mark_glass(value, "preview")  # a frame of a many-source run: shown now

    def _image(self, value: Any) -> Any | None:
        """The image in ``value``; else None, with :attr:`problem` set (logged once each)."""
        try:
            image, why = pick_image(value, self.image)
        except Exception as error:  # a user's image= function: it must not end the preview
            image, why = None, f"returns {type(value).__name__}, and image= raised {error!r}"
        if why is None:
            self.problem = None
            return image
        if self.source is not None:
            problem = f"{self.source} {why}"
        else:  # used as a stage itself: it knows no stage name
            problem = f"what reaches preview {self.name!r} {why.replace('returns', 'is a', 1)}"
        self.problem = problem
        if problem not in self._problems_logged and len(self._problems_logged) < 16:
            self._problems_logged.add(problem)
            logger.warning("preview %r shows nothing: %s", self.name, problem)
        return None

    def status(self) -> dict[str, Any]:
        """What the live page shows about this preview: JPEGs made, and any problem."""
        return {"frames": self.sequence, "problem": self.problem, "cameras": list(self._cameras)}

    def _encode(self, image: Any) -> bytes:
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
        video = av.VideoFrame.from_ndarray(image, format="bgr24" if image.ndim == 3 else "gray")
        video = video.reformat(width=codec.width, height=codec.height, format="yuvj420p")
        video.pts = self.sequence
        return b"".join(bytes(packet) for packet in codec.encode(video))

    def latest(self, after: int = 0, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The newest JPEG once there is one newer than number ``after``.

        None when ``timeout`` seconds of the tap's clock pass first, or it stops.
        """
        with self._ready:
            if not wait_for(
                self._clock,
                self._ready,
                lambda: self.sequence > after or self._stop.is_set(),
                timeout,
            ):
                return None
            if self._jpeg is None or self.sequence <= after:
                return None
            return self.sequence, self._jpeg

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (no JPEG will come any more)."""
        return self._stop.is_set()

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


MJPEG_TYPE = "multipart/x-mixed-replace; boundary=frame"
"""The Content-Type of the stream :func:`mjpeg_parts` makes."""


def mjpeg_parts(tap: PreviewTap, stop: threading.Event, poll: float) -> Iterator[bytes | None]:
    """The MJPEG stream of ``tap``: one part per new JPEG, until ``tap`` or ``stop`` stops.

    None when no new JPEG came within ``poll`` seconds of the tap's clock:
    the server then looks whether the client left (a stream waiting for a
    frame writes nothing else that would tell).
    """
    number = 0
    while not stop.is_set():
        latest = tap.latest(after=number, timeout=poll)
        if latest is None:
            if tap.stopped:
                return
            yield None
            continue
        number, jpeg = latest
        yield (
            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
            + str(len(jpeg)).encode()
            + b"\r\n\r\n"
            + jpeg
            + b"\r\n"
        )

"""KVSSpyGlass: restream annotated frames to Amazon Kinesis Video Streams, from Python.

Backpack's KVSSpyGlass needed the KVS Producer SDK compiled with its
GStreamer plugin. This one encodes with PyAV (H.264 in live Matroska, one
fragment per key frame) and speaks PutMedia itself (see
:mod:`framescope.kvs.uploader`). ``put()`` is SpyGlass's: it never blocks
and never raises for a streaming problem.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

from framescope._optional import require
from framescope._validation import check_positive_seconds
from framescope.clock import Clock
from framescope.kvs.credentials import KVSCredentialsHandler
from framescope.kvs.fragments import Fragment
from framescope.kvs.session import FragmenterSession
from framescope.kvs.uploader import Uploader
from framescope.video.spyglass import SpyGlass, SpyGlassState

_np = require("numpy", "kvs", "KVSSpyGlass")

__all__ = ["KVSSpyGlass"]

logger = logging.getLogger(__name__)


class KVSSpyGlass(SpyGlass):
    """Sends the frames given to :meth:`put` to a Kinesis video stream.

    Example (Backpack's lines, without the Dockerfile)::

        spyglass = KVSSpyGlass(
            stream_region="us-east-1",
            stream_name="panorama-video",
            credentials_handler=KVSFileCredentialsHandler(),
        )
        spyglass.start_streaming()
        spyglass.put(image)  # in the frame loop: never blocks

    Args:
        stream_region: the stream's AWS region.
        stream_name: the stream (it must exist).
        credentials_handler: a ``KVS...CredentialsHandler``.
        fps, width, height: the stream's rate and size (None: measured in
            a warm-up, as for :class:`~framescope.video.SpyGlass`).
        dotenv_path: accepted for Backpack code and ignored (nothing needs
            GST_PLUGIN_PATH any more).
        endpoint_url: the Kinesis Video control plane's URL (default: AWS's).
        data_endpoint_url: where to PutMedia instead of the host that
            ``GetDataEndpoint`` gives (a proxy, or a test receiver); default:
            the ``FRAMESCOPE_KVS_DATA_ENDPOINT_URL`` environment variable.
        fragment_s: seconds per fragment (a key frame starts each; <= 10).
        max_connection_s: a connection is rotated before it is this old.
        credentials_margin_s: ... or when its credentials expire within this.
        timeout: seconds to connect and per write.
        ack_timeout: seconds fragments may wait for an acknowledgement
            before the upload counts as out (None: wait for ever): the state
            turns ``ERROR``, ``last_error`` says so, ``ack_timeouts`` counts
            it, the connection is dropped (its fragments counted lost) and a
            new one made with back-off; the state is ``STREAMING`` again once
            a fragment is acknowledged RECEIVED. Timed on ``clock``.
        queue_size, warmup_frames, preset, tune, bitrate, reconnect_initial,
        reconnect_max, name, clock: as for SpyGlass.
    """

    def __init__(  # noqa: PLR0917 - Backpack's positional order
        self,
        stream_region: str,
        stream_name: str,
        credentials_handler: KVSCredentialsHandler,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        *,
        dotenv_path: str | None = None,
        endpoint_url: str | None = None,
        data_endpoint_url: str | None = None,
        fragment_s: float = 2.0,
        max_connection_s: float = 45 * 60,
        credentials_margin_s: float = 300.0,
        timeout: float = 10.0,
        ack_timeout: float | None = 10.0,
        queue_size: int = 30,
        warmup_frames: int = 100,
        preset: str | None = "ultrafast",
        tune: str | None = "zerolatency",
        bitrate: int | None = None,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 10.0,
        name: str = "KVSSpyGlass",
        clock: Clock | None = None,
    ) -> None:
        for argument, value in (("stream_region", stream_region), ("stream_name", stream_name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{argument} must be a non-empty str, got {value!r}")
        _check_handler(credentials_handler)
        self.stream_region, self.stream_name = stream_region, stream_name
        self.credentials_handler = credentials_handler
        super().__init__(
            f"kvs://{stream_region}/{stream_name}",
            fps,
            width,
            height,
            warmup_frames=warmup_frames,
            queue_size=queue_size,
            preset=preset,
            tune=tune,
            bitrate=bitrate,
            reconnect_initial=reconnect_initial,
            reconnect_max=reconnect_max,
            stall_timeout=None,  # the upload is watched by its acknowledgements instead
            name=name,
            clock=clock,
        )
        if dotenv_path is not None:
            logger.info(
                "KVSSpyGlass: dotenv_path=%r is not needed (no GStreamer plugin) and is ignored",
                dotenv_path,
            )
        self.dotenv_path = dotenv_path
        self.endpoint_url = endpoint_url
        self.data_endpoint_url = data_endpoint_url or os.environ.get(
            "FRAMESCOPE_KVS_DATA_ENDPOINT_URL"
        )
        self.fragment_s = check_positive_seconds(fragment_s, "fragment_s")
        if self.fragment_s > 10:
            raise ValueError(f"fragment_s must be at most 10 (KVS's limit), got {fragment_s}")
        self.max_connection_s = check_positive_seconds(max_connection_s, "max_connection_s")
        self.credentials_margin_s = check_positive_seconds(
            credentials_margin_s, "credentials_margin_s"
        )
        self.timeout = check_positive_seconds(timeout, "timeout")
        self.ack_timeout = (
            None if ack_timeout is None else check_positive_seconds(ack_timeout, "ack_timeout")
        )
        self._uploader: Uploader | None = None
        self._totals: dict[str, Any] = {}

    def _resolve(self, uri: str, format: str | None, options: dict[str, str] | None) -> Any:
        return None  # the stream is named by region and name, not by a URI

    def _prestart(self) -> None:
        return None  # the fragmenter process starts with the session

    # -- the session ------------------------------------------------------------------

    def _feed(self) -> None:
        fps, width, height = self.fps, self.width, self.height
        assert fps is not None
        assert width is not None
        assert height is not None
        uploader = Uploader(self, self._stopping)
        self._uploader = uploader
        settings = {
            "fps": fps,
            "width": width,
            "height": height,
            "gop": max(1, math.ceil(fps * self.fragment_s)),
            "preset": self._setting("preset"),
            "tune": self._setting("tune"),
            "bitrate": self._encoder["bitrate"],
            "start_epoch_ms": round(uploader.producer_start * 1000),
        }
        fragmenter = FragmenterSession(settings, self._sender(uploader), self.name)
        session = _Streaming(fragmenter, uploader)
        self._session = session
        self._ready.set()  # start_streaming returns: the upload connects on its own
        try:
            self._stream(session)
        finally:
            if uploader.fatal is None and fragmenter.error is not None:
                uploader.fatal = f"the encoder failed: {fragmenter.error}"
            if uploader.fatal is not None:
                self.state = SpyGlassState.ERROR
                self.last_error = uploader.fatal
            self._collect(uploader)

    def _watch_s(self) -> float | None:
        return self.ack_timeout

    def _check_stall(self, limit_ns: int) -> None:
        """An upload without acknowledgements for ``ack_timeout`` is out (see the class)."""
        uploader = self._uploader
        if uploader is not None:
            uploader.check_acks(limit_ns)

    def _setting(self, name: str) -> str | None:
        value = self._encoder[name]
        return value if isinstance(value, str) else None

    def _sender(self, uploader: Uploader) -> Callable[[bytes, Fragment], None]:
        def send(header: bytes, fragment: Fragment) -> None:
            uploader.send(header, fragment)
            if uploader.alive and not self._stopping.is_set():
                up = uploader.connected and not uploader.outage
                self.state = SpyGlassState.STREAMING if up else SpyGlassState.ERROR

        return send

    def _stream(self, session: _Streaming) -> None:
        fragmenter, uploader = session.fragmenter, session.uploader
        while True:
            item = self._next_frame(session)
            if item is None:
                break
            image, stamp, _ = item  # its stamps: a fragment's acknowledgement is not one frame's
            try:
                fragmenter.send(_np.ascontiguousarray(image), stamp)
            except (OSError, ValueError):
                self._lost += 1
                break
            self._handed += 1
        if uploader.alive and fragmenter.finish(timeout=10):  # the last fragment goes out
            uploader.finish(timeout=2.0)
        else:
            session.kill()

    def _collect(self, uploader: Uploader) -> None:
        """The session ended: add its figures to the totals; frames it held are lost."""
        counts = uploader.counts
        self._counts["sent"] += counts["frames_sent"]
        self._counts["reconnects"] += counts["reconnects"]
        held = self._handed - counts["frames_sent"] - counts["frames_lost"]
        self._lost += counts["frames_lost"] + max(0, held)
        _add_up(self._totals, uploader)
        self._handed = 0
        self._uploader = None

    def counters(self) -> dict[str, Any]:
        """Frames put, dropped (queue full or lost with a fragment) and sent; fragments sent
        and lost; acks by kind; errors by code; connections, reconnects and rotations;
        ``ack_timeouts``: the times acknowledgements stopped for ``ack_timeout``."""
        counts: dict[str, Any] = super().counters()
        totals = {k: dict(v) if isinstance(v, dict) else v for k, v in self._totals.items()}
        live = self._uploader
        if live is not None:
            _add_up(totals, live)
            counts["sent"] += live.counts["frames_sent"]
            counts["in_flight"] -= live.counts["frames_sent"]
        counts.update(totals)
        counts.setdefault("acks", {})
        counts.setdefault("errors", {})
        return counts

    def __repr__(self) -> str:
        return (
            f"KVSSpyGlass(stream_region={self.stream_region!r}, "
            f"stream_name={self.stream_name!r}, state={self.state.name})"
        )


def _add_up(totals: dict[str, Any], uploader: Uploader) -> None:
    """Add a session's counts, acks by kind and errors by code to ``totals``."""
    for key, value in uploader.counts.items():
        totals[key] = totals.get(key, 0) + value
    for kind, found in (("acks", dict(uploader.acks)), ("errors", dict(uploader.errors))):
        merged: dict[Any, int] = totals.setdefault(kind, {})
        for name, number in found.items():
            merged[name] = merged.get(name, 0) + number


class _Streaming:
    """A session as the frame feeder sees it: the encoder process and the upload."""

    def __init__(self, fragmenter: FragmenterSession, uploader: Uploader) -> None:
        self.fragmenter, self.uploader = fragmenter, uploader

    @property
    def alive(self) -> bool:
        """Whether frames can still go out."""
        return self.fragmenter.alive and self.uploader.alive

    def kill(self) -> None:
        """End both now."""
        self.fragmenter.kill()
        self.uploader.kill()


def _check_handler(handler: object) -> None:
    """A TypeError unless ``handler`` is one of the KVS credentials handlers."""
    if not isinstance(handler, KVSCredentialsHandler):
        raise TypeError(
            f"credentials_handler must be a KVS...CredentialsHandler, got {type(handler).__name__}"
        )

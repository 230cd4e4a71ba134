"""The live view in the browser: :class:`LiveView`, one page of pipelines or a fleet of boxes.

A LiveView puts together the parts of the live view, each in a module of
its own: who may use it (``_auth``: the token rule), publishing snapshots
to every watcher (``_publish``), the HTTP endpoints (``_http``), the fleet's
remote boxes (:mod:`~framescope.live.remote`), preview video
(:mod:`~framescope.live.preview`) and the page (:mod:`~framescope.live.view`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from framescope._httpserver import check_address
from framescope._validation import check_positive_seconds
from framescope.clock import SYSTEM_CLOCK, Clock, TimeSource
from framescope.live._auth import TokenRule, redact_url
from framescope.live._http import open_server
from framescope.live._publish import Published, Publisher
from framescope.live.preview import ImageChoice, PreviewTap
from framescope.live.remote import RemoteBox
from framescope.live.videoprocess import VideoProcess
from framescope.live.webrtc import MAX_VIEWERS, WebRTCService, WebRTCVideo
from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.views.health import RECONNECT_LIMIT_S

__all__ = ["LiveView"]


class LiveView:
    """A live page of one pipeline, several, or a fleet of boxes: ``url`` to open it.

    Example::

        with LiveView(pipeline) as view:
            print("open", view.url)
            ...

    Endpoints: ``/`` (the page, self-contained: no CDN), ``/events``
    (Server-Sent Events, one ``snapshot`` event per refresh), ``/view.json``
    (what the page draws), ``/snapshot.json`` (the full snapshot, which a
    fleet LiveView reads), ``/state.json`` (DepthAI's ``PipelineState``),
    ``/video/<name>.mjpg`` (a preview as MJPEG, see :meth:`preview`),
    ``/whep/<name>`` (the same preview over WebRTC: a WHEP endpoint, which
    the page uses when the browser can; ``?camera=`` picks one source of a
    many-source run), ``/clips/<recorder>/<file>`` (an event clip's MP4:
    only a file the latest published snapshot lists for one of the view's
    own recorders; one ``Range`` request is answered 206) and ``/healthz``
    (200 or 503 with a JSON body naming each stalled or failed source and
    stalled stage: :func:`~framescope.pipeline.views.health.judge_health` of
    the latest published snapshot). Every endpoint, ``/healthz`` included,
    follows the token rule: free on loopback, the token beyond it.

    Args:
        sources: pipelines (anything with ``snapshot()``) and URLs of other
            LiveViews (``http://box:8080/?token=...``), shown as one view
            with node ids prefixed by box.
        host: the address to listen on. Anything but loopback needs a token.
        port: the port (0: any free one; see ``url``).
        token: the access token; None: none on loopback, a random one otherwise.
        refresh: seconds between snapshots (and between polls of each remote box).
        max_connections: requests (page loads, event and video streams)
            served at once; more get 503. A connection counts only once its
            request head is complete and carries the token.
        request_timeout: seconds a client may take per read or write.
        header_timeout: seconds a connection has in all to send its request
            head (and finish the TLS handshake); a slower one is cut.
        ssl_context: serve HTTPS with this ``ssl.SSLContext``.
        clock: the clock of every wait of the view (refresh, polls, previews);
            the system clock unless given (a ``FakeClock`` in tests).
        stall_after: seconds without a completed item, items inside, after
            which the verdict and ``/healthz`` call a stage stalled (raise it
            for a stage that takes longer than 5 s an item).
        reconnect_limit: seconds without a frame a ``reconnecting`` source
            may have before ``/healthz`` calls it unhealthy.
        max_viewers: WebRTC viewers served at once (more get 503; 0: no
            WebRTC, the page shows MJPEG). WebRTC needs ``framescope[webrtc]``.
        ice_servers: STUN/TURN servers for WebRTC (``"stun:host:3478"``, or
            dicts with ``urls``, ``username``, ``credential``). None: ICE
            offers only the address the view listens on and contacts no server.
        webrtc_process: serve WebRTC (its encoders and connections) from a
            process of its own at a lower priority, started by the first
            viewer, so the video never takes the stages' interpreter lock and
            yields the cores to them. None (the default): so with the system
            clock on a POSIX system; in threads of this process with another
            clock (a ``FakeClock``: a child has no way to it) or elsewhere.
        webrtc_cpus: the CPU cores the video process runs on (a set of core
            numbers; Linux). None: the cores of this process. On a machine
            whose stages keep every core busy, a core of its own keeps the
            video's work off the stages' cores: give the stages the rest
            (``os.sched_setaffinity``, ``taskset``).
    """

    def __init__(
        self,
        *sources: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        refresh: float = 0.5,
        max_connections: int = 16,
        request_timeout: float = 10.0,
        header_timeout: float = 5.0,
        ssl_context: Any = None,
        clock: Clock | None = None,
        stall_after: float = 5.0,
        reconnect_limit: float = RECONNECT_LIMIT_S,
        max_viewers: int = MAX_VIEWERS,
        ice_servers: Any = None,
        webrtc_process: bool | None = None,
        webrtc_cpus: Iterable[int] | None = None,
    ) -> None:
        if clock is not None and not isinstance(clock, TimeSource):
            raise TypeError(f"clock must be a framescope Clock or None, got {type(clock).__name__}")
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.pipelines, self.remotes = self._sources(sources, request_timeout)
        self.refresh = check_positive_seconds(refresh, "refresh")
        self._access = TokenRule(host, token)
        self.previews: dict[str, PreviewTap] = {}
        self._stop = threading.Event()
        address = check_address(host, port)
        self._webrtc = self._webrtc_side(
            address[0], max_viewers, ice_servers, webrtc_process, webrtc_cpus
        )
        self._publisher = Publisher(
            self.pipelines,
            self.remotes,
            self.previews,
            self._webrtc,
            refresh=self.refresh,
            clock=self._clock,
            stop=self._stop,
            stall_after=check_positive_seconds(stall_after, "stall_after"),
            reconnect_limit=check_positive_seconds(reconnect_limit, "reconnect_limit"),
        )
        self._server = open_server(
            address,
            self._access,
            publisher=self._publisher,
            previews=self.previews,
            webrtc=self._webrtc,
            closing=self._stop,
        )
        self._server.configure(
            name=f"framescope-live-{self._server.server_port}",
            max_connections=max_connections,
            request_timeout=request_timeout,
            header_timeout=header_timeout,
            ssl_context=ssl_context,
        )
        self.host, self.port = host, self._server.server_port
        self._webrtc.name = f"framescope-live-{self.port}"
        self.scheme = "http" if ssl_context is None else "https"
        self.started = False

    def _webrtc_side(
        self, host: str, max_viewers: int, ice_servers: Any, process: bool | None, cpus: Any
    ) -> WebRTCService:
        if process is not None and not isinstance(process, bool):
            raise TypeError(f"webrtc_process must be True, False or None, got {process!r}")
        if process and self._clock is not SYSTEM_CLOCK:
            raise ValueError("webrtc_process=True needs the system clock (clock=None)")
        if process and os.name != "posix":
            raise ValueError("webrtc_process=True needs a POSIX system (it passes a socket)")
        if process is None:
            process = self._clock is SYSTEM_CLOCK and os.name == "posix"
        if process:
            return VideoProcess(
                self.previews,
                host=host,
                max_viewers=max_viewers,
                ice_servers=ice_servers,
                name="framescope-live",
                cpus=cpus,
            )
        if cpus is not None:
            raise ValueError(
                "webrtc_cpus needs the video process (webrtc_process=None or True, with the "
                "system clock on POSIX)"
            )
        return WebRTCVideo(
            self.previews,
            host=host,
            max_viewers=max_viewers,
            ice_servers=ice_servers,
            clock=self._clock,
            name="framescope-live",
        )

    def _sources(
        self, sources: tuple[Any, ...], timeout: float
    ) -> tuple[list[Any], list[RemoteBox]]:
        if not sources:
            raise ValueError("sources: give at least one pipeline or LiveView URL")
        pipelines: list[Any] = []
        remotes: list[RemoteBox] = []
        for source in sources:
            if isinstance(source, str):
                remotes.append(RemoteBox(source, timeout, clock=self._clock))
            elif callable(getattr(source, "snapshot", None)):
                pipelines.append(source)
            else:
                raise TypeError(
                    f"sources must be pipelines (with snapshot()) or LiveView URLs, "
                    f"got {type(source).__name__}"
                )
        return pipelines, remotes

    def __repr__(self) -> str:
        return f"LiveView({redact_url(self.url)!r})"

    @property
    def name(self) -> str:
        """The name its snapshot carries: its one pipeline's, or ``fleet`` for several."""
        if len(self.pipelines) == 1 and not self.remotes:
            return str(getattr(self.pipelines[0], "name", "pipeline"))
        return "fleet"

    @property
    def token(self) -> str | None:
        """The access token requests must carry (None: none is needed)."""
        return self._access.token

    @property
    def url(self) -> str:
        """The page's address (with the token, when one is needed)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}/" + self._access.query

    def preview(
        self,
        name: str = "preview",
        stage: str | None = None,
        *,
        fps: float = 10.0,
        image: ImageChoice = None,
        size: tuple[int, int] | None = None,
        webrtc_fps: float = 30.0,
    ) -> PreviewTap:
        """Show frames of the pipeline on the page: over WebRTC (``/whep/<name>``) or as MJPEG.

        The MJPEG stream is ``/video/<name>.mjpg``.

        With ``stage`` (a stage's name, typically the one that draws), the
        view taps that stage's results in place: no stage is added, and the
        pipeline must not have started yet. Without it, the returned
        :class:`PreviewTap` is a stage for you to add where the preview should show.
        A result may be an image, a :class:`~framescope.video.Frame`, or a
        dict or tuple holding one; ``image`` (a key, an index or a function)
        picks it when there are several. When a result holds no image, the
        preview's box on the page says so. The preview runs on the view's clock.

        Over WebRTC the stage's frames are sent at its rate up to
        ``webrtc_fps`` (30: a screen's; a faster stage is skipped down to it),
        ``size`` (``(width, height)``; None: the first frame's) in H.264 (VP8
        for a browser without it), encoded once for all viewers; ``fps`` caps
        the MJPEG fallback's JPEGs a second.
        """
        if name in self.previews:
            raise ValueError(f"name: there is already a preview called {name!r}")
        tap = PreviewTap(
            name,
            fps=fps,
            image=image,
            source=stage,
            clock=self._clock,
            size=size,
            webrtc_fps=webrtc_fps,
        )
        if stage is not None:
            self._tap(stage, tap)
        self.previews[name] = tap
        if self.started:
            tap.start()
        return tap

    def _tap(self, stage: str, tap: PreviewTap) -> None:
        reasons = []
        for pipeline in self.pipelines:
            try:
                pipeline.tap(stage, tap.__call__)
                return
            except (ValueError, AttributeError) as error:
                reasons.append(f"{getattr(pipeline, 'name', pipeline)!r}: {error}")
        why = "; ".join(reasons)
        raise ValueError(f"stage: no pipeline of this view can show {stage!r} ({why})")

    def start(self) -> LiveView:
        """Start serving (returns self): the first snapshot is there before the first browser."""
        if self.started:
            return self
        self.started = True
        for number, remote in enumerate(self.remotes):
            remote.start(self.refresh, self._stop, f"framescope-live-{self.port}-remote{number}")
        self._publisher.start(f"framescope-live-{self.port}-publisher")
        for tap in self.previews.values():
            tap.start()
        self._server.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        """Stop serving, end open connections and join every thread; False if one outlived it."""
        self._stop.set()
        self._publisher.wake()
        for tap in self.previews.values():
            tap.stop()
        stopped = self._server.stop(timeout)
        stopped = self._webrtc.close(timeout) and stopped
        threads = [self._publisher.thread] + [r.thread for r in self.remotes]
        started = [thread for thread in threads if thread is not None]
        for thread in started:
            if thread.is_alive():
                thread.join(timeout)
        return stopped and not any(thread.is_alive() for thread in started)

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def snapshot(self) -> PipelineSnapshot:
        """One snapshot of every source, merged (remote boxes' last answers included)."""
        return self._publisher.with_viewers(self._publisher.merged(*self._publisher.parts()))

    def published(self, after: int = 0, timeout: float | None = None) -> Published:
        """The latest (version, page view JSON, snapshot), once newer than ``after``.

        Sooner when ``timeout`` seconds of the view's clock pass, or the view closes.
        """
        return self._publisher.published(after, timeout)

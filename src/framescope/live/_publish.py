"""Publishing a live view's snapshots: one per refresh, rendered once, whoever watches.

A :class:`Publisher` merges the view's sources (pipelines, and the last
answers of remote boxes) into one snapshot per ``refresh`` of the view's
clock, on one thread, and renders it for the page. Every event stream and
JSON request only sends what it made, so a hundred browsers cost one
snapshot a refresh. The full JSON and the DepthAI state are rendered when
first asked for, once per published snapshot.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from framescope.clock import TimeSource
from framescope.live._pace import Beat, wait_for
from framescope.live.preview import PreviewTap
from framescope.live.remote import RemoteBox
from framescope.live.view import input_drops, page_view, viewer_view
from framescope.live.webrtc import WebRTCService
from framescope.pipeline.model.clips import ClipsSnapshot
from framescope.pipeline.model.snapshot import PipelineSnapshot, merge_snapshots
from framescope.pipeline.views.health import RECONNECT_LIMIT_S, Health, judge_health
from framescope.stats import StatsSnapshot

__all__ = ["EVENTS_TYPE", "Publisher"]

logger = logging.getLogger(__name__)

EVENTS_TYPE = "text/event-stream"
"""The Content-Type of :meth:`Publisher.events`."""

_KEEPALIVE_REFRESHES = 4  # an event stream writes at least this often (a client that left is found)

Published = tuple[int, bytes, PipelineSnapshot | None]
"""(version, the page view as JSON, the snapshot it was made from)."""


class Publisher:
    """The snapshots of a view's sources, published to every watcher.

    Args:
        pipelines: local sources (anything with ``snapshot()``).
        remotes: remote boxes (their last good snapshots are merged in).
        previews: the view's previews by name (their status goes to the page).
        webrtc: the view's WebRTC viewers (they join the snapshot and the page).
        refresh: seconds of ``clock`` between snapshots.
        clock: the clock of the publishing pace and of every wait for a snapshot.
        stop: set when the view closes: the thread ends, every waiter wakes.
        stall_after, reconnect_limit: the bounds of the verdict and of the
            health (:func:`~framescope.pipeline.views.health.judge_health`).
    """

    def __init__(
        self,
        pipelines: Sequence[Any],
        remotes: Sequence[RemoteBox],
        previews: Mapping[str, PreviewTap],
        webrtc: WebRTCService,
        *,
        refresh: float,
        clock: TimeSource,
        stop: threading.Event,
        stall_after: float = 5.0,
        reconnect_limit: float = RECONNECT_LIMIT_S,
    ) -> None:
        self.pipelines, self.remotes, self.previews = pipelines, remotes, previews
        self.webrtc = webrtc
        self.refresh = refresh
        self.bounds = {"stall_after": stall_after, "reconnect_limit": reconnect_limit}
        self._clock = clock
        self._stop = stop
        self._published: Published = (0, b"{}", None)
        self._rendered: dict[str, tuple[int, bytes]] = {}  # full JSON renderings, by version
        self._clips: tuple[ClipsSnapshot, ...] = ()  # the view's own recorders, as published
        self._cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def start(self, name: str) -> None:
        """Publish the first snapshot now (before the first browser), then each refresh."""
        self.publish()
        beat = Beat(self._clock, self.refresh, self._stop)
        self.thread = threading.Thread(target=self._loop, args=(beat,), name=name)
        self.thread.start()

    def _loop(self, beat: Beat) -> None:
        while beat.wait():
            try:
                self.publish()
            except Exception:  # one bad reading must not end the view
                logger.exception("live view: a snapshot failed")

    def wake(self) -> None:
        """Wake every waiter (the view sets ``stop`` first)."""
        with self._cond:
            self._cond.notify_all()

    # -- what is published -------------------------------------------------------------

    def parts(self) -> tuple[list[PipelineSnapshot], list[str]]:
        """Each source's snapshot (remote ones as last answered), and its prefix when merged."""
        local = [pipeline.snapshot() for pipeline in self.pipelines]
        answered = [r for r in self.remotes if r.snapshot is not None]
        prefixes = [f"local{i}" if len(local) > 1 else "local" for i in range(len(local))]
        prefixes += [r.prefix for r in answered]
        return local + [r.snapshot for r in answered if r.snapshot is not None], prefixes

    def merged(self, parts: list[PipelineSnapshot], prefixes: list[str]) -> PipelineSnapshot:
        """One snapshot of ``parts`` (a lone local pipeline's as it is); RuntimeError for none."""
        if not parts:
            raise RuntimeError("no source has answered yet")
        if len(parts) == 1 and not self.remotes:
            return parts[0]
        return merge_snapshots(*parts, prefixes=prefixes, name="fleet")

    def with_viewers(self, snapshot: PipelineSnapshot) -> PipelineSnapshot:
        """``snapshot`` with the view's WebRTC viewers (as it is when there are none)."""
        viewers = self.webrtc.viewers()
        return replace(snapshot, viewers=snapshot.viewers + viewers) if viewers else snapshot

    def publish(self) -> None:
        """Take one snapshot of every source, render it for the page, wake the watchers."""
        parts, prefixes = self.parts()
        try:
            snapshot = self.merged(parts, prefixes)
        except RuntimeError:  # a fleet none of whose boxes answered yet: the page says why
            snapshot = PipelineSnapshot(pipeline="fleet", latency=StatsSnapshot(window=1))
        drops: dict[str, int] = {}
        merged = not parts or snapshot is not parts[0]
        for part, prefix in zip(parts, prefixes, strict=True):
            drops.update(input_drops(part, prefix if merged else ""))
        gone = [r for r in self.remotes if not r.reachable]
        own = tuple(r for part in parts[: len(self.pipelines)] for r in part.clips)
        view = page_view(
            snapshot,
            unreachable={r.prefix: r.last_seen for r in gone},
            reasons={r.prefix: r.problem or "" for r in gone},
            drops=drops,
            served_clips=len(own),
            **self.bounds,
        )
        snapshot = self.with_viewers(snapshot)
        streams = self.webrtc.streams()
        view["previews"] = {
            name: {**tap.status(), "webrtc": streams.get(name, [])}
            for name, tap in self.previews.items()
        }
        view["viewers"] = [viewer_view(viewer) for viewer in snapshot.viewers]
        view["webrtc"] = {
            "served": self.webrtc.served,
            "refused": self.webrtc.refused,
            "process_failures": self.webrtc.process_failures,
        }
        body = json.dumps(view).encode()
        with self._cond:
            self._published = (self._published[0] + 1, body, snapshot)
            self._clips = own
            self._cond.notify_all()

    # -- what watchers get -------------------------------------------------------------

    def published(self, after: int = 0, timeout: float | None = None) -> Published:
        """The latest (version, page view JSON, snapshot), once newer than ``after``.

        Sooner when ``timeout`` seconds of the clock pass, or the view closes.
        """
        with self._cond:
            wait_for(
                self._clock,
                self._cond,
                lambda: self._published[0] > after or self._stop.is_set(),
                timeout,
            )
            return self._published

    def rendered(self, what: str) -> bytes:
        """The latest snapshot as JSON (``"snapshot"``) or as its state (``"state"``).

        Rendered when first asked for, once per published snapshot, however
        many clients ask: the publisher only makes what the page needs.
        """
        version, _, snapshot = self.published()
        with self._cond:
            cached = self._rendered.get(what)
            if cached is not None and cached[0] == version:
                return cached[1]
        if snapshot is None:
            body = b"{}"
        elif what == "state":
            body = snapshot.state.to_json().encode()
        else:
            body = json.dumps(snapshot.to_dict()).encode()
        with self._cond:
            self._rendered[what] = (version, body)
        return body

    def clips(self) -> tuple[ClipsSnapshot, ...]:
        """The view's own clip recorders (not a remote box's) as last published."""
        with self._cond:
            return self._clips

    def health(self) -> Health:
        """The health of the latest published snapshot (``/healthz``).

        A fleet's boxes are judged by their last answers, and a box that does
        not answer now is a problem of its own.
        """
        snapshot = self.published()[2]
        gone = {r.prefix: r.problem or "does not answer" for r in self.remotes if not r.reachable}
        parts = (snapshot,) if snapshot is not None else ()
        return judge_health(parts, unreachable=gone, **self.bounds)

    def events(self) -> Iterator[bytes]:
        """Server-Sent Events: one ``snapshot`` event per published snapshot, until the view closes.

        Without a new snapshot for four refreshes the latest is sent again,
        so a client that left is found by the write.
        """
        yield b"retry: 2000\n\n"
        version = 0
        while not self._stop.is_set():
            version, page, _ = self.published(version, self.refresh * _KEEPALIVE_REFRESHES)
            if self._stop.is_set():
                return
            yield b"event: snapshot\ndata: " + page + b"\n\n"

"""Pipelines and timers on a Prometheus ``/metrics`` endpoint (``framescope[prometheus]``).

Metric names follow Prometheus conventions (base units, ``_seconds``,
``_total`` for counters) and labels stay low-cardinality (pipeline, stage,
timer, reason). With the default namespace ``framescope``:

================================================  =========  ==========================
metric                                            type       labels
================================================  =========  ==========================
framescope_pipeline_latency_seconds               histogram  pipeline
framescope_pipeline_frames_per_second             gauge      pipeline
framescope_pipeline_forwarded_items_total         counter    pipeline
framescope_pipeline_completed_items_total         counter    pipeline
framescope_pipeline_failed_items_total            counter    pipeline
framescope_pipeline_dropped_items_total           counter    pipeline, reason
framescope_stage_processing_seconds               histogram  pipeline, stage
framescope_stage_frames_per_second                gauge      pipeline, stage
framescope_stage_failed_items_total               counter    pipeline, stage
framescope_stage_queue_depth                      gauge      pipeline, stage (threaded)
framescope_stage_state                            stateset   pipeline, stage (debugging)
framescope_stage_cpu_seconds_total                counter    pipeline, stage, state
framescope_stage_batch_size                       histogram  pipeline, stage (batched)
framescope_stage_batches_total                    counter    pipeline, stage, reason (batched)
framescope_stage_batch_wait_seconds               histogram  pipeline, stage (batched)
framescope_machine_cores                          gauge      pipeline
framescope_machine_cpu_busy_ratio                 gauge      pipeline
framescope_machine_load1                          gauge      pipeline
framescope_process_cpu_cores                      gauge      pipeline
framescope_replica_processing_seconds             histogram  pipeline, stage, replica
framescope_replica_frames_per_second              gauge      pipeline, stage, replica
framescope_source_state                           gauge      pipeline, source, state
framescope_source_state_seconds                   gauge      pipeline, source
framescope_source_last_frame_age_seconds          gauge      pipeline, source
framescope_source_frames_per_second               gauge      pipeline, source
framescope_source_frames_total                    counter    pipeline, source
framescope_source_dropped_items_total             counter    pipeline, source
framescope_source_failed_items_total              counter    pipeline, source
framescope_source_reconnects_total                counter    pipeline, source
framescope_source_transitions_total               counter    pipeline, source, state
framescope_source_state_share                     gauge      pipeline, source, state
framescope_source_rate_ratio                      gauge      pipeline, source
framescope_source_latency_seconds                 histogram  pipeline, source, part
framescope_source_capture_clock_frames_total      counter    pipeline, source, clock
framescope_source_untimed_items_total             counter    pipeline, source
framescope_viewer_stage_to_screen_seconds         histogram  pipeline, preview, camera, viewer
framescope_viewer_frames_total                    counter    pipeline, preview, camera, viewer,
                                                             outcome
framescope_viewer_clock_uncertainty_seconds       gauge      pipeline, preview, camera, viewer
framescope_clips_written_total                    counter    pipeline, recorder
framescope_clips_dropped_total                    counter    pipeline, recorder, reason
framescope_clips_deleted_total                    counter    pipeline, recorder
framescope_clips_on_disk                          gauge      pipeline, recorder
framescope_clips_disk_bytes                       gauge      pipeline, recorder
framescope_clips_ring_bytes                       gauge      pipeline, recorder
framescope_clips_ring_overflows_total             counter    pipeline, recorder
framescope_clips_recording                        gauge      pipeline, recorder
framescope_clips_frames_dropped_total             counter    pipeline, recorder
framescope_clips_triggers_total                   counter    pipeline, recorder
framescope_timer_seconds                          histogram  timer
framescope_timer_events_per_second                gauge      timer
================================================  =========  ==========================

Histogram buckets are this exporter's own (``buckets=``): a pipeline's timers
count on a fixed fine grid from the start, and each scrape sums the grid into
the buckets, so two exporters with different buckets can report one pipeline.
A timer added with :meth:`PrometheusExporter.add_timer` counts from then on.
The fps gauges are the rate over each timer's recent window. Every scrape
takes one snapshot of each source, so the numbers of one scrape belong together.
A replicated stage's series are its replicas' merged (its fps their sum);
each replica has its own ``replica_`` series, so sums over ``stage`` do not
count an item twice. ``labels=`` adds constant labels (a host, a site) to every
series: ``PrometheusExporter(labels=HostIdentity().dimensions("host_name"))``.

``stage_cpu_seconds_total`` is where a stage's worker threads (a replicated
stage's, summed; a process replica's worker process) spent their time:
``state="on_cpu"`` running, ``"runqueue"`` runnable but waiting for a CPU
(the machine is oversubscribed), both over the thread's whole time, and
``"blocked"`` sleeping inside the stage's calls (I/O, a lock, the
interpreter lock).
A state the system does not report is left out, as is a stage not measured
(serial mode, Ray replicas).

A batched stage (``add(stage, batch=8)``) also has ``stage_batch_size``, the
items of each batch that left it (buckets at the powers of two up to its
batch size, and the size itself: ``le="8"`` counts every batch, ``_sum`` every
item), ``stage_batches_total`` by why a batch left (``reason="full"``,
``"timeout"``: its oldest item had waited ``batch_timeout``, ``"flush"``: the
input ended, or the replicas' ordering window took no more), and
``stage_batch_wait_seconds``, each item's time in a forming batch (its
queue wait before it is not part of it). The ``machine_`` gauges describe
the machine the pipeline runs on over the recent window (every process on it): its cores,
the share of all of them busy, the one-minute load average;
``process_cpu_cores`` the cores the pipeline's process kept busy.

The ``source_`` series are there for a run of many sources
(``pipeline.run({"cam1": ..., "cam2": ...})``), one set per source:
``source_state`` is 1 for the state the source is in and 0 for every other
(``starting``, ``running``, ``blocked``, ``stalled``, ``reconnecting``,
``ended``, ``failed``), so ``framescope_source_state{state="stalled"} == 1``
is the alert; ``source_last_frame_age_seconds`` is left out before a
source's first frame, ``source_frames_per_second`` before its second;
``source_transitions_total`` counts each state entered;
``source_state_share`` is the share of the source's last hour (since its
start, before an hour) spent in each state, and ``source_rate_ratio`` its
frames a second over that hour against its nominal rate (left out where the
source has none). ``source_latency_seconds`` is the source's capture-to-glass split, one
histogram a ``part``: ``capture``, ``decode``, ``queue``, ``pipeline`` (in ->
out of the pipeline, every item of the source), ``output``, and the totals
``to_out`` and ``to_glass`` (see :mod:`framescope.pipeline.model.latency`);
a part with no sample yet is left out. ``source_capture_clock_frames_total``
counts the frames each capture clock stamped (``rtcp``, ``file``,
``generated``, ``received`` ...): where ``received`` counts, ``capture`` is
unknown for those frames; ``source_untimed_items_total`` counts the results
that carried no stamps.

The ``viewer_`` series are a live view's WebRTC viewers (export the
``LiveView``: ``PrometheusExporter(view)``), one set per viewer while it
watches (``viewer`` is its session id; ``camera`` empty for every camera):
``viewer_stage_to_screen_seconds`` from the stage's result to the browser's
presentation of the frame, ``viewer_frames_total`` by ``outcome``
(``sent``, ``dropped`` because it could not keep up, ``placeholder``: sent
while the stage sent none), and ``viewer_clock_uncertainty_seconds``, the
half round trip each of its latencies is known to within.

The ``clips_`` series are the pipeline's event-clip recorders
(:class:`framescope.video.Clips`), one set per recorder (``recorder`` is its
name): clips written, dropped by ``reason`` (``disk``: writing failed,
``behind``: the writer fell behind, ``stream``: no key frame in time; each
reason from 0), deleted to keep within ``max_bytes`` / ``max_age``; the clips
in its directory now and their bytes (MP4 files and sidecars), the pre-roll's
bytes in memory, ``clips_recording`` 1 while a clip is being written, the
frames the recorder could not keep (never a frame of the pipeline) and the
triggers it received. ``framescope_clips_dropped_total > 0`` is the alert.

The server :meth:`PrometheusExporter.serve` starts also answers
``/healthz``: 200 when the exported pipelines are healthy, 503 when not,
with a JSON body naming each problem (the verdict of
:mod:`framescope.pipeline.views.health`, the one the live view's
``/healthz`` and the heartbeat file give).
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from framescope._httpserver import (
    BoundedServing,
    GuardedRequestHandler,
    check_address,
    listening_on,
)
from framescope._keys import without_prefix
from framescope._optional import require
from framescope._validation import check_positive_seconds
from framescope.exporters.sources import MetricSources, Reading, cpu_seconds, histogram_of
from framescope.histogram import DEFAULT_LATENCY_BUCKETS, HistogramSnapshot
from framescope.pipeline.model.batches import BatchSnapshot
from framescope.pipeline.model.clips import CLIP_DROP_REASONS, ClipsSnapshot
from framescope.pipeline.model.counters import BATCH_REASONS
from framescope.pipeline.model.events import NodePhase
from framescope.pipeline.model.latency import LATENCY_PARTS, LATENCY_TOTALS
from framescope.pipeline.model.snapshot import PipelineSnapshot, SnapshotSource, StageSnapshot
from framescope.pipeline.model.sources import SourceSnapshot, SourceState
from framescope.pipeline.model.viewers import ViewerSnapshot
from framescope.pipeline.views.health import RECONNECT_LIMIT_S, Health, judge_health
from framescope.timepiece.tachometers import BaseTachometer
from framescope.timepiece.timers import BaseTimer

_prometheus = require("prometheus_client", "prometheus", "the Prometheus exporter")
_core = require("prometheus_client.core", "prometheus", "the Prometheus exporter")

__all__ = ["MetricsServer", "PrometheusExporter"]

_PHASES = [phase.name for phase in NodePhase]


def _buckets(histogram: HistogramSnapshot) -> list[tuple[str, float]]:
    return [
        ("+Inf" if math.isinf(bound) else repr(bound), float(count))
        for bound, count in histogram.cumulative()
    ]


class _BoundedWSGIServer(BoundedServing, WSGIServer):
    """The WSGI server, with bounded connection threads, timeouts and optional TLS."""


class _QuietHandler(GuardedRequestHandler, WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _with_health(app: Any, health: Callable[[], Health]) -> Any:
    """``app`` with ``/healthz`` answered from ``health()`` (200 or 503, a JSON body)."""

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/healthz":
            return app(environ, start_response)
        verdict = health()
        body = verdict.to_json()
        reason = "200 OK" if verdict.healthy else "503 Service Unavailable"
        start_response(
            reason,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return serve


class MetricsServer:
    """An HTTP(S) server for ``/metrics`` on a named thread; :meth:`close` stops and joins it.

    With ``health`` it also answers ``/healthz``: 200 when ``health()`` says
    healthy, 503 when not, with its JSON body (:class:`~framescope.pipeline.views.health.Health`).

    At most ``max_connections`` scrapes are served at once (more are answered
    503); a connection counts only once its request head is complete, which
    it must be within ``header_timeout`` seconds (a slower one is cut, and
    when ``max_connections`` connections are still sending their head a new
    one makes the oldest of them go). Each read or write gets
    ``request_timeout`` seconds, and with ``ssl_context`` it serves HTTPS.

    Attributes:
        host: the address it listens on.
        port: the port (the one picked when 0 was asked for).
    """

    def __init__(
        self,
        registry: Any,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 32,
        request_timeout: float = 10.0,
        header_timeout: float = 5.0,
        health: Callable[[], Health] | None = None,
    ) -> None:
        host, port = check_address(host, port)
        app = _prometheus.make_wsgi_app(registry)
        if health is not None:
            app = _with_health(app, health)
        with listening_on(host, port):
            self._server = make_server(
                host, port, app, server_class=_BoundedWSGIServer, handler_class=_QuietHandler
            )
        self.host = host
        self.port: int = self._server.server_port
        self.scheme = "http" if ssl_context is None else "https"
        self._server.configure(
            name=f"framescope-metrics-{self.port}",
            max_connections=max_connections,
            request_timeout=request_timeout,
            header_timeout=header_timeout,
            ssl_context=ssl_context,
        )
        self._server.start()

    @property
    def url(self) -> str:
        """The URL to scrape."""
        return f"{self.scheme}://{self.host}:{self.port}/metrics"

    @property
    def refused(self) -> int:
        """Connections answered 503: ``max_connections`` were being served, or, still
        sending their head, they made room for a newer connection."""
        return self._server.refused

    @property
    def timed_out(self) -> int:
        """Connections cut because their request head was not complete in ``header_timeout``."""
        return self._server.timed_out

    def handler_threads(self) -> int:
        """How many connections have a thread now (sending their request head, or served)."""
        return self._server.handler_threads()

    def close(self, timeout: float = 2.0) -> bool:
        """Stop serving, end open connections and join the threads; False if one outlived it."""
        return self._server.stop(timeout)


class PrometheusExporter:
    """A Prometheus collector for framescope pipelines and timers.

    Example::

        exporter = PrometheusExporter()
        exporter.add_pipeline(pipeline)
        exporter.add_timer(frame_ticker, "frame")
        server = exporter.serve(port=9100)   # scrape http://127.0.0.1:9100/metrics
        ...
        exporter.close()

    Args:
        namespace: the prefix of every metric name.
        buckets: latency histogram upper bounds in seconds.
        registry: the ``prometheus_client`` registry to register with; a fresh
            private ``CollectorRegistry`` when None (pass
            ``prometheus_client.REGISTRY`` to join the process's default one).
    """

    def __init__(
        self,
        namespace: str = "framescope",
        buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
        registry: Any = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(namespace, str) or not namespace.isidentifier():
            raise ValueError(f"namespace must be a valid metric name prefix, got {namespace!r}")
        self.namespace = namespace
        self.labels = _constant_labels(labels)
        self.sources = MetricSources(buckets)
        self.registry = registry if registry is not None else _core.CollectorRegistry()
        self.registry.register(self)
        self._servers: list[MetricsServer] = []

    def add_pipeline(self, pipeline: SnapshotSource) -> PrometheusExporter:
        """Export ``pipeline`` (see the module docs for its metrics); returns self."""
        self.sources.add_pipeline(pipeline)
        return self

    def add_timer(self, timer: BaseTimer | BaseTachometer, name: str) -> PrometheusExporter:
        """Export a Ticker, StopWatch or tachometer with label ``timer=name``; returns self."""
        self.sources.add_timer(timer, name)
        return self

    def serve(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 32,
        request_timeout: float = 10.0,
        header_timeout: float = 5.0,
        stall_after: float = 5.0,
        reconnect_limit: float = RECONNECT_LIMIT_S,
    ) -> MetricsServer:
        """Serve this exporter's registry on ``http://host:port/metrics`` (port 0: any free).

        It listens on loopback unless told otherwise: pass ``host="0.0.0.0"``
        to let other machines scrape it (and ``ssl_context`` for HTTPS). See
        :class:`MetricsServer` for the connection bounds. ``/healthz`` on the
        same server answers :meth:`health` with ``stall_after`` and
        ``reconnect_limit``: 200 or 503, with a JSON body.
        """
        bounds = {
            "stall_after": check_positive_seconds(stall_after, "stall_after"),
            "reconnect_limit": check_positive_seconds(reconnect_limit, "reconnect_limit"),
        }
        server = MetricsServer(
            self.registry,
            port,
            host,
            ssl_context=ssl_context,
            max_connections=max_connections,
            request_timeout=request_timeout,
            header_timeout=header_timeout,
            health=lambda: self.health(**bounds),
        )
        self._servers.append(server)
        return server

    def health(
        self, *, stall_after: float = 5.0, reconnect_limit: float = RECONNECT_LIMIT_S
    ) -> Health:
        """The health of the exported pipelines, one snapshot each (what ``/healthz`` answers).

        See :mod:`framescope.pipeline.views.health` for what is unhealthy: a
        stalled or failed source, one reconnecting with no frame for
        ``reconnect_limit`` seconds, a stage stalled for ``stall_after``
        seconds; never a blocked or an ended source. No pipeline: healthy.
        """
        return judge_health(
            self.sources.read().pipelines, stall_after=stall_after, reconnect_limit=reconnect_limit
        )

    def describe(self) -> list[Any]:
        """Nothing to describe up front: the metrics depend on what is added later."""
        return []

    def collect(self) -> Iterator[Any]:
        """Read every source once and yield the metric families (called per scrape)."""
        families = render(self.sources.read(), self.namespace, self.sources.buckets)
        if not self.labels:
            yield from families
            return
        for family in families:
            family.samples = [
                sample._replace(labels={**self.labels, **sample.labels})
                for sample in family.samples
            ]
            yield family

    def close(self) -> None:
        """Stop the servers started by :meth:`serve` and unregister from the registry."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        with contextlib.suppress(KeyError):  # already unregistered
            self.registry.unregister(self)

    def __enter__(self) -> PrometheusExporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_PIPELINE_COUNTERS = ("forwarded", "completed", "failed")

# The labels framescope sets itself (``labels=`` may not name them).
_OWN_LABELS = frozenset(
    {"pipeline", "stage", "replica", "reason", "timer", "state", "le", "quantile"}
    | {"source", "part", "clock"}
    | {"preview", "camera", "viewer", "outcome"}
    | {"recorder"}
)

_VIEWER_LABELS = ("pipeline", "preview", "camera", "viewer")
_CLIP_LABELS = ("pipeline", "recorder")

# The metric families of one scrape, in the order they are exposed:
# (key, family class in prometheus_client.core, name after the namespace, help, labels).
_FAMILIES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (
        "p_latency",
        "HistogramMetricFamily",
        "pipeline_latency_seconds",
        "End-to-end latency of items through the pipeline.",
        ("pipeline",),
    ),
    (
        "p_fps",
        "GaugeMetricFamily",
        "pipeline_frames_per_second",
        "Items completed per second over the recent window.",
        ("pipeline",),
    ),
    *(
        (
            key,
            "CounterMetricFamily",
            f"pipeline_{key}_items",
            f"Items {key} by the pipeline.",
            ("pipeline",),
        )
        for key in _PIPELINE_COUNTERS
    ),
    (
        "p_dropped",
        "CounterMetricFamily",
        "pipeline_dropped_items",
        "Items lost: queue_full (refused), overflow (dropped by policy), "
        "result_unread (results nobody read), cleanup (queued at cleanup).",
        ("pipeline", "reason"),
    ),
    (
        "s_latency",
        "HistogramMetricFamily",
        "stage_processing_seconds",
        "Time a stage spends processing one item.",
        ("pipeline", "stage"),
    ),
    (
        "s_fps",
        "GaugeMetricFamily",
        "stage_frames_per_second",
        "Items a stage processes per second over the recent window.",
        ("pipeline", "stage"),
    ),
    (
        "s_failed",
        "CounterMetricFamily",
        "stage_failed_items",
        "Items a stage raised on.",
        ("pipeline", "stage"),
    ),
    (
        "s_depth",
        "GaugeMetricFamily",
        "stage_queue_depth",
        "Items waiting in the stage's input queue.",
        ("pipeline", "stage"),
    ),
    (
        "s_state",
        "StateSetMetricFamily",
        "stage_state",
        "What the stage is doing (needs pipeline debugging on).",
        ("pipeline", "stage"),
    ),
    (
        "s_cpu",
        "CounterMetricFamily",
        "stage_cpu_seconds",
        "Time a stage's threads spent on a CPU (on_cpu) or waiting for one (runqueue), "
        "and sleeping inside its calls (blocked).",
        ("pipeline", "stage", "state"),
    ),
    (
        "s_batch_size",
        "HistogramMetricFamily",
        "stage_batch_size",
        "Items in each batch that left a batched stage.",
        ("pipeline", "stage"),
    ),
    (
        "s_batches",
        "CounterMetricFamily",
        "stage_batches",
        "Batches that left a batched stage: full, at their timeout, or flushed (input ended).",
        ("pipeline", "stage", "reason"),
    ),
    (
        "s_batch_wait",
        "HistogramMetricFamily",
        "stage_batch_wait_seconds",
        "Time an item waited in a forming batch before the batch's call.",
        ("pipeline", "stage"),
    ),
    (
        "m_cores",
        "GaugeMetricFamily",
        "machine_cores",
        "The cores of the machine the pipeline runs on.",
        ("pipeline",),
    ),
    (
        "m_busy",
        "GaugeMetricFamily",
        "machine_cpu_busy_ratio",
        "The share of all the machine's cores busy (every process) over the recent window.",
        ("pipeline",),
    ),
    (
        "m_load1",
        "GaugeMetricFamily",
        "machine_load1",
        "The machine's one-minute load average.",
        ("pipeline",),
    ),
    (
        "m_process",
        "GaugeMetricFamily",
        "process_cpu_cores",
        "The cores the pipeline's process kept busy over the recent window.",
        ("pipeline",),
    ),
    (
        "r_latency",
        "HistogramMetricFamily",
        "replica_processing_seconds",
        "Time one replica of a stage spends processing one item.",
        ("pipeline", "stage", "replica"),
    ),
    (
        "r_fps",
        "GaugeMetricFamily",
        "replica_frames_per_second",
        "Items one replica of a stage processes per second over the recent window.",
        ("pipeline", "stage", "replica"),
    ),
    (
        "src_state",
        "GaugeMetricFamily",
        "source_state",
        "1 for the state a source is in, 0 for the others.",
        ("pipeline", "source", "state"),
    ),
    (
        "src_since",
        "GaugeMetricFamily",
        "source_state_seconds",
        "Seconds a source has been in its state.",
        ("pipeline", "source"),
    ),
    (
        "src_age",
        "GaugeMetricFamily",
        "source_last_frame_age_seconds",
        "Seconds since a source's last frame.",
        ("pipeline", "source"),
    ),
    (
        "src_fps",
        "GaugeMetricFamily",
        "source_frames_per_second",
        "Frames a source gave per second over the recent window.",
        ("pipeline", "source"),
    ),
    (
        "src_frames",
        "CounterMetricFamily",
        "source_frames",
        "Frames (items) taken from a source.",
        ("pipeline", "source"),
    ),
    (
        "src_dropped",
        "CounterMetricFamily",
        "source_dropped_items",
        "A source's items the pipeline refused (its overflow policy) or a stop left unfed.",
        ("pipeline", "source"),
    ),
    (
        "src_failed",
        "CounterMetricFamily",
        "source_failed_items",
        "A source's items a stage failed on, as read from the results (raise policy).",
        ("pipeline", "source"),
    ),
    (
        "src_reconnects",
        "CounterMetricFamily",
        "source_reconnects",
        "Times a source reopened its stream.",
        ("pipeline", "source"),
    ),
    (
        "src_transitions",
        "CounterMetricFamily",
        "source_transitions",
        "Times a source entered each state.",
        ("pipeline", "source", "state"),
    ),
    (
        "src_share",
        "GaugeMetricFamily",
        "source_state_share",
        "Share of a source's last hour spent in each state.",
        ("pipeline", "source", "state"),
    ),
    (
        "src_rate_ratio",
        "GaugeMetricFamily",
        "source_rate_ratio",
        "A source's frames a second over its last hour against its nominal rate.",
        ("pipeline", "source"),
    ),
    (
        "src_latency",
        "HistogramMetricFamily",
        "source_latency_seconds",
        "A source's items' age split from capture to glass, by part (and totals).",
        ("pipeline", "source", "part"),
    ),
    (
        "src_clock",
        "CounterMetricFamily",
        "source_capture_clock_frames",
        "A source's frames stamped by each capture clock.",
        ("pipeline", "source", "clock"),
    ),
    (
        "src_untimed",
        "CounterMetricFamily",
        "source_untimed_items",
        "A source's results that carried no stamps (not in its latency split).",
        ("pipeline", "source"),
    ),
    (
        "v_latency",
        "HistogramMetricFamily",
        "viewer_stage_to_screen_seconds",
        "A WebRTC viewer's frames' time from the stage to the browser's screen.",
        _VIEWER_LABELS,
    ),
    (
        "v_frames",
        "CounterMetricFamily",
        "viewer_frames",
        "A WebRTC viewer's frames: sent, dropped (could not keep up, or joined), placeholder.",
        (*_VIEWER_LABELS, "outcome"),
    ),
    (
        "v_uncertainty",
        "GaugeMetricFamily",
        "viewer_clock_uncertainty_seconds",
        "Half the round trip that relates a viewer's clock to this machine's.",
        _VIEWER_LABELS,
    ),
    (
        "c_written",
        "CounterMetricFamily",
        "clips_written",
        "Event clips a recorder wrote completely.",
        _CLIP_LABELS,
    ),
    (
        "c_dropped",
        "CounterMetricFamily",
        "clips_dropped",
        "Event clips not written: disk (writing failed), behind (the writer fell behind), "
        "stream (no key frame in time).",
        (*_CLIP_LABELS, "reason"),
    ),
    (
        "c_deleted",
        "CounterMetricFamily",
        "clips_deleted",
        "Event clips deleted to keep within max_bytes / max_age.",
        _CLIP_LABELS,
    ),
    (
        "c_on_disk",
        "GaugeMetricFamily",
        "clips_on_disk",
        "Event clips in a recorder's directory now.",
        _CLIP_LABELS,
    ),
    (
        "c_disk_bytes",
        "GaugeMetricFamily",
        "clips_disk_bytes",
        "Bytes of a recorder's clips on disk (MP4 files and sidecars).",
        _CLIP_LABELS,
    ),
    (
        "c_ring_bytes",
        "GaugeMetricFamily",
        "clips_ring_bytes",
        "Encoded bytes a recorder holds in memory for its pre-roll.",
        _CLIP_LABELS,
    ),
    (
        "c_ring_overflows",
        "CounterMetricFamily",
        "clips_ring_overflows",
        "Times max_memory made a recorder's ring cut a pre-roll short.",
        _CLIP_LABELS,
    ),
    (
        "c_recording",
        "GaugeMetricFamily",
        "clips_recording",
        "1 while a recorder writes a clip, else 0.",
        _CLIP_LABELS,
    ),
    (
        "c_frames_dropped",
        "CounterMetricFamily",
        "clips_frames_dropped",
        "Frames a recorder could not keep (its encoder was behind); the pipeline's are unharmed.",
        _CLIP_LABELS,
    ),
    (
        "c_triggers",
        "CounterMetricFamily",
        "clips_triggers",
        "Triggers a recorder received.",
        _CLIP_LABELS,
    ),
    (
        "t_latency",
        "HistogramMetricFamily",
        "timer_seconds",
        "Intervals measured by a framescope timer.",
        ("timer",),
    ),
    (
        "t_rate",
        "GaugeMetricFamily",
        "timer_events_per_second",
        "Events per second over the timer's recent window.",
        ("timer",),
    ),
)


def render(
    reading: Reading,
    namespace: str = "framescope",
    buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
) -> Iterable[Any]:
    """The Prometheus metric families for one reading (a pure function of it and the buckets)."""
    families = _empty_families(namespace)
    for metrics in reading.pipelines:
        _add_pipeline(families, metrics, buckets)
        for stage in metrics.stages:
            if stage.replica_of is None:
                _add_stage(families, metrics, stage, buckets)
            else:
                of = without_prefix(stage.replica_of, metrics.pipeline)
                _add_replica(families, metrics, stage, of, buckets)
        for source in metrics.sources.values():
            _add_source(families, metrics.pipeline, source)
            _add_source_latency(families, metrics.pipeline, source, buckets)
        for viewer in metrics.viewers:
            _add_viewer(families, metrics.pipeline, viewer, buckets)
        for recorder in metrics.clips:
            _add_clips(families, metrics.pipeline, recorder)
    for timer in reading.timers:
        histogram = histogram_of(timer.stats, buckets)
        if histogram is not None:
            families["t_latency"].add_metric([timer.name], _buckets(histogram), histogram.total)
        families["t_rate"].add_metric([timer.name], timer.stats.rate())
    return [f for f in families.values() if f.samples]


def _empty_families(namespace: str) -> dict[str, Any]:
    """A fresh family of each metric in ``_FAMILIES``, by key, in exposition order."""
    return {
        key: getattr(_core, kind)(f"{namespace}_{name}", doc, labels=list(labels))
        for key, kind, name, doc, labels in _FAMILIES
    }


def _add_pipeline(
    families: dict[str, Any], metrics: PipelineSnapshot, buckets: Sequence[float]
) -> None:
    """One pipeline's own series: latency, fps, item counters and drops by reason."""
    name = metrics.pipeline
    histogram = histogram_of(metrics.latency, buckets)
    if histogram is not None:
        families["p_latency"].add_metric([name], _buckets(histogram), histogram.total)
    families["p_fps"].add_metric([name], metrics.latency.rate(metrics.taken_ns))
    for key in _PIPELINE_COUNTERS:
        families[key].add_metric([name], float(metrics.count(key)))
    for reason, total in metrics.dropped().items():
        families["p_dropped"].add_metric([name, reason], float(total))
    machine = metrics.machine
    if machine is not None:
        figures = (
            ("m_cores", machine.cores),
            ("m_busy", machine.cpu_busy),
            ("m_load1", machine.load1),
            ("m_process", machine.process_cores),
        )
        for key, value in figures:
            if value is not None:
                families[key].add_metric([name], float(value))


def _add_stage(
    families: dict[str, Any],
    metrics: PipelineSnapshot,
    stage: StageSnapshot,
    buckets: Sequence[float],
) -> None:
    """One stage's series (a replicated stage's are its replicas' merged)."""
    labels = [metrics.pipeline, stage.stage]
    histogram = histogram_of(stage.latency, buckets)
    if histogram is not None:
        families["s_latency"].add_metric(labels, _buckets(histogram), histogram.total)
    families["s_fps"].add_metric(labels, stage.latency.rate(metrics.taken_ns))
    families["s_failed"].add_metric(labels, float(stage.failures))
    if stage.queue_depth is not None:
        families["s_depth"].add_metric(labels, float(stage.queue_depth))
    if stage.phase is not None:
        state = {phase: phase == stage.phase for phase in _PHASES}
        families["s_state"].add_metric(labels, state)
    for state_name, seconds in cpu_seconds(stage):
        families["s_cpu"].add_metric([*labels, state_name], seconds)
    if stage.batch is not None:
        _add_batches(families, labels, stage.batch, buckets)


def _add_batches(
    families: dict[str, Any], labels: list[str], batch: BatchSnapshot, buckets: Sequence[float]
) -> None:
    """A batched stage's series: its batch sizes, why batches left, the items' batch wait."""
    bounds = sorted({*(2**power for power in range(batch.size.bit_length())), batch.size})
    sizes = batch.sizes
    cumulative = [
        (str(bound), float(sum(n for size, n in sizes.items() if size <= bound)))
        for bound in bounds
    ]
    cumulative.append(("+Inf", float(batch.batches)))
    families["s_batch_size"].add_metric(labels, cumulative, float(batch.items))
    for reason in BATCH_REASONS:
        families["s_batches"].add_metric([*labels, reason], float(batch.reason(reason)))
    histogram = histogram_of(batch.wait, buckets)
    if histogram is not None:
        families["s_batch_wait"].add_metric(labels, _buckets(histogram), histogram.total)


def _add_viewer(
    families: dict[str, Any], pipeline: str, viewer: ViewerSnapshot, buckets: Sequence[float]
) -> None:
    """One WebRTC viewer's series."""
    labels = [pipeline, viewer.preview, viewer.camera or "", viewer.viewer]
    histogram = histogram_of(viewer.stage_to_screen, buckets)
    if histogram is not None:
        families["v_latency"].add_metric(labels, _buckets(histogram), histogram.total)
    outcomes = (
        ("sent", viewer.frames_sent),
        ("dropped", viewer.frames_dropped),
        ("placeholder", viewer.placeholder_frames),
    )
    for outcome, count in outcomes:
        families["v_frames"].add_metric([*labels, outcome], float(count))
    if viewer.clock_uncertainty is not None:
        families["v_uncertainty"].add_metric(labels, viewer.clock_uncertainty)


def _add_clips(families: dict[str, Any], pipeline: str, recorder: ClipsSnapshot) -> None:
    """One event-clip recorder's series (every drop reason, from 0)."""
    labels = [pipeline, recorder.name]
    reasons = (*CLIP_DROP_REASONS, *sorted(set(recorder.clips_dropped) - set(CLIP_DROP_REASONS)))
    for reason in reasons:
        dropped = recorder.clips_dropped.get(reason, 0)
        families["c_dropped"].add_metric([*labels, reason], float(dropped))
    figures = (
        ("c_written", recorder.clips_written),
        ("c_deleted", recorder.clips_deleted),
        ("c_on_disk", recorder.clips_on_disk),
        ("c_disk_bytes", recorder.bytes_on_disk),
        ("c_ring_bytes", recorder.ring_bytes),
        ("c_ring_overflows", recorder.ring_overflows),
        ("c_recording", int(recorder.recording)),
        ("c_frames_dropped", recorder.frames_dropped),
        ("c_triggers", recorder.triggers),
    )
    for key, value in figures:
        families[key].add_metric(labels, float(value))


def _add_replica(
    families: dict[str, Any],
    metrics: PipelineSnapshot,
    stage: StageSnapshot,
    of: str,
    buckets: Sequence[float],
) -> None:
    """One replica's series, labelled with the stage it is a replica of (``of``) and its index."""
    labels = [metrics.pipeline, of, str(stage.replica_index)]
    histogram = histogram_of(stage.latency, buckets)
    if histogram is not None:
        families["r_latency"].add_metric(labels, _buckets(histogram), histogram.total)
    families["r_fps"].add_metric(labels, stage.latency.rate(metrics.taken_ns))


def _add_source(families: dict[str, Any], pipeline: str, source: SourceSnapshot) -> None:
    """One source's series (a many-source run)."""
    labels = [pipeline, source.name]
    for state in SourceState:
        families["src_state"].add_metric([*labels, state.value], float(state is source.state))
    for state in SourceState:
        entered = source.transitions.get(state.value, 0)
        families["src_transitions"].add_metric([*labels, state.value], float(entered))
    families["src_since"].add_metric(labels, source.since)
    if source.last_frame_age is not None:
        families["src_age"].add_metric(labels, source.last_frame_age)
    if source.fps is not None:
        families["src_fps"].add_metric(labels, source.fps)
    counts = (
        ("src_frames", source.frames),
        ("src_dropped", source.dropped),
        ("src_failed", source.failed),
        ("src_reconnects", source.reconnects),
    )
    for key, value in counts:
        families[key].add_metric(labels, float(value))
    quality = source.quality
    if quality is not None and quality.window:
        for state in SourceState:
            share = quality.shares.get(state.value, 0.0)
            families["src_share"].add_metric([*labels, state.value], share)
        if quality.rate_ratio is not None:
            families["src_rate_ratio"].add_metric(labels, quality.rate_ratio)


def _add_source_latency(
    families: dict[str, Any], pipeline: str, source: SourceSnapshot, buckets: Sequence[float]
) -> None:
    """One source's latency split: a histogram a part with samples, its clocks, its untimed."""
    latency = source.latency
    if latency is None:
        return
    labels = [pipeline, source.name]
    for part in (*LATENCY_PARTS, *LATENCY_TOTALS):
        stats = latency.stats.get(part)
        histogram = None if stats is None or not stats.count else histogram_of(stats, buckets)
        if histogram is not None:
            families["src_latency"].add_metric(
                [*labels, part], _buckets(histogram), histogram.total
            )
    for clock, count in latency.clocks.items():
        families["src_clock"].add_metric([*labels, clock], float(count))
    families["src_untimed"].add_metric(labels, float(latency.untimed))


def _constant_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Check ``labels=``: names that are Prometheus label names, values that are strings."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a mapping of names to values, got {type(labels).__name__}")
    checked = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("__"):
            raise ValueError(f"labels: {key!r} is not a Prometheus label name")
        if key in _OWN_LABELS:
            raise ValueError(f"labels: {key!r} is a label framescope sets itself")
        if not isinstance(value, str):
            kind = type(value).__name__
            raise TypeError(f"labels: the value of {key!r} must be a str, got {kind}")
        checked[key] = value
    return checked

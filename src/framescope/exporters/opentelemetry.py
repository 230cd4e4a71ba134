"""Pipelines and timers as OpenTelemetry metrics, frame traces as spans (``framescope[otel]``).

The numbers are those of the Prometheus exporter, as asynchronous (observable)
instruments read at each collection:

=================================  ================  =======================================
instrument                         kind              attributes
=================================  ================  =======================================
framescope.pipeline.latency        gauge (s)         pipeline, quantile (0.5, 0.9, 0.99)
framescope.pipeline.frame_rate     gauge ({frame}/s) pipeline
framescope.pipeline.items          counter           pipeline, outcome (forwarded, completed,
                                                     failed)
framescope.pipeline.dropped        counter           pipeline, reason
framescope.stage.duration          gauge (s)         pipeline, stage, quantile
framescope.stage.processed         counter           pipeline, stage
framescope.stage.busy_time         counter (s)       pipeline, stage
framescope.stage.frame_rate        gauge ({frame}/s) pipeline, stage
framescope.stage.failed            counter           pipeline, stage
framescope.stage.queue_depth       gauge             pipeline, stage (threaded pipelines)
framescope.stage.state             gauge (0 or 1)    pipeline, stage, state (debugging on)
framescope.stage.cpu               counter (s)       pipeline, stage, state (on_cpu, runqueue,
                                                     blocked)
framescope.stage.batches           counter           pipeline, stage, reason (full, timeout,
                                                     flush; batched stages)
framescope.stage.batch_items       counter           pipeline, stage (batched stages)
framescope.stage.batch_wait        gauge (s)         pipeline, stage, quantile (batched stages)
framescope.machine.cores           gauge ({cpu})     pipeline
framescope.machine.cpu_busy        gauge (1)         pipeline
framescope.machine.load1           gauge (1)         pipeline
framescope.process.cpu_cores       gauge ({cpu})     pipeline
framescope.source.state            gauge (0 or 1)    pipeline, source, state (many sources)
framescope.source.state_time       gauge (s)         pipeline, source
framescope.source.last_frame_age   gauge (s)         pipeline, source
framescope.source.frame_rate       gauge ({frame}/s) pipeline, source
framescope.source.frames           counter           pipeline, source
framescope.source.dropped          counter           pipeline, source
framescope.source.failed           counter           pipeline, source
framescope.source.reconnects       counter           pipeline, source
framescope.source.transitions      counter           pipeline, source, state
framescope.source.state_share      gauge (1)         pipeline, source, state (last hour)
framescope.source.rate_ratio       gauge (1)         pipeline, source (last hour)
framescope.source.latency          gauge (s)         pipeline, source, part, quantile
framescope.source.latency_count    counter           pipeline, source, part
framescope.source.capture_clock    counter           pipeline, source, clock
framescope.viewer.stage_to_screen  gauge (s)         pipeline, preview, camera, viewer, quantile
framescope.viewer.frames           counter           pipeline, preview, camera, viewer, outcome
framescope.clips.written           counter           pipeline, recorder
framescope.clips.dropped           counter           pipeline, recorder, reason
framescope.clips.deleted           counter           pipeline, recorder
framescope.clips.on_disk           gauge             pipeline, recorder
framescope.clips.disk_bytes        gauge (By)        pipeline, recorder
framescope.clips.ring_bytes        gauge (By)        pipeline, recorder
framescope.clips.recording         gauge (0 or 1)    pipeline, recorder
framescope.clips.frames_dropped    counter           pipeline, recorder
framescope.clips.triggers          counter           pipeline, recorder
framescope.timer.duration          gauge (s)         timer, quantile
framescope.timer.count             counter           timer
framescope.timer.rate              gauge (1/s)       timer
=================================  ================  =======================================

A replicated stage reports its replicas merged (its frame rate their sum);
each replica shows on its own in the snapshot, the live view and Prometheus.
OpenTelemetry has no asynchronous histogram, so latency distributions are
reported as quantile gauges over each timer's recent window, with the exact
all-time count and sum as counters. ``stage.cpu`` and the machine gauges are
Prometheus's ``stage_cpu_seconds_total`` and ``machine_*``, the ``source.``
instruments its ``source_*`` series (see :mod:`framescope.exporters.prometheus`):
``source.latency`` is a source's capture-to-glass split (``part``:
``capture``, ``decode``, ``queue``, ``pipeline``, ``output``, ``to_out``,
``to_glass``) as quantiles over its recent frames, ``source.latency_count``
the frames each part timed, ``source.capture_clock`` the frames each capture
clock stamped. The ``viewer.`` instruments are a live view's WebRTC viewers
(export the ``LiveView``): each one's stage-to-screen latency quantiles and
its frames by ``outcome`` (``sent``, ``dropped``, ``placeholder``).
The ``clips.`` instruments are the event-clip recorders, Prometheus's
``clips_*`` series (``recorder`` is the recorder's name; ``clips.dropped``
has every ``reason`` from 0).
With ``traces=True`` the pipeline's sampled frame traces (debugging on) become
spans: one ``frame`` span per traced frame, a child span per stage, and the
stage's custom blocks nested inside. Spans are made on their own schedule (every
``trace_interval`` seconds, on a named thread, and at
:meth:`OpenTelemetryExporter.close`), never as a side effect of a metrics
collection.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from framescope._optional import require
from framescope._periodic import run_every
from framescope._validation import check_positive_seconds, check_seconds_or_none
from framescope._version import __version__
from framescope._waits import Deadline
from framescope.clock import SYSTEM_CLOCK, Clock, TimeSource
from framescope.exporters.otlp import delivered_spans, otlp_meter_provider, otlp_tracer_provider
from framescope.exporters.sources import MetricSources, Reading, cpu_seconds
from framescope.pipeline.model.clips import CLIP_DROP_REASONS, ClipsSnapshot
from framescope.pipeline.model.counters import BATCH_REASONS
from framescope.pipeline.model.events import NodePhase
from framescope.pipeline.model.snapshot import SnapshotSource
from framescope.pipeline.model.sources import SourceSnapshot, SourceState
from framescope.pipeline.model.traces import FrameTrace
from framescope.pipeline.model.viewers import ViewerSnapshot
from framescope.stats import StatsSnapshot
from framescope.timepiece.tachometers import BaseTachometer
from framescope.timepiece.timers import BaseTimer

_metrics_api = require("opentelemetry.metrics", "otel", "the OpenTelemetry exporter")
_trace_api = require("opentelemetry.trace", "otel", "the OpenTelemetry exporter")

__all__ = ["OpenTelemetryExporter", "otlp_meter_provider", "otlp_tracer_provider"]

#: The quantiles reported for each latency: the Summary field, and the attribute value.
QUANTILES = (("median", "0.5"), ("p90", "0.9"), ("p99", "0.99"))
_READING_REUSE_NS = 50_000_000  # instruments of one collection share one reading
EXIT_TIMEOUT_S = 1.0  # at exit, exporters not closed get this long to send what is left

logger = logging.getLogger(__name__)
_open_exporters: weakref.WeakSet[OpenTelemetryExporter] = weakref.WeakSet()

Observed = Iterable[tuple[float, dict[str, str]]]


def _quantiles(stats: StatsSnapshot, attributes: dict[str, str]) -> Observed:
    if not stats.samples:
        return []
    summary = stats.summary()
    return [
        (getattr(summary, field), {**attributes, "quantile": label}) for field, label in QUANTILES
    ]


class OpenTelemetryExporter:
    """Reports framescope pipelines and timers through the OpenTelemetry SDK.

    Example::

        exporter = OpenTelemetryExporter()          # OTLP/HTTP, every 60 s
        exporter.add_pipeline(pipeline, traces=True)
        ...
        exporter.close()

    Args:
        meter_provider: the MeterProvider to report through (any configured
            exporter). None: a new one sending OTLP/HTTP (see
            :func:`otlp_meter_provider`), owned and shut down by this exporter.
        tracer_provider: the TracerProvider for frame spans; None: a new OTLP
            one, created when a pipeline is added with ``traces=True``.
        trace_interval: seconds between turning new frame traces into spans.
        clock: the clock that times the reading cache and the trace schedule.

    Providers it creates are shut down by :meth:`close`, within its timeout,
    however the collector behaves; an exporter never closed gets
    ``EXIT_TIMEOUT_S`` at interpreter exit, so a dead collector never holds
    the exit up. ``frames_traced`` counts frames turned into spans;
    ``spans_exported`` the spans the collector accepted (known for providers
    made by :func:`otlp_tracer_provider`; None for others).
    """

    def __init__(
        self,
        meter_provider: Any = None,
        *,
        tracer_provider: Any = None,
        trace_interval: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.trace_interval = check_positive_seconds(trace_interval, "trace_interval")
        if clock is not None and not isinstance(clock, TimeSource):
            raise TypeError(
                f"clock must provide monotonic_ns() and wall(), got {type(clock).__name__}"
            )
        for name, provider, method in (
            ("meter_provider", meter_provider, "get_meter"),
            ("tracer_provider", tracer_provider, "get_tracer"),
        ):
            if provider is not None and not callable(getattr(provider, method, None)):
                raise TypeError(
                    f"{name} must be an OpenTelemetry provider (with {method}()), "
                    f"got {type(provider).__name__}"
                )
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._owned: list[Any] = []
        if meter_provider is None:
            meter_provider = otlp_meter_provider()
            self._owned.append(meter_provider)
        self.meter_provider = meter_provider
        self._tracer_provider = tracer_provider
        self.sources = MetricSources()
        _open_exporters.add(self)
        self._traced: dict[str, int] = {}
        self._traced_pipelines: list[SnapshotSource] = []
        self._lock = threading.Lock()
        self._reading: tuple[int, Reading] | None = None
        self._stop = threading.Event()
        self._trace_thread: threading.Thread | None = None
        self.frames_traced = 0
        self._closed = False
        self._meter = meter_provider.get_meter("framescope", __version__)
        self._create_instruments()

    # -- sources ---------------------------------------------------------------------

    def add_pipeline(
        self, pipeline: SnapshotSource, *, traces: bool = False
    ) -> OpenTelemetryExporter:
        """Report ``pipeline``; with ``traces=True`` also its sampled frame traces as spans."""
        if traces and not getattr(pipeline, "debug", False):
            raise ValueError("traces=True needs frame traces: build the pipeline with debug=True")
        self.sources.add_pipeline(pipeline)
        if traces:
            if self._tracer_provider is None:
                self._tracer_provider = otlp_tracer_provider()
                self._owned.append(self._tracer_provider)
            with self._lock:
                self._traced_pipelines.append(pipeline)
                self._traced[pipeline.name] = -1
                if self._trace_thread is None:
                    self._trace_thread = threading.Thread(
                        target=self._trace_loop, name="framescope-otel-traces"
                    )
                    self._trace_thread.start()
        return self

    def _trace_loop(self) -> None:
        what = "OpenTelemetry exporter: making spans"
        run_every(self._clock, self._stop, self.trace_interval, self.export_traces, what=what)

    def add_timer(self, timer: BaseTimer | BaseTachometer, name: str) -> OpenTelemetryExporter:
        """Report a Ticker, StopWatch or tachometer with attribute ``timer=name``."""
        self.sources.add_timer(timer, name)
        return self

    # -- metrics ---------------------------------------------------------------------

    def _read(self) -> Reading:
        now = self._clock.monotonic_ns()
        with self._lock:
            cached = self._reading
            if cached is not None and now - cached[0] < _READING_REUSE_NS:
                return cached[1]
        reading = self.sources.read()
        with self._lock:
            self._reading = (now, reading)
        return reading

    def _observe(self, extract: Callable[[Reading], Iterable[tuple[float, dict[str, str]]]]) -> Any:
        observation = _metrics_api.Observation

        def callback(options: Any) -> list[Any]:
            return [observation(value, attrs) for value, attrs in extract(self._read())]

        return callback

    def _create_instruments(self) -> None:
        meter = self._meter
        gauge, counter = meter.create_observable_gauge, meter.create_observable_counter
        spec: list[tuple[Any, str, str, str, Callable[[Reading], Iterable[Any]]]] = [
            (gauge, "pipeline.latency", "s", "End-to-end latency quantiles.", _pipeline_latency),
            (
                gauge,
                "pipeline.frame_rate",
                "{frame}/s",
                "Items completed per second.",
                _pipe_rate,
            ),
            (counter, "pipeline.items", "{item}", "Items by outcome.", _pipeline_items),
            (counter, "pipeline.dropped", "{item}", "Items lost, by reason.", _pipeline_dropped),
            (gauge, "stage.duration", "s", "Stage processing-time quantiles.", _stage_duration),
            (counter, "stage.processed", "{item}", "Items a stage processed.", _stage_processed),
            (counter, "stage.busy_time", "s", "Time a stage spent processing.", _stage_busy),
            (
                gauge,
                "stage.frame_rate",
                "{frame}/s",
                "Items a stage processes per second.",
                _stage_rate,
            ),
            (counter, "stage.failed", "{item}", "Items a stage raised on.", _stage_failed),
            (gauge, "stage.queue_depth", "{item}", "Items waiting for the stage.", _stage_depth),
            (gauge, "stage.state", "1", "1 for the stage's current state.", _stage_state),
            (counter, "stage.cpu", "s", "Stage thread time by scheduler state.", _stage_cpu),
            (counter, "stage.batches", "{batch}", "Batches by why they left.", _stage_batches),
            (counter, "stage.batch_items", "{item}", "Items in those batches.", _batch_items),
            (gauge, "stage.batch_wait", "s", "Item wait in a forming batch.", _batch_wait),
            (gauge, "machine.cores", "{cpu}", "The machine's cores.", _machine("cores")),
            (gauge, "machine.cpu_busy", "1", "Share of all cores busy.", _machine("cpu_busy")),
            (gauge, "machine.load1", "1", "One-minute load average.", _machine("load1")),
            (
                gauge,
                "process.cpu_cores",
                "{cpu}",
                "Cores the pipeline's process kept busy.",
                _machine("process_cores"),
            ),
            *_source_spec(gauge, counter),
            (gauge, "viewer.stage_to_screen", "s", "Stage-to-screen quantiles.", _viewer_latency),
            (counter, "viewer.frames", "{frame}", "A viewer's frames by outcome.", _viewer_frames),
            *_clips_spec(gauge, counter),
            (gauge, "timer.duration", "s", "Timer interval quantiles.", _timer_duration),
            (counter, "timer.count", "{event}", "Intervals a timer measured.", _timer_count),
            (gauge, "timer.rate", "1/s", "Timer events per second.", _timer_rate),
        ]
        self.instruments = [
            create(f"framescope.{name}", [self._observe(extract)], unit=unit, description=doc)
            for create, name, unit, doc, extract in spec
        ]

    # -- traces ----------------------------------------------------------------------

    def export_traces(self) -> int:
        """Emit the frame traces sampled since the last call as spans; returns how many frames.

        Runs every ``trace_interval`` seconds and at :meth:`close` by itself;
        call it to send sooner.
        """
        if self._tracer_provider is None:
            return 0
        tracer = self._tracer_provider.get_tracer("framescope", __version__)
        exported = 0
        with self._lock:
            pipelines = list(self._traced_pipelines)
        for pipeline in pipelines:
            snapshot = pipeline.snapshot()
            traces = snapshot.traces
            with self._lock:
                last = self._traced[pipeline.name]
                fresh = [t for t in traces if t.frame_id > last]
                if fresh:
                    self._traced[pipeline.name] = fresh[-1].frame_id
            if snapshot.wall_time is None:
                continue
            # Trace times are monotonic; anchor them to the wall clock of the snapshot.
            offset = int(snapshot.wall_time.timestamp() * 1e9) - snapshot.taken_ns
            for frame in fresh:
                _emit_frame(tracer, pipeline.name, frame, offset)
            exported += len(fresh)
        self.frames_traced += exported
        return exported

    @property
    def spans_exported(self) -> int | None:
        """Spans the collector accepted (None: the tracer provider does not say)."""
        counted = delivered_spans(self._tracer_provider)
        return None if counted is None else counted.delivered

    # -- shutting down ---------------------------------------------------------------

    def close(self, timeout: float | None = 5.0) -> bool:
        """Stop the trace thread, send the last traces, shut down the providers it created.

        Returns within ``timeout`` seconds (None: no limit) however the
        collector behaves: True when everything was shut down, False when
        time ran out (what was not sent by then is dropped, with a warning;
        the SDK's own threads give up within their export timeout).
        """
        limit = check_seconds_or_none(timeout, "timeout")
        deadline = Deadline(limit)
        left = deadline.left

        self._stop.set()
        _open_exporters.discard(self)
        thread = self._trace_thread
        if thread is not None:
            thread.join(left())
        if not self._closed:
            self._closed = True
            self.export_traces()
        owned, self._owned = self._owned, []
        if not owned:
            return thread is None or not thread.is_alive()
        shutting = threading.Thread(
            target=_shut_down, args=(owned, deadline), name="framescope-otel-shutdown", daemon=True
        )
        shutting.start()
        shutting.join(left())
        if shutting.is_alive():
            logger.warning(
                "OpenTelemetry exporter: its providers did not shut down within %s s "
                "(is the collector reachable?); what was not sent is dropped",
                timeout,
            )
            return False
        return True

    def __enter__(self) -> OpenTelemetryExporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _shut_down(providers: list[Any], deadline: Deadline) -> None:
    """Shut each provider down (on a helper thread: the SDK may wait on the network)."""
    for provider in providers:
        left = deadline.left()
        try:
            if left is not None and "timeout_millis" in _parameters(provider.shutdown):
                provider.shutdown(timeout_millis=left * 1000)
            else:
                provider.shutdown()  # TracerProvider.shutdown takes no timeout
        except Exception:
            logger.exception("OpenTelemetry exporter: shutting a provider down failed")


def _parameters(function: Callable[..., Any]) -> Sequence[str]:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return ()


@atexit.register
def _close_at_exit() -> None:
    """Give exporters nobody closed a short, shared time to send what is left."""
    deadline = Deadline(EXIT_TIMEOUT_S)
    for exporter in list(_open_exporters):
        exporter.close(deadline.left())


def _emit_frame(tracer: Any, pipeline: str, frame: FrameTrace, offset: int) -> None:
    context_of = _trace_api.set_span_in_context
    root = tracer.start_span(
        "frame",
        start_time=frame.t_in + offset,
        attributes={"framescope.pipeline": pipeline, "framescope.frame_id": frame.frame_id},
    )
    parent = context_of(root)
    for span in frame.spans:
        stage = tracer.start_span(
            span.node_id,
            context=parent,
            start_time=span.t_start + offset,
            attributes={
                "framescope.queue_wait_s": span.wait_ns / 1e9,
                "framescope.queued": span.queued,
            },
        )
        inner = context_of(stage)
        for name, start, end in span.custom:
            tracer.start_span(name, context=inner, start_time=start + offset).end(end + offset)
        stage.end(span.t_end + offset)
    root.end(frame.t_out + offset)


# -- what each instrument observes (pure functions of a reading) ---------------------


def _pipeline_latency(r: Reading) -> Observed:
    for p in r.pipelines:
        yield from _quantiles(p.latency, {"pipeline": p.pipeline})


def _pipe_rate(r: Reading) -> Observed:
    return [(p.latency.rate(p.taken_ns), {"pipeline": p.pipeline}) for p in r.pipelines]


def _pipeline_items(r: Reading) -> Observed:
    for p in r.pipelines:
        for outcome in ("forwarded", "completed", "failed"):
            yield p.count(outcome), {"pipeline": p.pipeline, "outcome": outcome}


def _pipeline_dropped(r: Reading) -> Observed:
    for p in r.pipelines:
        for reason, total in p.dropped().items():
            yield total, {"pipeline": p.pipeline, "reason": reason}


def _stages(r: Reading) -> Iterable[tuple[Any, dict[str, str]]]:
    # A replicated stage's entry merges its replicas; their own entries are left
    # out, so a sum over stages counts each item once.
    for p in r.pipelines:
        for stage in p.stages:
            if stage.replica_of is None:
                yield stage, {"pipeline": p.pipeline, "stage": stage.stage}


def _stage_duration(r: Reading) -> Observed:
    for stage, attrs in _stages(r):
        yield from _quantiles(stage.latency, attrs)


def _stage_processed(r: Reading) -> Observed:
    return [(stage.latency.count, attrs) for stage, attrs in _stages(r)]


def _stage_busy(r: Reading) -> Observed:
    return [(stage.latency.total, attrs) for stage, attrs in _stages(r)]


def _stage_rate(r: Reading) -> Observed:
    return [
        (stage.latency.rate(p.taken_ns), {"pipeline": p.pipeline, "stage": stage.stage})
        for p in r.pipelines
        for stage in p.stages
        if stage.replica_of is None
    ]


def _stage_failed(r: Reading) -> Observed:
    return [(stage.failures, attrs) for stage, attrs in _stages(r)]


def _stage_depth(r: Reading) -> Observed:
    return [(s.queue_depth, attrs) for s, attrs in _stages(r) if s.queue_depth is not None]


def _stage_state(r: Reading) -> Observed:
    for stage, attrs in _stages(r):
        if stage.phase is not None:
            for phase in NodePhase:
                yield float(phase.name == stage.phase), {**attrs, "state": phase.name}


def _stage_cpu(r: Reading) -> Observed:
    for stage, attrs in _stages(r):
        for state, seconds in cpu_seconds(stage):
            yield seconds, {**attrs, "state": state}


def _stage_batches(r: Reading) -> Observed:
    for stage, attrs in _stages(r):
        if stage.batch is not None:
            for reason in BATCH_REASONS:
                yield float(stage.batch.reason(reason)), {**attrs, "reason": reason}


def _batch_items(r: Reading) -> Observed:
    return [(float(s.batch.items), attrs) for s, attrs in _stages(r) if s.batch is not None]


def _batch_wait(r: Reading) -> Observed:
    for stage, attrs in _stages(r):
        if stage.batch is not None:
            yield from _quantiles(stage.batch.wait, attrs)


def _machine(figure: str) -> Callable[[Reading], Observed]:
    """The observer of one :class:`~framescope.pipeline.MachineLoad` figure, per pipeline."""

    def observe(r: Reading) -> Observed:
        for p in r.pipelines:
            value = None if p.machine is None else getattr(p.machine, figure)
            if value is not None:
                yield float(value), {"pipeline": p.pipeline}

    return observe


def _source_spec(gauge: Any, counter: Any) -> list[tuple[Any, str, str, str, Callable[..., Any]]]:
    """The instruments of a many-source run's sources (one set per source)."""
    return [
        (gauge, "source.state", "1", "1 for the source's current state.", _source_state),
        (gauge, "source.state_time", "s", "Time in the current state.", _source("since")),
        (gauge, "source.last_frame_age", "s", "Time since its last frame.", _source("age")),
        (gauge, "source.frame_rate", "{frame}/s", "Frames a second.", _source("fps")),
        (counter, "source.frames", "{frame}", "Frames taken from it.", _source("frames")),
        (counter, "source.dropped", "{item}", "Its items refused.", _source("dropped")),
        (counter, "source.failed", "{item}", "Its items a stage failed on.", _source("failed")),
        (counter, "source.reconnects", "{reconnect}", "Reopened.", _source("reconnects")),
        (counter, "source.transitions", "{transition}", "States entered.", _source_entered),
        (gauge, "source.state_share", "1", "Share of its last hour per state.", _source_share),
        (gauge, "source.rate_ratio", "1", "Last hour's fps / nominal.", _source_rate_ratio),
        (gauge, "source.latency", "s", "Capture-to-glass split quantiles.", _source_latency),
        (counter, "source.latency_count", "{item}", "Items timed, by part.", _source_timed),
        (counter, "source.capture_clock", "{frame}", "Frames by capture clock.", _source_clocks),
    ]


def _sources(r: Reading) -> Iterable[tuple[SourceSnapshot, dict[str, str]]]:
    for p in r.pipelines:
        for source in p.sources.values():
            yield source, {"pipeline": p.pipeline, "source": source.name}


def _source(figure: str) -> Callable[[Reading], Observed]:
    """The observer of one figure of each source (left out where it is unknown)."""
    name = {"since": "since", "age": "last_frame_age"}.get(figure, figure)

    def observe(r: Reading) -> Observed:
        for source, attrs in _sources(r):
            value = getattr(source, name)
            if value is not None:
                yield float(value), attrs

    return observe


def _source_state(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        for state in SourceState:
            yield float(state is source.state), {**attrs, "state": state.value}


def _source_entered(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        for state in SourceState:
            yield source.transitions.get(state.value, 0), {**attrs, "state": state.value}


def _source_share(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        quality = source.quality
        if quality is not None and quality.window:
            for state in SourceState:
                yield quality.shares.get(state.value, 0.0), {**attrs, "state": state.value}


def _source_rate_ratio(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        ratio = None if source.quality is None else source.quality.rate_ratio
        if ratio is not None:
            yield ratio, attrs


def _source_latency(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        if source.latency is not None:
            for part, stats in source.latency.stats.items():
                yield from _quantiles(stats, {**attrs, "part": part})


def _source_timed(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        if source.latency is not None:
            for part, stats in source.latency.stats.items():
                yield stats.count, {**attrs, "part": part}


def _viewers(r: Reading) -> Iterable[tuple[ViewerSnapshot, dict[str, str]]]:
    for p in r.pipelines:
        for viewer in p.viewers:
            yield (
                viewer,
                {
                    "pipeline": p.pipeline,
                    "preview": viewer.preview,
                    "camera": viewer.camera or "",
                    "viewer": viewer.viewer,
                },
            )


def _viewer_latency(r: Reading) -> Observed:
    for viewer, attrs in _viewers(r):
        yield from _quantiles(viewer.stage_to_screen, attrs)


def _viewer_frames(r: Reading) -> Observed:
    for viewer, attrs in _viewers(r):
        yield viewer.frames_sent, {**attrs, "outcome": "sent"}
        yield viewer.frames_dropped, {**attrs, "outcome": "dropped"}
        yield viewer.placeholder_frames, {**attrs, "outcome": "placeholder"}


def _clips_spec(gauge: Any, counter: Any) -> list[tuple[Any, str, str, str, Callable[..., Any]]]:
    """The instruments of the event-clip recorders (one set per recorder)."""
    return [
        (counter, "clips.written", "{clip}", "Clips written.", _clips("clips_written")),
        (counter, "clips.dropped", "{clip}", "Clips not written, by reason.", _clips_dropped),
        (counter, "clips.deleted", "{clip}", "Clips deleted (limits).", _clips("clips_deleted")),
        (gauge, "clips.on_disk", "{clip}", "Clips on disk now.", _clips("clips_on_disk")),
        (gauge, "clips.disk_bytes", "By", "Bytes of clips on disk.", _clips("bytes_on_disk")),
        (gauge, "clips.ring_bytes", "By", "Pre-roll bytes in memory.", _clips("ring_bytes")),
        (gauge, "clips.recording", "1", "1 while a clip is written.", _clips("recording")),
        (
            counter,
            "clips.frames_dropped",
            "{frame}",
            "Frames the recorder could not keep.",
            _clips("frames_dropped"),
        ),
        (counter, "clips.triggers", "{trigger}", "Triggers received.", _clips("triggers")),
    ]


def _recorders(r: Reading) -> Iterable[tuple[ClipsSnapshot, dict[str, str]]]:
    for p in r.pipelines:
        for recorder in p.clips:
            yield recorder, {"pipeline": p.pipeline, "recorder": recorder.name}


def _clips(figure: str) -> Callable[[Reading], Observed]:
    """The observer of one figure of each clip recorder."""

    def observe(r: Reading) -> Observed:
        for recorder, attrs in _recorders(r):
            yield float(getattr(recorder, figure)), attrs

    return observe


def _clips_dropped(r: Reading) -> Observed:
    for recorder, attrs in _recorders(r):
        dropped = recorder.clips_dropped
        for reason in (*CLIP_DROP_REASONS, *sorted(set(dropped) - set(CLIP_DROP_REASONS))):
            yield float(dropped.get(reason, 0)), {**attrs, "reason": reason}


def _source_clocks(r: Reading) -> Observed:
    for source, attrs in _sources(r):
        if source.latency is not None:
            for clock, count in source.latency.clocks.items():
                yield count, {**attrs, "clock": clock}


def _timer_duration(r: Reading) -> Observed:
    for timer in r.timers:
        yield from _quantiles(timer.stats, {"timer": timer.name})


def _timer_count(r: Reading) -> Observed:
    counts = []
    for timer in r.timers:
        distribution = timer.stats.distribution
        # The distribution keeps counting across tachometer resets; the count is all-time.
        total = distribution.count if distribution is not None else timer.stats.count
        counts.append((total, {"timer": timer.name}))
    return counts


def _timer_rate(r: Reading) -> Observed:
    return [(timer.stats.rate(), {"timer": timer.name}) for timer in r.timers]

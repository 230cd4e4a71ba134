"""The OpenTelemetry exporter: an in-memory reader, and OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from framescope.clock import FakeClock
from framescope.exporters.opentelemetry import (
    OpenTelemetryExporter,
    otlp_meter_provider,
    otlp_tracer_provider,
)
from framescope.pipeline import Pipeline
from framescope.timepiece import Ticker
from tests.polling import wait_for


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """{instrument name: [(attributes, value), ...]} from one collection."""
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, []).append(
                        (dict(point.attributes or {}), point.value)
                    )
    return found


def value(found: dict[str, list[tuple[dict[str, Any], float]]], name: str, **attrs: str) -> float:
    (match,) = [v for a, v in found[name] if a == attrs]
    return match


def build_pipeline(clock: FakeClock, *, threaded: bool = False) -> Pipeline:
    """Decode then Infer (2 or 4 ms on the fake clock; item 9 fails)."""
    pipeline = Pipeline(name="Cam", clock=clock, debug=True)

    def infer(x: int) -> int:
        clock.advance(0.002 if x % 2 else 0.004)
        if x == 9:
            raise ValueError("bad frame")
        return x

    pipeline.add(lambda x: x, "Decode").add(infer, "Infer", on_error="skip")
    if threaded:
        pipeline.parallelize(queue_size=16)
    return pipeline


def run_items(pipeline: Pipeline, count: int) -> None:
    """Forward ``count`` items and wait for their results."""
    for i in range(count):
        pipeline.forward(i)
    if pipeline.mode == "parallel":
        results = pipeline.results(timeout=10)
        for _ in range(count):
            next(results)


def test_metrics_through_an_in_memory_reader(clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline = build_pipeline(clock)
    ticker = Ticker(clock=clock)
    exporter = OpenTelemetryExporter(provider)
    exporter.add_pipeline(pipeline).add_timer(ticker, "frame")
    for i in range(10):
        ticker.tick()
        pipeline.forward(i)
        clock.advance(0.01)
    found = points(reader)
    cam = {"pipeline": "Cam"}
    infer = {"pipeline": "Cam", "stage": "Infer"}
    assert value(found, "framescope.pipeline.items", outcome="forwarded", **cam) == 10
    assert value(found, "framescope.pipeline.items", outcome="completed", **cam) == 9
    assert value(found, "framescope.pipeline.items", outcome="failed", **cam) == 1
    assert value(found, "framescope.pipeline.dropped", reason="overflow", **cam) == 0
    assert value(found, "framescope.stage.processed", **infer) == 9
    assert value(found, "framescope.stage.busy_time", **infer) == pytest.approx(0.028)
    assert value(found, "framescope.stage.failed", **infer) == 1
    assert value(found, "framescope.stage.duration", quantile="0.5", **infer) == pytest.approx(
        0.004
    )
    assert value(found, "framescope.stage.duration", quantile="0.99", **infer) == pytest.approx(
        0.004
    )
    assert value(found, "framescope.stage.state", state="IDLE", **infer) == 1
    assert value(found, "framescope.stage.state", state="PROCESSING", **infer) == 0
    assert value(found, "framescope.timer.count", timer="frame") == 9
    assert value(found, "framescope.timer.rate", timer="frame") > 0
    assert value(found, "framescope.pipeline.frame_rate", **cam) > 0
    assert "framescope.stage.queue_depth" not in found  # serial: no queues
    exporter.close()
    provider.shutdown()
    pipeline.cleanup()


def test_a_replicated_stage_is_reported_once_with_its_replicas_merged() -> None:
    reader = InMemoryMetricReader()
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Detect", replicas=3).parallelize()
    assert len(list(pipeline.run(range(30)))) == 30
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))
    exporter.add_pipeline(pipeline)
    found = points(reader)
    processed = found["framescope.stage.processed"]
    assert processed == [({"pipeline": "Cam", "stage": "Detect"}, 30)]
    assert [a["stage"] for a, _ in found["framescope.stage.frame_rate"]] == ["Detect"]
    exporter.close()
    pipeline.cleanup()


def test_a_batched_stage_s_batches(clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    pipeline = Pipeline(name="Cam", clock=clock).add(lambda items: items, "Detect", batch=4)
    pipeline.parallelize(queue_size=8)
    assert len(list(pipeline.run(range(10)))) == 10  # 4, 4, then 2 flushed at the end
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))
    exporter.add_pipeline(pipeline)
    found = points(reader)
    detect = {"pipeline": "Cam", "stage": "Detect"}
    assert value(found, "framescope.stage.batches", reason="full", **detect) == 2
    assert value(found, "framescope.stage.batches", reason="flush", **detect) == 1
    assert value(found, "framescope.stage.batches", reason="timeout", **detect) == 0
    assert value(found, "framescope.stage.batch_items", **detect) == 10
    assert value(found, "framescope.stage.batch_wait", quantile="0.99", **detect) == 0.0
    exporter.close()
    pipeline.cleanup()


def test_frame_traces_become_nested_spans(clock: FakeClock) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline = build_pipeline(clock, threaded=True)
    exporter = OpenTelemetryExporter(provider, tracer_provider=tracer_provider)
    exporter.add_pipeline(pipeline, traces=True)
    run_items(pipeline, 3)
    assert exporter.export_traces() == 3
    assert exporter.export_traces() == 0  # each frame once
    finished = spans.get_finished_spans()
    frames = [s for s in finished if s.name == "frame"]
    stages = [s for s in finished if s.name == "Cam__Infer"]
    assert len(frames) == 3 and len(stages) == 3
    assert len([s for s in finished if s.name == "Cam__Decode"]) == 3
    for stage in stages:
        assert stage.parent is not None
        parent = next(f for f in frames if f.context.span_id == stage.parent.span_id)
        assert parent.start_time <= stage.start_time <= stage.end_time <= parent.end_time
    infer_spans = sorted(stages, key=lambda s: s.start_time)
    assert [s.end_time - s.start_time for s in infer_spans] == [4_000_000, 2_000_000, 4_000_000]
    assert sorted(f.attributes["framescope.frame_id"] for f in frames) == [0, 1, 2]
    exporter.close()
    provider.shutdown()
    tracer_provider.shutdown()
    pipeline.cleanup()


def test_a_metrics_collection_makes_no_spans_the_trace_schedule_does(clock: FakeClock) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline = build_pipeline(clock, threaded=True)
    schedule = FakeClock()  # drives the exporter's trace interval
    exporter = OpenTelemetryExporter(
        provider, tracer_provider=tracer_provider, trace_interval=5, clock=schedule
    )
    exporter.add_pipeline(pipeline, traces=True)
    run_items(pipeline, 4)
    assert value(points(reader), "framescope.pipeline.items", pipeline="Cam", outcome="completed")
    assert spans.get_finished_spans() == ()  # collecting metrics made no span
    assert exporter.frames_traced == 0
    assert exporter.spans_exported is None  # a provider it did not make: delivery unknown
    schedule.advance(5)
    wait_for(lambda: exporter.frames_traced >= 4, 10, "four frames traced")
    assert exporter.frames_traced == 4
    assert len([s for s in spans.get_finished_spans() if s.name == "frame"]) == 4
    exporter.close()
    provider.shutdown()
    tracer_provider.shutdown()
    pipeline.cleanup()


def test_traces_need_debugging(clock: FakeClock) -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    exporter = OpenTelemetryExporter(provider, tracer_provider=TracerProvider())
    with pytest.raises(ValueError, match="debug=True"):
        exporter.add_pipeline(Pipeline(clock=clock), traces=True)
    provider.shutdown()


# -- end to end: OTLP over HTTP to a receiver on loopback ----------------------------


class OTLPReceiver:
    """A minimal OTLP/HTTP receiver: decodes the protobuf requests it is sent."""

    def __init__(self) -> None:
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/metrics":
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                elif self.path == "/v1/traces":
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver()
    yield server
    server.close()


@pytest.mark.integration
def test_otlp_http_end_to_end(receiver: OTLPReceiver, clock: FakeClock) -> None:
    meter_provider = otlp_meter_provider(f"{receiver.url}/v1/metrics", interval_s=3600)
    tracer_provider = otlp_tracer_provider(f"{receiver.url}/v1/traces")
    pipeline = build_pipeline(clock, threaded=True)
    exporter = OpenTelemetryExporter(meter_provider, tracer_provider=tracer_provider)
    exporter.add_pipeline(pipeline, traces=True)
    run_items(pipeline, 8)
    assert meter_provider.force_flush(10_000)  # one collection, sent over HTTP
    assert tracer_provider.force_flush(10_000)
    exporter.close()
    meter_provider.shutdown()
    tracer_provider.shutdown()
    pipeline.cleanup()

    received: dict[str, float] = {}
    for request in receiver.metrics:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "framescope"
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attrs = {a.key: a.value.string_value for a in point.attributes}
                        if attrs.get("stage") in (None, "Infer") and "quantile" not in attrs:
                            key = metric.name + "".join(
                                f",{k}={v}" for k, v in sorted(attrs.items())
                            )
                            received[key] = point.as_double or point.as_int
    assert received["framescope.stage.processed,pipeline=Cam,stage=Infer"] == 8
    assert received["framescope.pipeline.items,outcome=completed,pipeline=Cam"] == 8
    assert received["framescope.stage.busy_time,pipeline=Cam,stage=Infer"] == pytest.approx(0.024)
    span_names = [
        span.name
        for request in receiver.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert span_names.count("frame") == 8
    assert span_names.count("Cam__Infer") == 8
    assert exporter.frames_traced == 8
    assert exporter.spans_exported == len(span_names)  # delivered, counted by the collector's 200


@pytest.mark.integration
def test_default_provider_is_otlp_http(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """With no provider given, the exporter sends OTLP/HTTP where OTEL_* variables say."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{receiver.url}/v1/metrics")
    pipeline = build_pipeline(clock)
    exporter = OpenTelemetryExporter()
    exporter.add_pipeline(pipeline)
    run_items(pipeline, 3)
    exporter.close()  # shuts its own provider down, which exports once more
    pipeline.cleanup()
    names = {
        metric.name
        for request in receiver.metrics
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert "framescope.stage.processed" in names


# -- a collector that accepts connections and never answers --------------------------


@pytest.fixture
def silent_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback port that completes TCP handshakes and never answers a request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{url}/v1/metrics")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/v1/traces")
    yield url
    listener.close()


@pytest.mark.integration
def test_close_returns_within_its_timeout_when_the_collector_hangs(
    silent_collector: str, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")  # each export gives up after 3 s
    pipeline = build_pipeline(clock, threaded=True)
    exporter = OpenTelemetryExporter()  # owns OTLP providers aimed at the silent collector
    exporter.add_pipeline(pipeline, traces=True)
    run_items(pipeline, 5)
    started = time.monotonic()
    assert exporter.close(timeout=0.5) is False  # time ran out: said so, not waited out
    took = time.monotonic() - started
    assert took < 2.5, took  # the SDK alone would wait its whole export timeout, or more
    assert exporter.frames_traced == 5
    assert exporter.spans_exported == 0  # handed to the SDK, but never delivered
    helpers = [t for t in threading.enumerate() if t.name == "framescope-otel-shutdown"]
    for helper in helpers:  # it gives up by itself, within the export timeout
        helper.join(30)
        assert not helper.is_alive()
    pipeline.cleanup()


def test_close_refuses_a_bad_timeout(clock: FakeClock) -> None:
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    with pytest.raises(ValueError, match="timeout"):
        exporter.close(timeout=-1)
    assert exporter.close(timeout=None)


@pytest.mark.integration
def test_a_program_that_never_closes_its_exporter_exits_promptly(silent_collector: str) -> None:
    script = textwrap.dedent(
        """
        from framescope import Pipeline
        from framescope.exporters.opentelemetry import OpenTelemetryExporter

        pipeline = Pipeline(debug=True).add(lambda x: x, "A").parallelize(queue_size=4)
        exporter = OpenTelemetryExporter(trace_interval=0.1)
        exporter.add_pipeline(pipeline, traces=True)
        for item in pipeline.run(range(20)):
            pass
        pipeline.cleanup()
        print("done")
        """
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}
    # Without the exit bound, the SDK's own exit hooks retry the silent collector
    # for 30 s per export; a hang here is a failure, not a slow pass.
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_stage_cpu_by_state_and_the_machine_gauges(clock: FakeClock) -> None:
    from ..cpu_figures import measured_pipeline

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline, _ = measured_pipeline(clock)
    exporter = OpenTelemetryExporter(provider)
    try:
        exporter.add_pipeline(pipeline)
        found = points(reader)
    finally:
        exporter.close()
        provider.shutdown()
        pipeline.cleanup()

    def cpu(stage: str) -> dict[str, float]:
        return {
            attrs["state"]: seconds
            for attrs, seconds in found["framescope.stage.cpu"]
            if attrs["stage"] == stage and attrs["pipeline"] == "Cam"
        }

    assert cpu("Detect") == pytest.approx({"on_cpu": 0.5, "runqueue": 0.2, "blocked": 0.1})
    assert cpu("Infer") == pytest.approx({"on_cpu": 0.4, "runqueue": 0.2, "blocked": 0.0})
    assert cpu("Draw") == pytest.approx({"on_cpu": 0.1})
    assert len(found["framescope.stage.cpu"]) == 7  # no replica of Infer counted twice
    cam = {"pipeline": "Cam"}
    assert value(found, "framescope.machine.cores", **cam) == 4
    assert value(found, "framescope.machine.cpu_busy", **cam) == pytest.approx(0.5)
    assert value(found, "framescope.machine.load1", **cam) == pytest.approx(1.5)
    assert value(found, "framescope.process.cpu_cores", **cam) == pytest.approx(0.7)


def test_each_source_of_a_many_source_run_is_an_instrument_series(clock: FakeClock) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda item: item, "Pass")
    exporter = OpenTelemetryExporter(provider)
    exporter.add_pipeline(pipeline)
    try:
        assert len(list(pipeline.run({"door": range(4), "yard": range(2)}))) == 6
        clock.advance(2.0)
        found = points(reader)
    finally:
        exporter.close()
        pipeline.cleanup()
    door = {"pipeline": "Cams", "source": "door"}
    assert value(found, "framescope.source.frames", **door) == 4
    assert value(found, "framescope.source.frames", pipeline="Cams", source="yard") == 2
    assert value(found, "framescope.source.state", state="ended", **door) == 1
    assert value(found, "framescope.source.state", state="stalled", **door) == 0
    assert value(found, "framescope.source.last_frame_age", **door) == 2.0
    assert value(found, "framescope.source.transitions", state="running", **door) == 1
    assert value(found, "framescope.source.dropped", **door) == 0
    # its last hour: the run took no time on this clock, and an ended source's stops
    assert "framescope.source.state_share" not in found
    assert "framescope.source.rate_ratio" not in found

"""Each source's capture-to-glass split in Prometheus (a histogram a part) and OpenTelemetry."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("numpy")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from framescope.clock import FakeClock
from framescope.exporters.opentelemetry import OpenTelemetryExporter
from framescope.exporters.prometheus import PrometheusExporter
from framescope.pipeline import Pipeline
from tests.exporters.test_opentelemetry import points, value
from tests.exporters.test_prometheus import scrape
from tests.pipeline.test_capture_latency import Camera, _run_released, _stage


def _measured(clock: FakeClock) -> Pipeline:
    """Two frames of the camera through a 20 ms stage: capture 30, ..., to_glass 72 ms each."""
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(_stage(clock), "Detect")
    _run_released(clock, pipeline, Camera(clock, 2))
    return pipeline


def test_prometheus_has_a_latency_histogram_a_part_with_the_source_label() -> None:
    clock = FakeClock()
    pipeline = _measured(clock)
    try:
        with PrometheusExporter() as exporter:
            exporter.add_pipeline(pipeline)
            samples = scrape(exporter.serve().url)
    finally:
        pipeline.cleanup()

    def sample(name: str, **labels: str) -> float:
        return samples[
            (name, tuple(sorted({"pipeline": "Cams", "source": "cam", **labels}.items())))
        ]

    spans = {
        "capture": 0.030,
        "decode": 0.010,
        "queue": 0.007,
        "pipeline": 0.020,
        "output": 0.005,
        "to_out": 0.067,
        "to_glass": 0.072,
    }
    name = "framescope_source_latency_seconds"
    for part, seconds in spans.items():
        assert sample(f"{name}_count", part=part) == 2, part
        assert sample(f"{name}_sum", part=part) == pytest.approx(2 * seconds), part
    assert sample(f"{name}_bucket", part="pipeline", le="0.01") == 0
    assert sample(f"{name}_bucket", part="pipeline", le="0.025") == 2
    assert sample(f"{name}_bucket", part="capture", le="0.025") == 0
    assert sample(f"{name}_bucket", part="capture", le="0.05") == 2
    assert sample("framescope_source_capture_clock_frames_total", clock="rtcp") == 2
    assert sample("framescope_source_untimed_items_total") == 0


def test_opentelemetry_has_the_split_s_quantiles_counts_and_clocks() -> None:
    clock = FakeClock()
    pipeline = _measured(clock)
    reader = InMemoryMetricReader()
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))
    exporter.add_pipeline(pipeline)
    try:
        found = points(reader)
    finally:
        exporter.close()
        pipeline.cleanup()
    cam = {"pipeline": "Cams", "source": "cam"}
    for quantile in ("0.5", "0.9", "0.99"):
        got = value(found, "framescope.source.latency", part="to_glass", quantile=quantile, **cam)
        assert got == pytest.approx(0.072)
    assert value(found, "framescope.source.latency", part="queue", quantile="0.5", **cam) == (
        pytest.approx(0.007)
    )
    assert value(found, "framescope.source.latency_count", part="pipeline", **cam) == 2
    assert value(found, "framescope.source.capture_clock", clock="rtcp", **cam) == 2

"""A live view's WebRTC viewers in Prometheus (a histogram a viewer) and OpenTelemetry."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from framescope.clock import FakeClock
from framescope.exporters.opentelemetry import OpenTelemetryExporter
from framescope.exporters.prometheus import PrometheusExporter
from framescope.live.webrtc import _Viewer
from framescope.pipeline import PipelineSnapshot
from framescope.stats import StatsSnapshot
from tests.exporters.test_opentelemetry import points, value
from tests.exporters.test_prometheus import scrape


class ViewWithAViewer:
    """What an exporter reads of a LiveView: a name and a snapshot with one viewer."""

    name = "Cam"

    def __init__(self) -> None:
        viewer = _Viewer("abc123", "main", "door", "H264", FakeClock())
        viewer._latency.extend([40_000_000, 40_000_000, 60_000_000])  # three frames, ns
        viewer.frames_sent, viewer.frames_dropped, viewer.placeholder_frames = 30, 4, 5
        viewer._syncs.append((1_000_000, 0, 0.0))  # a 1 ms round trip: +-0.5 ms
        self.viewer = viewer.snapshot(0)

    def snapshot(self) -> PipelineSnapshot:
        return PipelineSnapshot("Cam", StatsSnapshot(window=1), viewers=(self.viewer,))


LABELS = {"pipeline": "Cam", "preview": "main", "camera": "door", "viewer": "abc123"}


def test_prometheus_has_each_viewer_s_stage_to_screen_histogram_and_frames() -> None:
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(ViewWithAViewer())
        samples = scrape(exporter.serve().url)

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({**LABELS, **labels}.items())))]

    name = "framescope_viewer_stage_to_screen_seconds"
    assert sample(f"{name}_count") == 3
    assert sample(f"{name}_sum") == pytest.approx(0.14)
    assert sample(f"{name}_bucket", le="0.05") == 2
    assert sample(f"{name}_bucket", le="0.1") == 3
    assert sample("framescope_viewer_frames_total", outcome="sent") == 30
    assert sample("framescope_viewer_frames_total", outcome="dropped") == 4
    assert sample("framescope_viewer_frames_total", outcome="placeholder") == 5
    assert sample("framescope_viewer_clock_uncertainty_seconds") == pytest.approx(0.0005)


def test_opentelemetry_has_each_viewer_s_quantiles_and_frames() -> None:
    reader = InMemoryMetricReader()
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))
    exporter.add_pipeline(ViewWithAViewer())
    try:
        found = points(reader)
    finally:
        exporter.close()
    got = value(found, "framescope.viewer.stage_to_screen", quantile="0.5", **LABELS)
    assert got == pytest.approx(0.04)
    assert value(found, "framescope.viewer.frames", outcome="dropped", **LABELS) == 4

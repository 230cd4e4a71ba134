"""A pipeline's event-clip recorders in Prometheus and OpenTelemetry (one set of series each)."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from framescope.exporters.opentelemetry import OpenTelemetryExporter
from framescope.exporters.prometheus import PrometheusExporter
from framescope.pipeline import PipelineSnapshot
from framescope.pipeline.model.clips import ClipsSnapshot
from framescope.stats import StatsSnapshot
from tests.exporters.test_opentelemetry import points, value
from tests.exporters.test_prometheus import scrape

DOOR = ClipsSnapshot(
    name="door",
    directory="/var/clips/door",
    mode="packets",
    recording=True,
    triggers=9,
    clips_written=5,
    clips_dropped={"disk": 2},
    clips_deleted=1,
    clips_on_disk=4,
    bytes_on_disk=123_456,
    ring_bytes=7_890,
    ring_seconds=3.5,
    ring_overflows=2,
    frames_dropped=6,
)
YARD = ClipsSnapshot(
    name="yard",
    directory="/var/clips/yard",
    mode=None,
    recording=False,
    triggers=0,
    clips_written=0,
)


class PipelineWithClips:
    """What an exporter reads of a pipeline: a name and a snapshot with two recorders."""

    name = "Cam"

    def snapshot(self) -> PipelineSnapshot:
        return PipelineSnapshot("Cam", StatsSnapshot(window=1), clips=(DOOR, YARD))


def test_prometheus_has_each_recorder_s_clip_series() -> None:
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(PipelineWithClips())
        samples = scrape(exporter.serve().url)

    def sample(name: str, recorder: str = "door", **labels: str) -> float:
        key = tuple(sorted({"pipeline": "Cam", "recorder": recorder, **labels}.items()))
        return samples[(f"framescope_clips_{name}", key)]

    assert sample("written_total") == 5
    assert sample("dropped_total", reason="disk") == 2
    assert sample("dropped_total", reason="behind") == 0
    assert sample("dropped_total", reason="stream") == 0
    assert sample("deleted_total") == 1
    assert sample("on_disk") == 4
    assert sample("disk_bytes") == 123_456
    assert sample("ring_bytes") == 7_890
    assert sample("ring_overflows_total") == 2
    assert sample("dropped_total", reason="error") == 0
    assert sample("recording") == 1
    assert sample("frames_dropped_total") == 6
    assert sample("triggers_total") == 9
    assert sample("recording", "yard") == 0
    assert sample("written_total", "yard") == 0
    assert sample("dropped_total", "yard", reason="disk") == 0


def test_recorder_is_a_label_framescope_sets_itself() -> None:
    with pytest.raises(ValueError, match="recorder"):
        PrometheusExporter(labels={"recorder": "x"})


def test_opentelemetry_has_each_recorder_s_clip_instruments() -> None:
    reader = InMemoryMetricReader()
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))
    exporter.add_pipeline(PipelineWithClips())
    try:
        found = points(reader)
    finally:
        exporter.close()
    door = {"pipeline": "Cam", "recorder": "door"}
    assert value(found, "framescope.clips.written", **door) == 5
    assert value(found, "framescope.clips.dropped", reason="disk", **door) == 2
    assert value(found, "framescope.clips.dropped", reason="stream", **door) == 0
    assert value(found, "framescope.clips.deleted", **door) == 1
    assert value(found, "framescope.clips.on_disk", **door) == 4
    assert value(found, "framescope.clips.disk_bytes", **door) == 123_456
    assert value(found, "framescope.clips.ring_bytes", **door) == 7_890
    assert value(found, "framescope.clips.recording", **door) == 1
    assert value(found, "framescope.clips.frames_dropped", **door) == 6
    assert value(found, "framescope.clips.triggers", **door) == 9
    assert value(found, "framescope.clips.recording", pipeline="Cam", recorder="yard") == 0

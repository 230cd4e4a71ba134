"""The Prometheus exporter: exposition checked directly, and scraped by a real Prometheus."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from framescope.clock import FakeClock
from framescope.exporters.prometheus import PrometheusExporter
from framescope.pipeline import NodePhase, Pipeline
from framescope.timepiece import StopWatch, TickerTachometer
from tests.polling import eventually, holds_within


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Fetch and parse an exposition: {(sample name, sorted labels): value}."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_pipeline_and_timer_exposition(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cam", clock=clock, debug=True)

    def decode(x: int) -> int:
        clock.advance(0.0004)  # 0.4 ms: a sub-millisecond bucket
        return x

    def detect(x: int) -> int:
        clock.advance(0.003)
        if x == 7:
            raise ValueError("bad frame")
        return x

    pipeline.add(decode, "Decode").add(detect, "Detect", on_error="skip")
    watch = StopWatch("draw", clock=clock)
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(pipeline).add_timer(watch, "draw")
        for i in range(10):
            pipeline.forward(i)
            with watch:
                clock.advance(0.02)
        server = exporter.serve()
        samples = scrape(server.url)
    pipeline.cleanup()

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    cam = {"pipeline": "Cam"}
    decode_labels = {"pipeline": "Cam", "stage": "Decode"}
    detect_labels = {"pipeline": "Cam", "stage": "Detect"}
    assert value("framescope_pipeline_forwarded_items_total", **cam) == 10
    assert value("framescope_pipeline_completed_items_total", **cam) == 9
    assert value("framescope_pipeline_failed_items_total", **cam) == 1
    assert value("framescope_pipeline_dropped_items_total", reason="overflow", **cam) == 0
    assert value("framescope_stage_failed_items_total", **detect_labels) == 1
    # 0.4 ms lands in the le=0.0005 bucket, not in le=0.00025.
    assert value("framescope_stage_processing_seconds_bucket", le="0.00025", **decode_labels) == 0
    assert value("framescope_stage_processing_seconds_bucket", le="0.0005", **decode_labels) == 10
    assert value("framescope_stage_processing_seconds_count", **decode_labels) == 10
    assert value("framescope_stage_processing_seconds_sum", **decode_labels) == pytest.approx(0.004)
    # The failed item is not a processing sample of Detect.
    assert value("framescope_stage_processing_seconds_count", **detect_labels) == 9
    assert value("framescope_stage_processing_seconds_bucket", le="0.0025", **detect_labels) == 0
    assert value("framescope_stage_processing_seconds_bucket", le="0.005", **detect_labels) == 9
    assert value("framescope_timer_seconds_count", timer="draw") == 10
    assert value("framescope_timer_seconds_bucket", le="0.025", timer="draw") == 10
    assert value("framescope_timer_seconds_bucket", le="0.01", timer="draw") == 0
    assert value("framescope_timer_events_per_second", timer="draw") > 0
    # Debugging on: the stage state is a state set, one state true.
    states = {
        labels: v
        for (name, labels), v in samples.items()
        if name == "framescope_stage_state" and ("stage", "Decode") in labels
    }
    assert sum(states.values()) == 1
    assert len(states) == len(NodePhase)
    assert (
        states[(("framescope_stage_state", "IDLE"), ("pipeline", "Cam"), ("stage", "Decode"))] == 1
    )


def test_queue_depth_of_a_threaded_pipeline() -> None:
    release = threading.Event()
    pipeline = Pipeline(name="Slow")
    pipeline.add(lambda x: release.wait(5) and x, "Hold").add(lambda x: x, "Pass")
    pipeline.parallelize(queue_size=8)
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(pipeline)
        for i in range(5):
            pipeline.forward(i)
        server = exporter.serve()
        key = ("framescope_stage_queue_depth", (("pipeline", "Slow"), ("stage", "Hold")))
        # the first item is taken by the stage, the other 4 wait
        assert holds_within(lambda: scrape(server.url)[key] == 4, 5)
        release.set()
    pipeline.cleanup()


def test_tachometer_histogram_survives_period_resets(clock: FakeClock) -> None:
    reports: list[Any] = []
    tach = TickerTachometer(
        stats_callback=lambda ts, t: reports.append(t), stats_interval=1, clock=clock
    )
    with PrometheusExporter(namespace="app", buckets=(0.05, 0.2)) as exporter:
        exporter.add_timer(tach, "loop")
        tach.tick()
        for _ in range(30):
            clock.advance(0.1)
            tach.tick()
        samples = scrape(exporter.serve().url)
    assert len(reports) == 3  # the tachometer reset its ticker three times ...
    assert samples[("app_timer_seconds_count", (("timer", "loop"),))] == 30  # ... counts stayed
    assert samples[("app_timer_seconds_bucket", (("le", "0.05"), ("timer", "loop")))] == 0
    assert samples[("app_timer_seconds_bucket", (("le", "0.2"), ("timer", "loop")))] == 30


def test_two_exporters_with_different_buckets_on_one_pipeline(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cam", clock=clock)

    def infer(x: int) -> int:
        clock.advance(0.001 * (x + 1))  # 1, 2, ... 10 ms
        return x

    pipeline.add(infer, "Infer").serialize()
    coarse = PrometheusExporter(namespace="coarse", buckets=(0.005, 0.1))
    # 0.0042 lies between two grid edges (4 and 4.5 ms): counted up to the edge below.
    fine = PrometheusExporter(namespace="fine", buckets=(0.001, 0.002, 0.0042, 0.0075))
    coarse.add_pipeline(pipeline)
    fine.add_pipeline(pipeline)
    for i in range(10):
        pipeline.forward(i)
    with coarse, fine:
        a = scrape(coarse.serve().url)
        b = scrape(fine.serve().url)
    pipeline.cleanup()
    labels = (("pipeline", "Cam"), ("stage", "Infer"))

    def bucket(samples: dict[Any, float], ns: str, le: str) -> float:
        return samples[(f"{ns}_stage_processing_seconds_bucket", (("le", le), *labels))]

    assert [bucket(a, "coarse", le) for le in ("0.005", "0.1", "+Inf")] == [5, 10, 10]
    assert [bucket(b, "fine", le) for le in ("0.001", "0.002", "0.0042", "0.0075", "+Inf")] == [
        1,
        2,
        4,
        7,
        10,
    ]
    for samples, ns in ((a, "coarse"), (b, "fine")):
        assert samples[(f"{ns}_stage_processing_seconds_count", labels)] == 10
        assert samples[(f"{ns}_stage_processing_seconds_sum", labels)] == pytest.approx(0.055)


def test_replicas_have_their_own_series_and_labels_go_on_every_series() -> None:
    pipeline = Pipeline(name="Cam").add(lambda x: x, "Detect", replicas=2).parallelize()
    assert len(list(pipeline.run(range(20)))) == 20
    with PrometheusExporter(labels={"host_name": "box1", "site": "dock"}) as exporter:
        exporter.add_pipeline(pipeline)
        samples = scrape(exporter.serve().url)
    pipeline.cleanup()
    processed = {
        labels: value
        for (name, labels), value in samples.items()
        if name.endswith("processing_seconds_count")
    }
    base = (("host_name", "box1"), ("pipeline", "Cam"))
    stage = (*base, ("site", "dock"), ("stage", "Detect"))
    assert processed[stage] == 20  # the stage: both replicas merged
    replicas = [
        processed[(*base, ("replica", str(i)), ("site", "dock"), ("stage", "Detect"))]
        for i in (0, 1)
    ]
    assert sum(replicas) == 20
    assert not any("Detect#" in value for labels in samples for _, value in labels[1])
    assert all(dict(labels).get("host_name") == "box1" for _, labels in samples)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="a label framescope sets itself"):
        PrometheusExporter(labels={"stage": "x"})
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        PrometheusExporter(labels={"host-name": "x"})
    with pytest.raises(TypeError, match="must be a str"):
        PrometheusExporter(labels={"host": 3})  # type: ignore[dict-item]
    exporter = PrometheusExporter()
    with pytest.raises(TypeError, match="pipeline must be a Pipeline"):
        exporter.add_pipeline("Cam")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timer must be a Ticker, StopWatch or tachometer"):
        exporter.add_timer(object(), "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low-cardinality label"):
        exporter.add_timer(StopWatch("w"), "frame 17 of camera 3")
    exporter.add_timer(StopWatch("w"), "w")
    with pytest.raises(ValueError, match="already exported"):
        exporter.add_timer(StopWatch("w"), "w")
    with pytest.raises(ValueError, match="strictly increasing"):
        PrometheusExporter(buckets=(0.1, 0.01))
    with pytest.raises(ValueError, match="namespace must be"):
        PrometheusExporter(namespace="my-app")
    exporter.close()


# -- a real Prometheus server scraping the exporter -------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Any]:
    """Start Debian's prometheus on loopback; yields a function that sets its scrape target."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (bash scripts/install-test-servers.sh)")
    port = _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "prometheus.log"

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n"
            "scrape_configs:\n  - job_name: framescope\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        if holds_within(ready, 30, every=0.1):
            return url
        raise RuntimeError("prometheus did not become ready: " + log_path.read_text())

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def query(url: str, expression: str) -> list[dict[str, Any]]:
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    body = json.loads(urllib.request.urlopen(address, timeout=5).read())
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.mark.integration
def test_real_prometheus_scrapes_the_values(prometheus_server: Any, clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cam", clock=clock)

    def infer(x: int) -> int:
        clock.advance(0.0007)
        return x

    pipeline.add(infer, "Infer")
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(pipeline)
        for i in range(42):
            pipeline.forward(i)
        server = exporter.serve()
        prometheus = prometheus_server(f"127.0.0.1:{server.port}")
        expression = 'framescope_stage_processing_seconds_bucket{stage="Infer",le="0.001"}'

        def scraped() -> list[dict[str, Any]]:
            return query(prometheus, expression)  # empty until Prometheus scraped the exporter

        result: list[dict[str, Any]] = eventually(scraped, 30, every=0.2)
        assert float(result[0]["value"][1]) == 42
        assert result[0]["metric"]["pipeline"] == "Cam"
        completed = query(prometheus, "framescope_pipeline_completed_items_total")
        assert float(completed[0]["value"][1]) == 42
        below = query(prometheus, 'framescope_stage_processing_seconds_bucket{le="0.0005"}')
        assert float(below[0]["value"][1]) == 0
        up = query(prometheus, 'up{job="framescope"}')
        assert float(up[0]["value"][1]) == 1
    pipeline.cleanup()


def test_stage_cpu_seconds_by_state_and_the_machine_gauges(clock: FakeClock) -> None:
    from ..cpu_figures import measured_pipeline

    pipeline, _ = measured_pipeline(clock)
    try:
        with PrometheusExporter() as exporter:
            exporter.add_pipeline(pipeline)
            samples = scrape(exporter.serve().url)
    finally:
        pipeline.cleanup()

    def cpu(stage: str) -> dict[str, float]:
        labels = (("pipeline", "Cam"), ("stage", stage))
        return {
            dict(found)["state"]: value
            for (name, found), value in samples.items()
            if name == "framescope_stage_cpu_seconds_total" and found[:2] == labels
        }

    assert cpu("Detect") == pytest.approx({"on_cpu": 0.5, "runqueue": 0.2, "blocked": 0.1})
    # A replicated stage: its replicas' seconds summed; no replica series of its own.
    assert cpu("Infer") == pytest.approx({"on_cpu": 0.4, "runqueue": 0.2, "blocked": 0.0})
    assert cpu("Draw") == pytest.approx({"on_cpu": 0.1})  # the rest not reported: left out
    cam = (("pipeline", "Cam"),)
    assert samples[("framescope_machine_cores", cam)] == 4
    assert samples[("framescope_machine_cpu_busy_ratio", cam)] == pytest.approx(0.5)
    assert samples[("framescope_machine_load1", cam)] == pytest.approx(1.5)
    assert samples[("framescope_process_cpu_cores", cam)] == pytest.approx(0.7)


def test_a_serial_pipeline_has_no_cpu_series_and_state_is_a_reserved_label(
    clock: FakeClock,
) -> None:
    pipeline = Pipeline(name="Cam", clock=clock).add(lambda x: x, "Detect")
    assert list(pipeline.run(range(3))) == [0, 1, 2]
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(pipeline)
        samples = scrape(exporter.serve().url)
    pipeline.cleanup()
    assert not [key for key in samples if key[0] == "framescope_stage_cpu_seconds_total"]
    with pytest.raises(ValueError, match="'state' is a label framescope sets itself"):
        PrometheusExporter(labels={"state": "on"})


class _Broken:
    """Gives two items, then raises."""

    def __iter__(self) -> Iterator[int]:
        yield from range(2)
        raise OSError("camera unplugged")


def test_each_source_of_a_many_source_run_is_exported(clock: FakeClock) -> None:
    pipeline = Pipeline(name="Cams", clock=clock)
    pipeline.add(lambda item: item, "Pass")
    with PrometheusExporter() as exporter:
        exporter.add_pipeline(pipeline)
        assert len(list(pipeline.run({"door": range(5), "yard": _Broken()}))) == 7
        clock.advance(1.5)
        samples = scrape(exporter.serve().url)
    pipeline.cleanup()

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"pipeline": "Cams", **labels}.items())))]

    assert value("framescope_source_frames_total", source="door") == 5
    assert value("framescope_source_frames_total", source="yard") == 2
    assert value("framescope_source_state", source="yard", state="failed") == 1
    assert value("framescope_source_state", source="yard", state="running") == 0
    assert value("framescope_source_state", source="door", state="ended") == 1
    assert value("framescope_source_last_frame_age_seconds", source="door") == 1.5
    assert value("framescope_source_dropped_items_total", source="door") == 0
    assert value("framescope_source_reconnects_total", source="door") == 0
    assert value("framescope_source_transitions_total", source="yard", state="failed") == 1
    assert value("framescope_source_transitions_total", source="yard", state="stalled") == 0
    assert value("framescope_source_state_seconds", source="yard") == 1.5
    # its last hour: the run took no time on this clock, and an ended source's stops
    assert not [key for key in samples if key[0] == "framescope_source_state_share"]
    assert not [key for key in samples if key[0] == "framescope_source_rate_ratio"]

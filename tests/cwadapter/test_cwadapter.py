"""CloudWatch adapter, tachometer and pipeline exporter against a real moto server."""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
import socket
import threading
import time
from typing import Any

import pytest

from framescope._aws import aws_client
from framescope.clock import FakeClock
from framescope.cwadapter import (
    CloudWatchTimerAdapter,
    CWTachometer,
    PipelineMetricsExporter,
)
from framescope.cwadapter.datum import values_and_counts
from framescope.pipeline import Pipeline
from framescope.timepiece import TickerTachometer
from tests.moto_server import MotoEndpoint
from tests.polling import holds_within

pytestmark = pytest.mark.integration

UTC = datetime.timezone.utc
NAMESPACE = "framescope-tests"


def statistics(
    endpoint: MotoEndpoint,
    metric: str,
    dimensions: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """Read a metric back with GetMetricStatistics, oldest first."""
    cloudwatch: Any = endpoint.client("cloudwatch")
    now = datetime.datetime.now(UTC)
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
        StartTime=now - datetime.timedelta(days=1),
        EndTime=now + datetime.timedelta(days=1),
        Period=60,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )
    return sorted(response["Datapoints"], key=lambda point: point["Timestamp"])


def adapter_for(endpoint: MotoEndpoint, **options: Any) -> CloudWatchTimerAdapter:
    options.setdefault("retry_initial", 0.02)
    options.setdefault("retry_max", 0.1)
    return CloudWatchTimerAdapter(
        NAMESPACE,
        options.pop("metric_name", "frame_time"),
        options.pop("dimensions", {"Device": "cam-1"}),
        boto3_session=endpoint.session(),
        endpoint_url=endpoint.url,
        **options,
    )


def ticking_tachometer(clock: FakeClock, adapter: CloudWatchTimerAdapter) -> TickerTachometer:
    return TickerTachometer(stats_callback=adapter.send_metrics, stats_interval=60, clock=clock)


def test_tachometer_report_arrives_with_exact_statistics(
    moto: MotoEndpoint, clock: FakeClock
) -> None:
    clock.jump_wall(datetime.datetime.now(UTC) - clock.wall())
    with adapter_for(moto) as adapter:
        tach = ticking_tachometer(clock, adapter)
        tach.tick()
        for step in [0.04, 0.05, 0.06, 0.05] * 300:  # 1,200 intervals, 60 s in all
            clock.advance(step)
            tach.tick()
        assert tach.reports == 1
        assert adapter.flush(timeout=10)
        counts = adapter.counters()
    assert counts["sent"] == 1 and counts["dropped"] == 0 and counts["pending"] == 0
    (point,) = statistics(moto, "frame_time", {"Device": "cam-1"})
    assert point["SampleCount"] == 1200
    assert point["Sum"] == pytest.approx(60.0)
    assert point["Minimum"] == pytest.approx(0.04)
    assert point["Maximum"] == pytest.approx(0.06)
    assert point["Unit"] == "Seconds"
    cloudwatch: Any = moto.client("cloudwatch")
    now = datetime.datetime.now(UTC)
    stat = {
        "Metric": {
            "Namespace": NAMESPACE,
            "MetricName": "frame_time",
            "Dimensions": [{"Name": "Device", "Value": "cam-1"}],
        },
        "Period": 60,
    }
    results = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {"Id": "count", "MetricStat": {**stat, "Stat": "SampleCount"}},
            {"Id": "total", "MetricStat": {**stat, "Stat": "Sum"}},
        ],
        StartTime=now - datetime.timedelta(hours=1),
        EndTime=now + datetime.timedelta(hours=1),
    )["MetricDataResults"]
    by_id = {result["Id"]: result["Values"] for result in results}
    assert by_id["count"] == [1200.0]
    assert by_id["total"] == [pytest.approx(60.0)]


def test_datum_shape_matches_the_older_api(moto: MotoEndpoint) -> None:
    local = datetime.timezone(datetime.timedelta(hours=2))
    stamp = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=local)
    clock = FakeClock()
    tach = TickerTachometer(stats_callback=lambda ts, t: None, clock=clock)
    tach.tick()
    clock.advance(0.5)
    tach.tick()
    with adapter_for(moto) as adapter:
        datum = adapter.send_metrics(stamp, tach.ticker.snapshot())
    assert datum == {
        "MetricName": "frame_time",
        "Dimensions": [{"Name": "Device", "Value": "cam-1"}],
        "Timestamp": datetime.datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        "Unit": "Seconds",
        "StatisticValues": {"SampleCount": 1.0, "Sum": 0.5, "Minimum": 0.5, "Maximum": 0.5},
    }


def test_high_resolution_and_percentiles(moto: MotoEndpoint, clock: FakeClock) -> None:
    clock.jump_wall(datetime.datetime.now(UTC) - clock.wall())
    data: list[dict[str, Any]] = []
    with adapter_for(moto, high_resolution=True, percentiles=True) as adapter:

        def send(timestamp: datetime.datetime, timer: Any) -> None:
            data.append(adapter.send_metrics(timestamp, timer))  # type: ignore[arg-type]

        tach = TickerTachometer(
            stats_callback=send, stats_interval=1, clock=clock, max_intervals=500
        )
        tach.tick()
        steps = [0.001 * (1 + i % 7) for i in range(600)]
        for step in steps:
            clock.advance(step)
            tach.tick()
        tach.flush()
        assert adapter.flush(timeout=10)
    assert all(d["StorageResolution"] == 1 for d in data)
    assert all(len(d["Values"]) <= 150 for d in data)
    points = statistics(moto, "frame_time", {"Device": "cam-1"})
    assert sum(p["SampleCount"] for p in points) == pytest.approx(600)
    assert sum(p["Sum"] for p in points) == pytest.approx(sum(steps), rel=0.05)
    assert min(p["Minimum"] for p in points) == pytest.approx(0.001)
    assert max(p["Maximum"] for p in points) == pytest.approx(0.007)


def test_values_and_counts_keep_count_sum_and_extremes() -> None:
    samples = [float(i) for i in range(1, 1001)]
    values, counts = values_and_counts(samples, 1000)
    assert len(values) <= 150
    assert sum(counts) == pytest.approx(1000)
    assert sum(v * c for v, c in zip(values, counts, strict=True)) == pytest.approx(sum(samples))
    assert min(values) == 1.0 and max(values) == 1000.0
    # More samples than were kept: the counts are scaled up to the true count.
    values, counts = values_and_counts(samples[-100:], 5000, minimum=0.5, maximum=2000.0)
    assert sum(counts) == pytest.approx(5000)
    assert values[0] == 0.5 and values[-1] == 2000.0
    assert values_and_counts([], 0) == ([], [])
    assert values_and_counts([3.0], 4) == ([3.0], [4.0])


def test_cw_tachometer_as_older_code_writes_it(moto: MotoEndpoint, clock: FakeClock) -> None:
    clock.jump_wall(datetime.datetime.now(UTC) - clock.wall())
    tach = CWTachometer(
        namespace=NAMESPACE,
        metric_name="loop_time",
        dimensions={"App": "demo"},
        stats_interval=datetime.timedelta(seconds=60),
        boto3_session=moto.session(),
        endpoint_url=moto.url,
        clock=clock,
    )
    tach.tick()
    for _ in range(10):
        clock.advance(0.1)
        tach.tick()
    assert tach.close(timeout=10)  # reports the unfinished period and sends it
    (point,) = statistics(moto, "loop_time", {"App": "demo"})
    assert point["SampleCount"] == 10
    assert point["Sum"] == pytest.approx(1.0)
    assert tach.counters()["sent"] == 1


def test_endpoint_down_then_back(moto: MotoEndpoint, clock: FakeClock) -> None:
    clock.jump_wall(datetime.datetime.now(UTC) - clock.wall())
    retries = FakeClock()  # the delivery back-off waits on it: the test moves it on
    with adapter_for(moto, clock=retries, retry_initial=1.0, retry_max=8.0) as adapter:
        tach = ticking_tachometer(clock, adapter)
        tach.tick()
        moto.stop()  # the endpoint dies mid-run
        for _ in range(3 * 60):  # three periods of one tick per second
            clock.advance(1.0)
            tach.tick()
        assert tach.reports == 3  # the frame loop went on; nothing raised
        assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 1)
        retries.advance(1.0)  # the first back-off (at most retry_initial) is over
        assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 2)
        assert not adapter.flush(timeout=0.1)
        counts = adapter.counters()
        assert counts["pending"] == 3 and counts["sent"] == 0
        moto.start()  # and comes back: the buffered data go out, in order
        retries.advance(2.0)  # the second back-off
        assert adapter.flush(timeout=10)
        counts = adapter.counters()
    assert counts["sent"] == 3 and counts["dropped"] == 0
    points = statistics(moto, "frame_time", {"Device": "cam-1"})
    assert sum(p["SampleCount"] for p in points) == 180


def test_full_buffer_drops_the_oldest(moto: MotoEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    moto.stop()
    base = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    caplog.set_level(logging.WARNING)
    retries = FakeClock()
    with adapter_for(
        moto, max_buffer=5, metric_name="burst", clock=retries, retry_initial=1.0
    ) as adapter:
        for minute in range(8):
            snapshot = _one_sample_snapshot(float(minute + 1))
            adapter.send_metrics(base - datetime.timedelta(minutes=10 - minute), snapshot)
        # A batch being sent when the buffer filled comes back to the front on failure,
        # and is then the oldest: wait for that first failure.
        assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 1)
        counts = adapter.counters()
        assert counts["dropped"] == 3 and counts["pending"] == 5
        assert "buffer full" in caplog.text
        moto.start()
        retries.advance(1.0)  # past the back-off
        assert adapter.flush(timeout=10)
    points = statistics(moto, "burst", {"Device": "cam-1"})
    assert [p["Sum"] for p in points] == [4.0, 5.0, 6.0, 7.0, 8.0]


def _one_sample_snapshot(seconds: float) -> Any:
    clock = FakeClock()
    tach = TickerTachometer(stats_callback=lambda ts, t: None, clock=clock)
    tach.tick()
    clock.advance(seconds)
    tach.tick()
    return tach.ticker.snapshot()


def test_missing_credentials_are_retried_not_raised(
    moto: MotoEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    adapter = CloudWatchTimerAdapter(
        NAMESPACE,
        "no_creds",
        boto3_session=boto3.Session(region_name="eu-west-1"),
        endpoint_url=moto.url,
        retry_initial=1.0,
        retry_max=4.0,
        clock=(retries := FakeClock()),
    )
    adapter.send_metrics(datetime.datetime.now(UTC), _one_sample_snapshot(1.0))
    assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 1)
    retries.advance(1.0)
    assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 2)
    counts = adapter.counters()
    assert counts["pending"] == 1 and counts["sent"] == 0
    assert "NoCredentialsError" in (adapter.sender.last_error or "")
    assert not adapter.close(timeout=0.1)
    assert adapter.counters()["dropped"] == 1  # unsent at close: counted, not silently lost


def test_deliveries_on_a_given_executor(moto: MotoEndpoint) -> None:
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="user-pool") as pool:
        adapter = adapter_for(moto, executor=pool, metric_name="pooled")
        adapter.send_metrics(datetime.datetime.now(UTC), _one_sample_snapshot(2.0))
        assert adapter.flush(timeout=10)
        assert adapter.close(timeout=5)
    (point,) = statistics(moto, "pooled", {"Device": "cam-1"})
    assert point["Sum"] == 2.0


def test_pipeline_state_exporter(moto: MotoEndpoint) -> None:
    pipeline = Pipeline(name="Cam")
    pipeline.add(lambda x: x + 1, "Decode").add(lambda x: x * 2, "Detect")
    for i in range(25):
        pipeline.forward(i)
    exporter = PipelineMetricsExporter(
        pipeline,
        NAMESPACE,
        {"Device": "cam-1"},
        interval=0.05,
        boto3_session=moto.session(),
        endpoint_url=moto.url,
    )
    with exporter:
        data = exporter.report()
        assert exporter.sender.flush(timeout=10)
    names = {d["MetricName"] for d in data}
    assert {"FramesPerSecond", "Latency", "LatencyP90", "ProcessingTime"} <= names
    assert {"ProcessingTimeP50", "ProcessingTimeP99", "FailedItems", "DroppedItems"} <= names
    dims = {"Device": "cam-1", "Pipeline": "Cam", "Stage": "Detect"}
    points = statistics(moto, "ProcessingTime", dims)
    assert sum(p["SampleCount"] for p in points) == 25  # the second report adds none
    assert statistics(moto, "Latency", {"Device": "cam-1", "Pipeline": "Cam"})
    assert exporter.counters()["reports"] >= 2
    pipeline.cleanup()


def test_pipeline_report_counts_only_the_period() -> None:
    from framescope.cwadapter import pipeline_data

    pipeline = Pipeline(name="P")
    pipeline.add(lambda x: x, "A")
    marks: dict[str, Any] = {}
    now = datetime.datetime.now(UTC)
    for i in range(5):
        pipeline.forward(i)
    first = pipeline_data(pipeline.snapshot(), now, marks)
    for i in range(3):
        pipeline.forward(i)
    second = pipeline_data(pipeline.snapshot(), now, marks)

    def stage_count(data: list[dict[str, Any]]) -> float:
        (datum,) = [d for d in data if d["MetricName"] == "ProcessingTime"]
        return float(datum["StatisticValues"]["SampleCount"])

    assert stage_count(first) == 5 and stage_count(second) == 3
    pipeline.cleanup()


def test_bad_arguments(moto: MotoEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    session = moto.session()
    with pytest.raises(ValueError, match="namespace must not start with 'AWS/'"):
        CloudWatchTimerAdapter("AWS/EC2", "m", boto3_session=session)
    with pytest.raises(ValueError, match="metric_name must be 1 to 255"):
        CloudWatchTimerAdapter("ns", "", boto3_session=session)
    with pytest.raises(TypeError, match="dimensions must be a mapping"):
        CloudWatchTimerAdapter("ns", "m", [("a", "b")], boto3_session=session)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"dimensions\['a'\] must be a str"):
        CloudWatchTimerAdapter("ns", "m", {"a": 1}, boto3_session=session)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="max_buffer must be a positive integer \\(>= 1\\)"):
        CloudWatchTimerAdapter("ns", "m", boto3_session=session, max_buffer=0)
    with pytest.raises(TypeError, match="executor must be"):
        CloudWatchTimerAdapter("ns", "m", boto3_session=session, executor="pool")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pipeline must be a Pipeline"):
        PipelineMetricsExporter("p", "ns", boto3_session=session)  # type: ignore[arg-type]
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ValueError, match="region: no AWS region"):
        CloudWatchTimerAdapter("ns", "m")


def test_close_keeps_its_timeout_against_a_hanging_endpoint(moto: MotoEndpoint) -> None:
    silent = socket.socket()  # completes TCP handshakes, never answers a request
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    client = aws_client(
        "cloudwatch",
        region="eu-west-1",
        boto3_session=moto.session(),
        endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
        read_timeout=3,
    )
    adapter = CloudWatchTimerAdapter(NAMESPACE, "hung", client=client)
    adapter.send_metrics(datetime.datetime.now(UTC), _one_sample_snapshot(1.0))
    assert holds_within(lambda: adapter.counters()["pending"] == 1)
    started = time.monotonic()
    assert not adapter.close(timeout=2.0)
    took = time.monotonic() - started
    assert took < 3.5, took  # one deadline for flush and join (not 2 s each)
    sender = [t for t in threading.enumerate() if t.name == adapter.sender.name]
    for thread in sender:  # the hung call ends at its read timeout, and the thread with it
        thread.join(30)
        assert not thread.is_alive()
    counts = adapter.counters()
    assert counts["dropped"] == 1 and counts["sent"] == 0 and counts["pending"] == 0
    silent.close()


def test_a_batched_stage_reports_its_batches_of_the_period() -> None:
    from framescope.cwadapter import pipeline_data

    clock = FakeClock()
    pipeline = Pipeline(name="P", clock=clock)
    pipeline.add(lambda items: items, "Detect", batch=4, batch_timeout=60).parallelize()
    marks: dict[str, Any] = {}
    now = datetime.datetime.now(UTC)

    def batches(data: list[dict[str, Any]], name: str, **dims: str) -> float:
        (datum,) = [
            d
            for d in data
            if d["MetricName"] == name
            and {x["Name"]: x["Value"] for x in d["Dimensions"]}
            == {"Pipeline": "P", "Stage": "Detect", **dims}
        ]
        return float(datum.get("Value", datum.get("StatisticValues", {}).get("SampleCount", 0)))

    try:
        results = pipeline.results(timeout=30)
        for item in range(8):
            pipeline.forward(item)
        assert [next(results) for _ in range(8)] == list(range(8))  # two full batches
        first = pipeline_data(pipeline.snapshot(), now, marks)
        for item in range(3):
            pipeline.forward(item)
        pipeline.close()  # the part full batch goes at once
        assert list(results) == [0, 1, 2]
        second = pipeline_data(pipeline.snapshot(), now, marks)
    finally:
        pipeline.cleanup()
    assert batches(first, "Batches", Reason="full") == 2
    assert batches(first, "Batches", Reason="timeout") == 0
    assert batches(first, "BatchedItems") == 8
    assert batches(first, "BatchWait") == 8  # one wait per item
    assert batches(second, "Batches", Reason="full") == 0
    assert batches(second, "Batches", Reason="flush") == 1
    assert batches(second, "BatchedItems") == 3

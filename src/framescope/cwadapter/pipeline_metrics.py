"""Send a pipeline's per-stage fps and latency percentiles to CloudWatch on an interval."""

from __future__ import annotations

import concurrent.futures
import datetime
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from framescope._periodic import run_every
from framescope.clock import SYSTEM_CLOCK, Clock, to_nanoseconds
from framescope.cwadapter.adapter import CloudWatchSender
from framescope.cwadapter.datum import base_datum, cw_dimensions, value_datum
from framescope.delivery import DeliveryCounters
from framescope.pipeline.model.counters import BATCH_REASONS
from framescope.pipeline.model.snapshot import PipelineSnapshot, SnapshotSource, StageSnapshot
from framescope.stats import StatsSnapshot

__all__ = ["PipelineMetricsExporter", "pipeline_data"]

#: The percentiles sent for each latency: the Summary field, and the metric-name suffix.
PERCENTILES = (("median", "P50"), ("p90", "P90"), ("p99", "P99"))


def _period_statistics(
    now: StatsSnapshot, last: tuple[int, float] | None
) -> tuple[dict[str, float] | None, tuple[int, float]]:
    """StatisticValues of the samples recorded since ``last`` (count, total), and the new mark.

    Count and sum are exact (differences of all-time totals). Minimum and
    maximum come from the new samples still in the recent window: exact unless
    more samples arrived in the period than the window holds.
    """
    mark = (now.count, now.total)
    last_count, last_total = last if last is not None else (0, 0.0)
    new = now.count - last_count
    if new <= 0:
        return None, mark
    recent = now.recent
    fresh = recent[-new:] if new <= len(recent) else recent
    values = {
        "SampleCount": float(new),
        "Sum": max(0.0, now.total - last_total),
        "Minimum": min(fresh) if fresh else now.minimum,
        "Maximum": max(fresh) if fresh else now.maximum,
    }
    return values, mark


def pipeline_data(
    metrics: PipelineSnapshot,
    timestamp: datetime.datetime,
    marks: dict[str, Any],
    dimensions: Mapping[str, str] | None = None,
    *,
    high_resolution: bool = False,
) -> list[dict[str, Any]]:
    """The CloudWatch data for one report of a pipeline; updates ``marks`` in place.

    ``marks`` remembers the counts of the previous report, so counts and
    StatisticValues cover only the period since then.

    Per stage (dimensions Pipeline, Stage): FramesPerSecond, ProcessingTime
    (StatisticValues of the period), ProcessingTimeP50/P90/P99 (recent window),
    QueueDepth (threaded pipelines) and FailedItems (in the period); for a
    batched stage also Batches (in the period, dimension Reason: ``full``,
    ``timeout``, ``flush``), BatchedItems (in the period) and BatchWait (each
    item's time in a forming batch, StatisticValues of the period). For the
    whole pipeline (dimension Pipeline): FramesPerSecond, Latency (end to
    end), LatencyP50/P90/P99, FailedItems and DroppedItems (dimension Reason).
    """
    base = dict(dimensions or {})
    base["Pipeline"] = metrics.pipeline
    data: list[dict[str, Any]] = []

    def value(name: str, dims: list[dict[str, str]], reading: float, unit: str) -> None:
        data.append(
            value_datum(name, dims, timestamp, reading, unit=unit, high_resolution=high_resolution)
        )

    def timing(name: str, key: str, stats: StatsSnapshot, dims: list[dict[str, str]]) -> None:
        value("FramesPerSecond", dims, stats.rate(metrics.taken_ns), "Count/Second")
        values, marks[key] = _period_statistics(stats, marks.get(key))
        if values is None:
            return
        datum = base_datum(name, dims, timestamp, "Seconds", high_resolution)
        datum["StatisticValues"] = values
        data.append(datum)
        summary = stats.summary()
        for field, suffix in PERCENTILES:
            value(name + suffix, dims, getattr(summary, field), "Seconds")

    def count(name: str, key: str, total: int, dims: list[dict[str, str]]) -> None:
        previous = marks.get(key, 0)
        marks[key] = total
        value(name, dims, max(0, total - previous), "Count")

    pipeline_dims = cw_dimensions(base)
    timing("Latency", "latency", metrics.latency, pipeline_dims)
    count("FailedItems", "failed", metrics.count("failed"), pipeline_dims)
    for reason, total in metrics.dropped().items():
        reason_dims = cw_dimensions({**base, "Reason": reason})
        count("DroppedItems", f"dropped:{reason}", total, reason_dims)
    for stage in metrics.stages:
        dims = cw_dimensions({**base, "Stage": stage.stage})
        timing("ProcessingTime", f"stage:{stage.key}", stage.latency, dims)
        count("FailedItems", f"failed:{stage.key}", stage.failures, dims)
        if stage.queue_depth is not None:
            value("QueueDepth", dims, stage.queue_depth, "Count")
        if stage.batch is not None:
            data.extend(_batch_data(stage, base, timestamp, marks, high_resolution))
    return data


def _batch_data(
    stage: StageSnapshot,
    base: Mapping[str, str],
    timestamp: datetime.datetime,
    marks: dict[str, Any],
    high_resolution: bool,
) -> list[dict[str, Any]]:
    """A batched stage's data of the period: Batches by Reason, BatchedItems, BatchWait."""
    batch = stage.batch
    assert batch is not None
    dims = cw_dimensions({**base, "Stage": stage.stage})
    data = []

    def count(name: str, key: str, total: int, dims: list[dict[str, str]]) -> None:
        previous = marks.get(key, 0)
        marks[key] = total
        reading = max(0, total - previous)
        data.append(
            value_datum(
                name, dims, timestamp, reading, unit="Count", high_resolution=high_resolution
            )
        )

    for reason in BATCH_REASONS:
        reason_dims = cw_dimensions({**base, "Stage": stage.stage, "Reason": reason})
        count("Batches", f"batches:{stage.key}:{reason}", batch.reason(reason), reason_dims)
    count("BatchedItems", f"batched:{stage.key}", batch.items, dims)
    key = f"batch_wait:{stage.key}"
    waits, marks[key] = _period_statistics(batch.wait, marks.get(key))
    if waits is not None:
        datum = base_datum("BatchWait", dims, timestamp, "Seconds", high_resolution)
        datum["StatisticValues"] = waits
        data.append(datum)
    return data


class PipelineMetricsExporter:
    """Reports a pipeline's numbers to CloudWatch every ``interval``.

    A thread of its own (``framescope-cloudwatch-pipeline``) takes one
    snapshot of the pipeline per interval and queues the data (see :func:`pipeline_data` for the
    metrics); delivery happens off that thread, with the retries and bounded
    buffer of :class:`~framescope.cwadapter.adapter.CloudWatchSender`. Use it as
    a context manager, or :meth:`start` and :meth:`close`::

        with PipelineMetricsExporter(pipeline, "my_app", {"Device": "cam-1"}):
            pipeline.start_loop(1 / 30)
            ...


    Args:
        pipeline: the pipeline to report (anything with ``name`` and ``snapshot()``).
        namespace: the CloudWatch namespace.
        dimensions: extra dimensions added to every datum.
        interval: seconds (or a timedelta) between reports; 60 by default.
        region, boto3_session, executor, endpoint_url, max_buffer,
            retry_initial, retry_max, client: see CloudWatchSender.
        high_resolution: store at 1-second resolution.
        clock: where the report timestamps come from, and what the interval is waited on.
    """

    def __init__(  # noqa: PLR0917 - the same order as CloudWatchTimerAdapter
        self,
        pipeline: SnapshotSource,
        namespace: str,
        dimensions: Mapping[str, str] | None = None,
        interval: float | datetime.timedelta = 60.0,
        region: str | None = None,
        boto3_session: Any = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        high_resolution: bool = False,
        endpoint_url: str | None = None,
        max_buffer: int = 10_000,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        client: Any = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not callable(getattr(pipeline, "snapshot", None)):
            raise TypeError(
                f"pipeline must be a Pipeline (or have snapshot()), got {type(pipeline).__name__}"
            )
        interval_ns = to_nanoseconds(interval, "interval")
        if interval_ns <= 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self.pipeline = pipeline
        self.interval = interval_ns / 1e9
        cw_dimensions(dimensions)  # validate now, not at the first report
        self.dimensions = dict(dimensions or {})
        self.high_resolution = bool(high_resolution)
        self.clock = clock
        self.sender = CloudWatchSender(
            namespace,
            region=region,
            boto3_session=boto3_session,
            executor=executor,
            endpoint_url=endpoint_url,
            max_buffer=max_buffer,
            retry_initial=retry_initial,
            retry_max=retry_max,
            client=client,
            clock=clock,
        )
        self.reports = 0
        self.report_errors = 0
        self._marks: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def report(self) -> list[dict[str, Any]]:
        """Take a snapshot of the pipeline now and queue its data; returns the data queued."""
        with self._lock:
            data = pipeline_data(
                self.pipeline.snapshot(),
                self.clock.wall(),
                self._marks,
                self.dimensions,
                high_resolution=self.high_resolution,
            )
            self.reports += 1
        self.sender.submit_many(data)
        return data

    def start(self) -> PipelineMetricsExporter:
        """Start reporting every ``interval`` on a thread of its own; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="framescope-cloudwatch-pipeline")
            self._thread.start()
        return self

    def _run(self) -> None:
        run_every(
            self.clock,
            self._stop,
            self.interval,
            self.report,
            what=f"reporting pipeline {self.pipeline.name!r} to CloudWatch",
            failed=self._count_error,
        )

    def _count_error(self) -> None:
        self.report_errors += 1

    def counters(self) -> DeliveryCounters:
        """Delivery counts (submitted, sent, dropped, rejected, failed_attempts, pending)."""
        counts = self.sender.counters()
        counts["reports"] = self.reports
        counts["report_errors"] = self.report_errors
        return counts

    def close(self, timeout: float = 5.0) -> bool:
        """Stop reporting, send a last report and what is buffered; True when all went."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            self.report()
        return self.sender.close(timeout)

    def __enter__(self) -> PipelineMetricsExporter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


"""The earlier name of :class:`PipelineMetricsExporter` (it sends metrics, not a state)."""

"""Timer statistics to AWS CloudWatch: CloudWatchTimerAdapter and CWTachometer."""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from framescope._aws import aws_client, classify_aws_error
from framescope.clock import Clock
from framescope.cwadapter.datum import TimerLike, check_name, cw_dimensions, timer_datum
from framescope.delivery import DeliveryCounters, MetricDelivery
from framescope.timepiece.tachometers import DEFAULT_STATS_INTERVAL, TickerTachometer

__all__ = ["CWTachometer", "CloudWatchSender", "CloudWatchTimerAdapter"]


class CloudWatchSender(MetricDelivery):
    """Puts metric data to one CloudWatch namespace, off the caller's thread.

    A :class:`~framescope.delivery.MetricDelivery` whose batches (up
    to 20 data) go out with ``PutMetricData``; see there for retries, back-off,
    the bounded buffer and its counters. The IAM role needs
    ``cloudwatch:PutMetricData``.

    Args:
        namespace: the CloudWatch namespace (not one starting with ``AWS/``).
        region: the AWS region; the session's or environment's when None.
        boto3_session: the boto3 session to create the client from.
        executor: run the delivery loop on this executor instead of a thread.
        endpoint_url: another CloudWatch endpoint (a VPC endpoint, a local test server).
        max_buffer, retry_initial, retry_max: see MetricDelivery.
        client: an existing boto3 CloudWatch client to use instead of creating one.
        clock: the clock the retry back-off is waited on.
        log: where delivery warnings go (the adapter passes its own logger).
    """

    def __init__(
        self,
        namespace: str,
        *,
        region: str | None = None,
        boto3_session: Any = None,
        executor: concurrent.futures.Executor | None = None,
        endpoint_url: str | None = None,
        max_buffer: int = 10_000,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        client: Any = None,
        clock: Clock | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.namespace = check_name(namespace, "namespace")
        if namespace.startswith("AWS/"):
            raise ValueError(f"namespace must not start with 'AWS/' (reserved), got {namespace!r}")
        super().__init__(
            self._put,
            classify_aws_error,
            name=f"framescope-cloudwatch-{namespace}",
            max_buffer=max_buffer,
            retry_initial=retry_initial,
            retry_max=retry_max,
            executor=executor,
            clock=clock,
            log=log,
        )
        self.cloudwatch = client or aws_client(
            "cloudwatch", region=region, boto3_session=boto3_session, endpoint_url=endpoint_url
        )

    def _put(self, batch: list[dict[str, Any]]) -> None:
        self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=batch)


class CloudWatchTimerAdapter:
    """Reports timer statistics to AWS CloudWatch Metrics.

    :meth:`send_metrics` fits a tachometer's ``stats_callback``: each report
    becomes one datum with ``StatisticValues`` (SampleCount, Sum, Minimum,
    Maximum) in Seconds, stamped in UTC. It only queues the datum: sending,
    retries and back-off happen off the frame loop, and a dead endpoint never
    blocks or raises into it (see :meth:`counters`). Use it as a context manager,
    or call :meth:`close` at shutdown, to send what is still buffered.

    Example::

        adapter = CloudWatchTimerAdapter("my_app", "frame_time", {"Device": "cam-1"})
        tach = TickerTachometer(stats_callback=adapter.send_metrics)

    Args:
        namespace: the CloudWatch namespace, e.g. the project's name.
        metric_name: the metric, e.g. ``frame_processing_time``.
        dimensions: extra dimensions, e.g. device and application ids.
        region: the AWS region of the metrics.
        boto3_session: the boto3 session to use; the default session when None.
        executor: run deliveries on this executor instead of a thread of its own.
        high_resolution: store at 1-second resolution (StorageResolution 1).
        percentiles: send ``Values``/``Counts`` built from the kept samples
            instead of ``StatisticValues``, so CloudWatch can give percentiles.
        endpoint_url, max_buffer, retry_initial, retry_max, client: see
            :class:`CloudWatchSender`.
        parent_logger: log under this logger's name.
        clock: the clock the retry back-off is waited on.
    """

    def __init__(  # noqa: PLR0917 - the positional order users of the older API write
        self,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str] | None = None,
        region: str | None = None,
        boto3_session: Any = None,
        executor: concurrent.futures.Executor | None = None,
        *,
        high_resolution: bool = False,
        percentiles: bool = False,
        endpoint_url: str | None = None,
        max_buffer: int = 10_000,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        client: Any = None,
        parent_logger: logging.Logger | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.metric_name = check_name(metric_name, "metric_name")
        self.dimensions = cw_dimensions(dimensions)
        self.high_resolution = bool(high_resolution)
        self.percentiles = bool(percentiles)
        self.logger = (
            logging.getLogger(type(self).__name__)
            if parent_logger is None
            else parent_logger.getChild(type(self).__name__)
        )
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
            log=self.logger,  # delivery failures reach the adapter's logger, as in Backpack
        )

    @property
    def namespace(self) -> str:
        """The CloudWatch namespace."""
        return self.sender.namespace

    @property
    def cloudwatch(self) -> Any:
        """The boto3 CloudWatch client."""
        return self.sender.cloudwatch

    def send_metrics(self, timestamp: datetime.datetime, timer: TimerLike) -> dict[str, Any] | None:
        """Queue the statistics of ``timer`` as one datum stamped ``timestamp``.

        ``timer`` is what a tachometer hands its callback (a TimerSnapshot) or
        any timer with ``len() sum() min() max()``. Returns the datum, or None
        when the timer has no samples (nothing is sent).
        """
        datum = timer_datum(
            self.metric_name,
            self.dimensions,
            timestamp,
            timer,
            high_resolution=self.high_resolution,
            percentiles=self.percentiles,
        )
        if datum is None:
            self.logger.debug(
                "no samples for %s.%s; nothing sent", self.namespace, self.metric_name
            )
            return None
        self.sender.submit(datum)
        return datum

    def counters(self) -> DeliveryCounters:
        """Delivery counts: submitted, sent, dropped, rejected, failed_attempts, pending."""
        return self.sender.counters()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued so far is sent; False on timeout."""
        return self.sender.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Send what is buffered (up to ``timeout`` seconds), then stop; True when all went."""
        return self.sender.close(timeout)

    def __enter__(self) -> CloudWatchTimerAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class CWTachometer(TickerTachometer):
    """A TickerTachometer that reports its statistics to AWS CloudWatch Metrics.

    Call :meth:`tick` once per frame; once per ``stats_interval`` the period's
    statistics go to CloudWatch as by :class:`CloudWatchTimerAdapter`.
    ``executor`` runs the deliveries (the report itself only queues a datum).
    Call :meth:`close` at shutdown to report the unfinished period and send it.

    Args:
        namespace: the CloudWatch namespace.
        metric_name: the metric name.
        dimensions: extra dimensions.
        stats_interval: the reporting period (60 s by default; at least that
            for standard-resolution metrics).
        executor: run deliveries on this executor.
        region: the AWS region.
        boto3_session: the boto3 session to use.
        clock: the clock to read (tests pass a FakeClock).
        adapter_options: further CloudWatchTimerAdapter keywords
            (high_resolution, percentiles, endpoint_url, max_buffer, ...).
    """

    def __init__(  # noqa: PLR0917 - the positional order users of the older API write
        self,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str] | None = None,
        stats_interval: datetime.timedelta | float = DEFAULT_STATS_INTERVAL,
        executor: concurrent.futures.Executor | None = None,
        region: str | None = None,
        boto3_session: Any = None,
        *,
        clock: Clock | None = None,
        **adapter_options: Any,
    ) -> None:
        self.adapter = CloudWatchTimerAdapter(
            namespace,
            metric_name,
            dimensions,
            region=region,
            boto3_session=boto3_session,
            executor=executor,
            clock=clock,
            **adapter_options,
        )
        super().__init__(self.adapter.send_metrics, stats_interval, clock=clock)

    @property
    def namespace(self) -> str:
        """The CloudWatch namespace."""
        return self.adapter.namespace

    @property
    def metric_name(self) -> str:
        """The metric name."""
        return self.adapter.metric_name

    @property
    def dimensions(self) -> dict[str, str]:
        """The dimensions as given, a ``{name: value}`` dict (as Backpack's attribute)."""
        return {entry["Name"]: entry["Value"] for entry in self.adapter.dimensions}

    @property
    def cw_dimensions(self) -> list[dict[str, str]]:
        """The dimensions as CloudWatch takes them: ``[{"Name": ..., "Value": ...}]``."""
        return [dict(entry) for entry in self.adapter.dimensions]

    @property
    def cloudwatch(self) -> Any:
        """The boto3 CloudWatch client."""
        return self.adapter.cloudwatch

    @property
    def logger(self) -> logging.Logger:
        """The adapter's logger (a child of ``parent_logger`` when one was given)."""
        return self.adapter.logger

    def counters(self) -> DeliveryCounters:
        """Delivery counts (see :meth:`CloudWatchTimerAdapter.counters`)."""
        return self.adapter.counters()

    def close(self, timeout: float = 5.0) -> bool:
        """Report the unfinished period, send what is buffered, stop; True when all went."""
        self.flush()
        return self.adapter.close(timeout)

    def __enter__(self) -> CWTachometer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Leaving the block reports the unfinished period and sends it (see :meth:`close`)."""
        self.close()

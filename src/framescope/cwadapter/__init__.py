"""Send framescope's numbers to AWS CloudWatch Metrics (extra: ``framescope[aws]``).

- :class:`CloudWatchTimerAdapter`: ``send_metrics(timestamp, timer)`` is a
  tachometer's ``stats_callback``; each report is one ``PutMetricData`` datum.
- :class:`CWTachometer`: a TickerTachometer that reports to CloudWatch itself.
- :class:`PipelineMetricsExporter`:
  a pipeline's per-stage fps and latency percentiles on an interval.

Nothing here blocks or raises into the frame loop: data are buffered (bounded,
oldest dropped and counted) and sent by a delivery loop that retries with
back-off. boto3 is imported when a client is created, not on import.
"""

from framescope.cwadapter.adapter import CloudWatchSender, CloudWatchTimerAdapter, CWTachometer
from framescope.cwadapter.pipeline_metrics import (
    PipelineMetricsExporter,
    pipeline_data,
)
from framescope.delivery import FailureKind, MetricDelivery

__all__ = [
    "CWTachometer",
    "CloudWatchSender",
    "CloudWatchTimerAdapter",
    "FailureKind",
    "MetricDelivery",
    "PipelineMetricsExporter",
    "pipeline_data",
]

"""Export framescope's numbers to Prometheus and OpenTelemetry.

- :class:`framescope.exporters.prometheus.PrometheusExporter` (``framescope[prometheus]``)
  serves pipelines and timers on ``/metrics``.
- :class:`framescope.exporters.opentelemetry.OpenTelemetryExporter` (``framescope[otel]``)
  reports the same numbers as OpenTelemetry metrics, and sampled frame traces
  as spans.

Both read their sources through :class:`~framescope.exporters.sources.MetricSources`,
one reading per collection, so they agree. This package imports neither
backend; each module imports its own when loaded.
"""

from framescope.exporters.sources import MetricSources, Reading, TimerReading

__all__ = ["MetricSources", "Reading", "TimerReading"]

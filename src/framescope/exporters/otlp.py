"""OTLP/HTTP providers for the OpenTelemetry exporter, bounded in time, counting delivery.

The SDK's defaults suit a service that runs against a healthy collector: a
provider shuts down at interpreter exit, retrying a dead collector for up to
30 s. An edge box must exit promptly whatever the network does, so the
providers made here are not shut down at exit (the exporter that owns them
does it, with a time limit), each export gives up after ``timeout`` seconds,
and the span exporter counts the spans the collector accepted.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from framescope._optional import require

__all__ = ["DeliveredSpans", "delivered_spans", "otlp_meter_provider", "otlp_tracer_provider"]

_providers: weakref.WeakKeyDictionary[Any, DeliveredSpans] = weakref.WeakKeyDictionary()


def otlp_meter_provider(
    endpoint: str | None = None, interval_s: float = 60.0, *, timeout: float | None = None
) -> Any:
    """A MeterProvider that sends to an OTLP/HTTP endpoint every ``interval_s`` seconds.

    ``endpoint`` is the full metrics URL (``http://host:4318/v1/metrics``); by
    default the ``OTEL_EXPORTER_OTLP_*`` environment variables decide.
    ``timeout``: seconds one export may take, retries included (None: the
    ``OTEL_EXPORTER_OTLP_*TIMEOUT`` variables, else 10). It is not shut down
    at interpreter exit: call its ``shutdown()`` (or let an exporter that
    made it do so).
    """
    sdk = require("opentelemetry.sdk.metrics", "otel", "OTLP metrics")
    export = require("opentelemetry.sdk.metrics.export", "otel", "OTLP metrics")
    otlp = require("opentelemetry.exporter.otlp.proto.http.metric_exporter", "otel", "OTLP metrics")
    reader = export.PeriodicExportingMetricReader(
        otlp.OTLPMetricExporter(endpoint=endpoint, timeout=timeout),
        export_interval_millis=interval_s * 1000,
    )
    return sdk.MeterProvider(metric_readers=[reader], shutdown_on_exit=False)


def otlp_tracer_provider(endpoint: str | None = None, *, timeout: float | None = None) -> Any:
    """A TracerProvider that batches spans to an OTLP/HTTP endpoint (``.../v1/traces``).

    ``timeout`` and exit as for :func:`otlp_meter_provider`. The spans the
    collector accepted are counted: see :func:`delivered_spans`.
    """
    sdk = require("opentelemetry.sdk.trace", "otel", "OTLP traces")
    export = require("opentelemetry.sdk.trace.export", "otel", "OTLP traces")
    otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "otel", "OTLP traces")
    counted = DeliveredSpans(otlp.OTLPSpanExporter(endpoint=endpoint, timeout=timeout))
    provider = sdk.TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(export.BatchSpanProcessor(counted))
    _providers[provider] = counted
    return provider


def delivered_spans(provider: Any) -> DeliveredSpans | None:
    """The delivery count of a provider made by :func:`otlp_tracer_provider` (else None)."""
    return _providers.get(provider)


class DeliveredSpans:
    """A span exporter that passes spans on and counts those the collector accepted.

    Args:
        exporter: the span exporter that sends them (an ``OTLPSpanExporter``).
    """

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter
        self._lock = threading.Lock()
        self.delivered = 0  # spans the collector accepted
        self.failed = 0  # spans handed over that did not arrive

    def export(self, spans: Sequence[Any]) -> Any:
        """Send ``spans``; count them as delivered or failed by the result."""
        result = self._exporter.export(spans)
        success = require("opentelemetry.sdk.trace.export", "otel", "OTLP traces")
        with self._lock:
            if result == success.SpanExportResult.SUCCESS:
                self.delivered += len(spans)
            else:
                self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        flushed: bool = self._exporter.force_flush(timeout_millis)
        return flushed

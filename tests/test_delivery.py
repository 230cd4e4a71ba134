"""The delivery loop's retry, back-off and reject paths, with faults a real server cannot give."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)

from framescope._aws import classify_aws_error
from framescope.clock import FakeClock
from framescope.delivery import FailureKind, MetricDelivery
from tests.polling import holds_within


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutMetricData",
    )


def test_classification() -> None:
    assert classify_aws_error(client_error("Throttling", 400)) is FailureKind.RETRY
    assert classify_aws_error(client_error("InternalFailure", 500)) is FailureKind.RETRY
    assert classify_aws_error(client_error("ExpiredTokenException", 400)) is FailureKind.RETRY
    assert classify_aws_error(client_error("Whatever", 503)) is FailureKind.RETRY
    assert classify_aws_error(client_error("InvalidParameterValue", 400)) is FailureKind.REJECT
    assert classify_aws_error(EndpointConnectionError(endpoint_url="x")) is FailureKind.RETRY
    assert classify_aws_error(NoCredentialsError()) is FailureKind.RETRY
    assert classify_aws_error(ParamValidationError(report="bad")) is FailureKind.REJECT
    assert classify_aws_error(ValueError("bug")) is FailureKind.REJECT


class FlakyEndpoint:
    """Raises the given errors in turn, then accepts; records what it accepted."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.accepted: list[Any] = []
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, batch: list[Any]) -> None:
        with self.lock:
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            self.accepted.extend(batch)


def test_throttling_is_retried_with_back_off_then_delivered() -> None:
    endpoint = FlakyEndpoint(client_error("Throttling", 400), client_error("Throttling", 400))
    delivery = MetricDelivery(endpoint, classify_aws_error, retry_initial=0.01, retry_max=0.02)
    delivery.submit_many(range(45))
    assert delivery.flush(timeout=10)
    assert endpoint.accepted == list(range(45))  # in order, nothing lost or doubled
    counts = delivery.counters()
    assert counts["failed_attempts"] == 2 and counts["sent"] == 45
    assert counts["batches"] == 3  # batches of at most 20
    assert not delivery.failing
    assert delivery.close()


def test_rejected_batch_is_counted_and_the_rest_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = FlakyEndpoint(client_error("InvalidParameterValue", 400))
    delivery = MetricDelivery(endpoint, classify_aws_error, batch_size=2)
    delivery.submit_many(["bad", "bad too", "good"])
    assert delivery.flush(timeout=10)
    assert endpoint.accepted == ["good"]
    assert delivery.counters()["rejected"] == 2
    assert "rejected" in caplog.text
    delivery.close()


def test_back_off_grows_and_is_capped() -> None:
    clock = FakeClock(autojump=True)  # every back-off passes at once, on the fake clock
    endpoint = FlakyEndpoint(*[EndpointConnectionError(endpoint_url="x") for _ in range(6)])
    attempts: list[int] = []

    def send(batch: list[Any]) -> None:
        attempts.append(clock.monotonic_ns())
        endpoint(batch)

    delivery = MetricDelivery(
        send, classify_aws_error, retry_initial=1.0, retry_max=8.0, clock=clock
    )
    delivery.submit(1)
    assert holds_within(lambda: delivery.counters()["sent"] == 1)
    assert endpoint.calls == 7
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(attempts)]
    expected = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # doubling, then capped at retry_max
    assert len(gaps) == len(expected)
    for gap, full in zip(gaps, expected, strict=True):
        assert 0.8 * full <= gap <= full  # jitter only ever shortens a wait
    # After the success the back-off starts over from retry_initial.
    endpoint.errors.append(EndpointConnectionError(endpoint_url="x"))
    delivery.submit(2)
    assert holds_within(lambda: delivery.counters()["sent"] == 2)
    assert 0.8 <= (attempts[-1] - attempts[-2]) / 1e9 <= 1.0
    delivery.close()


def test_close_stops_a_loop_waiting_out_a_long_back_off() -> None:
    endpoint = FlakyEndpoint(*[EndpointConnectionError(endpoint_url="x") for _ in range(100)])
    delivery = MetricDelivery(endpoint, classify_aws_error, retry_initial=30.0)
    delivery.submit("x")
    assert holds_within(lambda: delivery.failing)
    assert not delivery.close(timeout=0.2)  # the 30 s wait does not hold it up
    counts = delivery.counters()
    assert counts["dropped"] == 1 and counts["pending"] == 0
    delivery.submit("late")  # after close: counted, never silently lost
    assert delivery.counters()["dropped"] == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="retry_initial must be a positive number"):
        MetricDelivery(print, classify_aws_error, retry_initial=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer \\(>= 1\\)"):
        MetricDelivery(print, classify_aws_error, batch_size=0)


def test_a_batch_failing_after_close_is_counted_as_dropped() -> None:
    release = threading.Event()

    def stuck_then_down(batch: list[Any]) -> None:
        release.wait(10)
        raise EndpointConnectionError(endpoint_url="x")

    delivery = MetricDelivery(stuck_then_down, classify_aws_error, name="framescope-stuck")
    delivery.submit_many(["a", "b"])
    assert holds_within(lambda: delivery.counters()["pending"] == 2 and not delivery._buffer)
    assert not delivery.close(timeout=0.05)  # the batch is still in flight
    release.set()
    assert holds_within(lambda: delivery.counters()["pending"] == 0)
    counts = delivery.counters()
    assert counts["dropped"] == 2 and counts["failed_attempts"] == 0
    assert holds_within(
        lambda: not any(t.name == "framescope-stuck" for t in threading.enumerate())
    )

"""Code written against released Backpack's cwadapter, cwtacho and autoidentity runs unchanged."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest

from framescope.autoidentity import (
    AutoIdentity,
    AutoIdentityData,
    AutoIdentityError,
    AutoIdentityFetcher,
)
from framescope.clock import FakeClock
from framescope.cwadapter import CloudWatchTimerAdapter, CWTachometer
from tests.moto_server import REGION, MotoEndpoint
from tests.polling import holds_within

from ..test_autoidentity import deploy

pytestmark = pytest.mark.integration


def test_delivery_failures_reach_the_adapters_logger(
    moto: MotoEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    parent = logging.getLogger("my_app")
    closed_port = "http://127.0.0.1:9"  # nothing listens there
    adapter = CloudWatchTimerAdapter(
        "my_app",
        "frame_time",
        {"Device": "cam-1"},
        region=REGION,
        boto3_session=moto.session(),
        endpoint_url=closed_port,
        parent_logger=parent,
        retry_initial=0.05,
        retry_max=0.1,
    )
    with caplog.at_level(logging.WARNING, logger="my_app"):
        adapter.send_metrics(datetime.datetime.now(datetime.timezone.utc), _Timer([0.01, 0.02]))
        assert holds_within(lambda: adapter.counters()["failed_attempts"] >= 1)
        adapter.close(timeout=0.5)
    records = [r for r in caplog.records if r.name == "my_app.CloudWatchTimerAdapter"]
    assert records and records[0].levelno == logging.WARNING
    assert "delivery failed" in records[0].getMessage()
    assert "EndpointConnectionError" in records[0].getMessage()  # what went wrong, by name


class _Timer:
    def __init__(self, values: list[float]) -> None:
        self.values = values

    def min(self) -> float:
        return min(self.values)

    def max(self) -> float:
        return max(self.values)

    def sum(self) -> float:
        return sum(self.values)

    def len(self) -> int:
        return len(self.values)


def test_cwtachometer_has_backpacks_attributes(moto: MotoEndpoint) -> None:
    parent = logging.getLogger("my_app")
    with CWTachometer(
        "my_app",
        "frame_time",
        {"Device": "cam-1"},
        region=REGION,
        boto3_session=moto.session(),
        endpoint_url=moto.url,
        parent_logger=parent,
    ) as tach:
        assert tach.dimensions == {"Device": "cam-1"}  # Backpack 0.1.9 returns the dict given
        assert tach.cw_dimensions == [{"Name": "Device", "Value": "cam-1"}]
        assert tach.cloudwatch.meta.service_model.service_name == "cloudwatch"
        assert tach.logger.name == "my_app.CloudWatchTimerAdapter"


def test_autoidentity_as_backpack_0_2_tests_call_it(
    moto: MotoEndpoint, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = logging.getLogger("app")
    identity = AutoIdentity(
        REGION, test_utility=True, test_utility_app_instance_id="counter", parent_logger=parent
    )
    assert identity.application_instance_id == identity.application_name == "counter_test_app"
    assert identity.device_name == "test_utility_emulator"
    assert identity.application_status == "TEST_UTILITY"
    monkeypatch.delenv("AppGraph_Uid", raising=False)
    with caplog.at_level(logging.WARNING, logger="app"):
        missing = AutoIdentity(REGION, None, False, None, parent)  # the positional order
    assert missing.application_name is None
    assert any(
        r.name == "app.AutoIdentity" and "AppGraph_Uid" in r.getMessage() for r in caplog.records
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app"):
        AutoIdentity(
            REGION,
            "nope",
            parent_logger=parent,
            boto3_session=moto.session(),
            endpoint_url=moto.url,
            timeout=3,
            clock=FakeClock(autojump=True),  # the retry waits take no real time
        )
    assert any("'nope' not found" in r.getMessage() for r in caplog.records)


def test_only_deployed_instances_are_looked_at(moto: MotoEndpoint) -> None:
    (instance_id,) = deploy(moto, 1)
    calls: list[dict[str, Any]] = []
    client: Any = moto.client("panorama")
    real = client.list_application_instances

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    client.list_application_instances = spy
    identity = AutoIdentity(REGION, instance_id, client=client)
    assert identity.application_name == "people-counter-0"
    assert calls and all(call["StatusFilter"] == "DEPLOYMENT_SUCCEEDED" for call in calls)


def test_autoidentity_fetcher_of_backpack_0_3(
    moto: MotoEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    (instance_id,) = deploy(moto, 1)
    fetcher = AutoIdentityFetcher(
        REGION, instance_id, boto3_session=moto.session(), endpoint_url=moto.url
    )
    data = fetcher.get_data()
    assert isinstance(data, AutoIdentityData)
    assert data.application_name == "people-counter-0"
    assert data.device_name == "edge-7"
    assert data.application_status == "RUNNING"
    assert data.application_tags == {"site": "lyon", "copy": "0"}
    with pytest.raises(AutoIdentityError, match="Could not find application instance in service"):
        AutoIdentityFetcher(
            REGION, "nope", boto3_session=moto.session(), endpoint_url=moto.url
        ).get_data(retry_freq=None)
    monkeypatch.delenv("AppGraph_Uid", raising=False)
    with pytest.raises(AutoIdentityError, match="AppGraph_Uid"):
        AutoIdentityFetcher(REGION)
    test = AutoIdentityData.for_test_environment("id-1", "counter")
    assert (test.device_id, test.application_status) == ("emulator", "TEST_UTILITY")


def test_fetcher_retries_while_not_available(moto: MotoEndpoint) -> None:
    (instance_id,) = deploy(moto, 1)
    client: Any = moto.client("panorama")
    real = client.list_application_instances
    answers = {"n": 0}

    def not_yet(**kwargs: Any) -> Any:
        response = real(**kwargs)
        answers["n"] += 1
        if answers["n"] <= 2:
            for instance in response["ApplicationInstances"]:
                instance["HealthStatus"] = "NOT_AVAILABLE"
        return response

    client.list_application_instances = not_yet
    clock = FakeClock(autojump=True)
    fetcher = AutoIdentityFetcher(REGION, instance_id, client=client, clock=clock)
    started = clock.monotonic_ns()
    assert fetcher.get_data(retry_freq=5, max_retry_freq=8).application_status == "RUNNING"
    assert (clock.monotonic_ns() - started) / 1e9 == pytest.approx(5 + 8)
    for retry_freq, max_retry_freq, waited in ((10, 4, 10 + 4), (1, None, 1 + 2)):
        answers["n"], started = 0, clock.monotonic_ns()  # two answers NOT_AVAILABLE again
        fetcher.get_data(retry_freq=retry_freq, max_retry_freq=max_retry_freq)
        assert (clock.monotonic_ns() - started) / 1e9 == pytest.approx(waited)  # the first uncapped
    answers["n"] = -100
    with pytest.raises(AutoIdentityError, match="Maximum number of retries"):
        fetcher.get_data(retry_freq=1, max_retry_num=3)


def test_autoidentity_data_from_a_service_answer() -> None:
    data = AutoIdentityData.from_instance(
        {
            "ApplicationInstanceId": "applicationInstance-1",
            "Name": "counter",
            "HealthStatus": "RUNNING",
        }
    )
    assert (data.application_instance_id, data.application_name) == (
        "applicationInstance-1",
        "counter",
    )
    assert data.application_status == "RUNNING" and data.application_tags == {}
    with pytest.raises(AutoIdentityError, match="no Name"):
        AutoIdentityData.from_instance({"ApplicationInstanceId": "applicationInstance-1"})

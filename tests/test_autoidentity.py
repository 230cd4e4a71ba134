"""AutoIdentity against Panorama application instances in a real moto server."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from framescope.autoidentity import AutoIdentity, HostIdentity
from framescope.clock import FakeClock
from tests.moto_server import REGION, MotoEndpoint

pytestmark = pytest.mark.integration


def deploy(endpoint: MotoEndpoint, count: int) -> list[str]:
    """Provision a device and create ``count`` application instances; returns their ids."""
    panorama: Any = endpoint.client("panorama")
    device = panorama.provision_device(Name="edge-7", Description="loading dock")
    ids = []
    for index in range(count):
        response = panorama.create_application_instance(
            DefaultRuntimeContextDevice=device["DeviceId"],
            ManifestPayload={"PayloadData": "{}"},
            Name=f"people-counter-{index}",
            Description=f"counts people, copy {index}",
            Tags={"site": "lyon", "copy": str(index)},
        )
        ids.append(response["ApplicationInstanceId"])
    return ids


def identity_for(endpoint: MotoEndpoint, instance_id: str | None, **options: Any) -> AutoIdentity:
    return AutoIdentity(
        REGION,
        instance_id,
        boto3_session=endpoint.session(),
        endpoint_url=endpoint.url,
        **options,
    )


def test_finds_the_instance_on_a_later_page(moto: MotoEndpoint) -> None:
    ids = deploy(moto, 30)  # two pages of at most 25
    identity = identity_for(moto, ids[27])
    assert identity.reasons == {}
    assert identity.application_instance_id == ids[27]
    assert identity.application_name == "people-counter-27"
    assert identity.application_description == "counts people, copy 27"
    assert identity.application_status == "RUNNING"
    assert identity.application_tags == {"site": "lyon", "copy": "27"}
    assert identity.device_name == "edge-7"
    assert identity.device_id is not None and identity.device_id.startswith("device-")
    assert isinstance(identity.application_created_time, datetime.datetime)
    assert identity.dimensions() == {
        "application_name": "people-counter-27",
        "device_name": "edge-7",
    }
    text = repr(identity)
    assert text.startswith("<AutoIdentity application_created_time=")
    assert 'application_name="people-counter-27"' in text
    assert 'device_name="edge-7"' in text


def test_instance_id_from_the_environment(
    moto: MotoEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    (instance_id,) = deploy(moto, 1)
    monkeypatch.setenv("AppGraph_Uid", instance_id)
    identity = identity_for(moto, None)
    assert identity.application_name == "people-counter-0"


def test_no_instance_id_gives_a_reason_without_calling_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AppGraph_Uid", raising=False)
    identity = AutoIdentity(REGION)
    assert identity.application_name is None
    assert "AppGraph_Uid" in (identity.reason("application_instance_id") or "")
    assert "AppGraph_Uid" in (identity.reason("device_name") or "")
    assert identity.dimensions() == {}
    assert identity.attempts == 0


def test_unknown_instance_is_retried_until_the_timeout(moto: MotoEndpoint) -> None:
    deploy(moto, 2)
    clock = FakeClock(autojump=True)  # the waits pass at once, on the fake clock
    start = clock.monotonic_ns()
    identity = identity_for(
        moto, "applicationInstance-nope", timeout=10, retry_interval=0.5, clock=clock
    )
    # Attempts at 0, 0.5, 1.5, 3.5 and 7.5 s (the wait doubles), then at 10 s the timeout.
    assert identity.attempts == 6
    assert clock.monotonic_ns() - start == 10_000_000_000
    assert identity.application_name is None
    reason = identity.reason("application_name") or ""
    assert "'applicationInstance-nope' not found among 2 instances in eu-west-1" in reason
    assert f"gave up after {identity.attempts} attempts" in reason


def test_throttled_lookup_is_retried_then_succeeds(moto: MotoEndpoint) -> None:
    """Throttling cannot be caused on moto: the first call raises it, the next goes through."""
    from botocore.exceptions import ClientError

    (instance_id,) = deploy(moto, 1)
    panorama: Any = moto.client("panorama")

    class ThrottledOnce:
        calls = 0

        def list_application_instances(self, **kwargs: Any) -> Any:
            ThrottledOnce.calls += 1
            if ThrottledOnce.calls == 1:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                    "ListApplicationInstances",
                )
            return panorama.list_application_instances(**kwargs)

    clock = FakeClock(autojump=True)
    start = clock.monotonic_ns()
    identity = AutoIdentity(
        REGION, instance_id, client=ThrottledOnce(), timeout=60, retry_interval=2, clock=clock
    )
    assert identity.attempts == 2
    assert clock.monotonic_ns() - start == 2_000_000_000  # one retry_interval waited
    assert identity.application_name == "people-counter-0"
    assert identity.reasons == {}


def test_health_not_available_keeps_what_was_learned(moto: MotoEndpoint) -> None:
    """moto always reports RUNNING: a client passes its answers on with NOT_AVAILABLE."""
    (instance_id,) = deploy(moto, 1)
    panorama: Any = moto.client("panorama")

    class StartingUp:
        def list_application_instances(self, **kwargs: Any) -> Any:
            response = panorama.list_application_instances(**kwargs)
            for instance in response["ApplicationInstances"]:
                instance["HealthStatus"] = "NOT_AVAILABLE"
            return response

    clock = FakeClock(autojump=True)
    identity = AutoIdentity(
        REGION, instance_id, client=StartingUp(), timeout=5, retry_interval=1, clock=clock
    )
    assert identity.application_status == "NOT_AVAILABLE"
    assert identity.application_name == "people-counter-0"  # kept, not wiped
    assert identity.reasons == {}
    assert not identity.refresh(timeout=5)  # still not healthy


def test_endpoint_down_is_retried_then_found_on_refresh(moto: MotoEndpoint) -> None:
    (instance_id,) = deploy(moto, 1)
    moto.stop()
    clock = FakeClock(autojump=True)
    identity = identity_for(moto, instance_id, timeout=2, retry_interval=0.5, clock=clock)
    assert identity.application_name is None
    assert "EndpointConnectionError" in (identity.reason("device_id") or "")
    moto.start()  # moto keeps its data across the restart
    assert identity.refresh(timeout=5)
    assert identity.application_name == "people-counter-0"
    assert identity.reasons == {}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="device_region must be a non-empty str"):
        AutoIdentity("")
    with pytest.raises(TypeError, match="application_instance_id must be a str"):
        AutoIdentity(REGION, 12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        AutoIdentity(REGION, "x", timeout=0)
    with pytest.raises(KeyError, match="not a field"):
        AutoIdentity(REGION).reason("colour")


def test_host_identity_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    monkeypatch.setenv("SITE_ID", "lyon-3")
    monkeypatch.delenv("RACK_ID", raising=False)
    identity = HostIdentity(env={"site": "SITE_ID", "rack": "RACK_ID"})
    assert identity.host_name == socket.gethostname()
    assert identity.process_id == os.getpid()
    assert identity.site == "lyon-3"  # type: ignore[attr-defined]
    assert identity.rack is None  # type: ignore[attr-defined]
    assert identity.reason("rack") == "environment variable RACK_ID is not set"
    dims = identity.dimensions()
    assert dims["host_name"] == socket.gethostname() and dims["site"] == "lyon-3"
    assert "rack" not in dims
    assert (identity.container_id is None) == ("container_id" in identity.reasons)
    assert repr(identity).startswith('<HostIdentity host_name="')
    with pytest.raises(ValueError, match="clashes with a built-in field"):
        HostIdentity(env={"host_name": "HOST"})
    with pytest.raises(KeyError, match="not fields: nope"):
        HostIdentity(dimensions=("nope",))


def test_container_id_is_read_from_cgroup_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from framescope import autoidentity

    cid = "ab" * 32
    cgroup = tmp_path / "cgroup"
    cgroup.write_text(f"0::/system.slice/docker-{cid}.scope\n")
    real_path = autoidentity.Path
    monkeypatch.setattr(
        autoidentity,
        "Path",
        lambda p: real_path(cgroup) if p == "/proc/self/cgroup" else real_path(tmp_path / "none"),
    )
    assert autoidentity.container_id() == (cid, "")

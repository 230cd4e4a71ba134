"""Panorama application-instance lookups shared by the identity classes, and Backpack
0.3's ``AutoIdentityFetcher`` (re-exported by :mod:`framescope.autoidentity`).
"""

from __future__ import annotations

import datetime
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from framescope._aws import aws_client
from framescope._waits import backoff_delay
from framescope.clock import SYSTEM_CLOCK, Clock, sleep_on

__all__ = [
    "PANORAMA_FIELDS",
    "AutoIdentityData",
    "AutoIdentityError",
    "AutoIdentityFetcher",
    "child_logger",
    "deployed_instances",
]

logger = logging.getLogger("framescope.autoidentity")


def child_logger(parent: logging.Logger | None, name: str) -> logging.Logger:
    """``parent``'s child called ``name`` (Backpack's ``parent_logger``), else framescope's."""
    if parent is None:
        return logger
    if not isinstance(parent, logging.Logger):
        raise TypeError(f"parent_logger must be a logging.Logger, got {type(parent).__name__}")
    return parent.getChild(name)


def deployed_instances(panorama: Any) -> Iterator[dict[str, Any]]:
    """Every deployed application instance (``StatusFilter=DEPLOYMENT_SUCCEEDED``), page by page."""
    token = None
    while True:
        kwargs: dict[str, Any] = {"StatusFilter": "DEPLOYMENT_SUCCEEDED", "MaxResults": 25}
        if token:
            kwargs["NextToken"] = token
        response = panorama.list_application_instances(**kwargs)
        yield from response.get("ApplicationInstances", [])
        token = response.get("NextToken")
        if not token:
            return


class AutoIdentityError(RuntimeError):
    """Backpack 0.3's error: the identity could not be fetched."""


PANORAMA_FIELDS = {
    "application_created_time": "CreatedTime",
    "application_description": "Description",
    "application_name": "Name",
    "application_status": "HealthStatus",
    "application_tags": "Tags",
    "device_id": "DefaultRuntimeContextDevice",
    "device_name": "DefaultRuntimeContextDeviceName",
}
"""Identity fields and the ``ListApplicationInstances`` keys they come from."""

_KEYS = {"application_instance_id": "ApplicationInstanceId", **PANORAMA_FIELDS}


@dataclass(frozen=True)
class AutoIdentityData:
    """Backpack 0.3's identity record (a plain dataclass, no pydantic)."""

    application_instance_id: str
    application_name: str
    application_tags: dict[str, str] = field(default_factory=dict)
    device_id: str = ""
    device_name: str = ""
    application_created_time: datetime.datetime | None = None
    application_status: str = ""
    application_description: str | None = None

    @classmethod
    def from_instance(cls, instance: Mapping[str, Any]) -> AutoIdentityData:
        """From one ``ListApplicationInstances`` entry."""
        missing = [key for name, key in _KEYS.items() if key not in instance and name in _NEEDED]
        if missing:
            raise AutoIdentityError(f"the service's answer has no {', '.join(missing)}")
        values: dict[str, Any] = {
            name: instance[key] for name, key in _KEYS.items() if key in instance
        }
        return cls(**values)

    @classmethod
    def for_test_environment(
        cls, application_instance_id: str, application_name: str
    ) -> AutoIdentityData:
        """Dummy values for Panorama's Test Utility, as Backpack gives them."""
        return cls(
            application_instance_id=application_instance_id,
            application_name=application_name,
            application_tags={},
            device_id="emulator",
            device_name="test_utility_emulator",
            application_created_time=datetime.datetime.now(datetime.timezone.utc),
            application_status="TEST_UTILITY",
            application_description=application_name,
        )


_NEEDED = ("application_instance_id", "application_name")


class AutoIdentityFetcher:
    """Backpack 0.3's way to learn the identity: ``AutoIdentityFetcher(region).get_data()``.

    Args:
        device_region: the AWS region the device is registered in.
        application_instance_id: the instance id; ``AppGraph_Uid`` when None
            (an :class:`AutoIdentityError` when neither is there).
        parent_logger: log as ``<parent>.AutoIdentityFetcher``.
        boto3_session, endpoint_url, client: where to call Panorama.
        clock: what the retry waits run on.
    """

    def __init__(
        self,
        device_region: str,
        application_instance_id: str | None = None,
        parent_logger: logging.Logger | None = None,
        *,
        boto3_session: Any = None,
        endpoint_url: str | None = None,
        client: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(device_region, str) or not device_region:
            raise ValueError(f"device_region must be a non-empty str, got {device_region!r}")
        self._logger = child_logger(parent_logger, "AutoIdentityFetcher")
        self.device_region = device_region
        variable = "AppGraph_Uid"  # Panorama's own spelling
        self.application_instance_id = application_instance_id or os.environ.get(variable)
        if not self.application_instance_id:
            raise AutoIdentityError(
                'Could not find application instance id in environment variable "AppGraph_Uid"'
            )
        self._client = client
        self._options = {"boto3_session": boto3_session, "endpoint_url": endpoint_url}
        self._clock = SYSTEM_CLOCK if clock is None else clock

    def _instance(self) -> dict[str, Any]:
        if self._client is None:
            self._client = aws_client("panorama", region=self.device_region, **self._options)
        for instance in deployed_instances(self._client):
            if instance.get("ApplicationInstanceId") == self.application_instance_id:
                return instance
        raise AutoIdentityError(
            "Could not find application instance in service response. Check if "
            f"application_instance_id={self.application_instance_id} and "
            f"device_region={self.device_region} parameters are correct."
        )

    def get_data(
        self,
        retry_freq: float | None = 5,
        max_retry_freq: float | None = 300,
        max_retry_num: int | None = 50,
    ) -> AutoIdentityData:
        """The identity; while its HealthStatus is NOT_AVAILABLE, retry after ``retry_freq``
        seconds, doubling up to ``max_retry_freq``, at most ``max_retry_num`` times
        (``retry_freq=None``: no retry). AutoIdentityError when it cannot be had."""
        retries = 0
        cap = math.inf if max_retry_freq is None else max_retry_freq
        while True:
            instance = self._instance()
            status = instance.get("HealthStatus", "NOT_AVAILABLE")
            self._logger.info("Application HealthStatus=%s", status)
            if status != "NOT_AVAILABLE":
                return AutoIdentityData.from_instance(instance)
            if retry_freq is None:
                raise AutoIdentityError(
                    f'Application HealthStatus is "{status}" and retry is disabled.'
                )
            retries += 1
            if max_retry_num is not None and retries > max_retry_num:
                raise AutoIdentityError("Maximum number of retries reached.")
            wait = retry_freq  # Backpack's first wait, even above max_retry_freq
            if retries > 1:
                wait = backoff_delay(retries, retry_freq, cap, jitter=0.0)
            self._logger.info("Will retry fetching auto identity data in %s seconds.", wait)
            sleep_on(self._clock, wait)

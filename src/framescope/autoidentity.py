"""Who is this application? Identity fields for metric dimensions and labels.

- :class:`AutoIdentity` looks the running AWS Panorama application instance up
  (``panorama:ListApplicationInstances``) and exposes its name, device, status
  and tags.
- :class:`HostIdentity` works anywhere: host name, process, container id when
  there is one, and values from environment variables.

Both share :class:`Identity`: :meth:`~Identity.dimensions` turns the known
fields into a ``{name: value}`` dict for CloudWatch dimensions or Prometheus
labels, so the same code runs on and off Panorama. A field that could not be
learned is None, and :attr:`~Identity.reasons` says why.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from framescope._aws import aws_client, classify_aws_error
from framescope._panorama import (
    PANORAMA_FIELDS as _PANORAMA_FIELDS,
)
from framescope._panorama import (
    AutoIdentityData,
    AutoIdentityError,
    AutoIdentityFetcher,
    child_logger,
    deployed_instances,
)
from framescope._validation import check_positive_seconds
from framescope._waits import backoff_delay
from framescope.clock import SYSTEM_CLOCK, Clock, sleep_on
from framescope.delivery import FailureKind

__all__ = [
    "APP_INSTANCE_VARIABLE",
    "AutoIdentity",
    "AutoIdentityData",
    "AutoIdentityError",
    "AutoIdentityFetcher",
    "HostIdentity",
    "Identity",
    "container_id",
]

logger = logging.getLogger(__name__)


class Identity:
    """Named identity fields, each known or missing with a reason.

    Args:
        field_names: the fields, in the order reprs list them.
        default_dimensions: the fields :meth:`dimensions` uses when given none.

    Attributes:
        field_names: the fields.
        reasons: why each missing field is missing.
    """

    def __init__(self, field_names: tuple[str, ...], default_dimensions: tuple[str, ...]) -> None:
        self.field_names = field_names
        self.default_dimensions = default_dimensions
        self.reasons: dict[str, str] = {}

    def fields(self) -> dict[str, Any]:
        """Every field and its value (None when unknown)."""
        return {name: getattr(self, name, None) for name in self.field_names}

    def reason(self, field: str) -> str | None:
        """Why ``field`` is unknown, or None when it is known."""
        if field not in self.field_names:
            raise KeyError(f"{field!r} is not a field; fields are {', '.join(self.field_names)}")
        return self.reasons.get(field)

    def dimensions(self, *names: str) -> dict[str, str]:
        """``{field: str(value)}`` for the named fields that are known (default set if none).

        Unknown fields are left out, so the result is always valid as
        CloudWatch dimensions or Prometheus labels.
        """
        chosen = names or self.default_dimensions
        unknown = [name for name in chosen if name not in self.field_names]
        if unknown:
            raise KeyError(
                f"not fields: {', '.join(unknown)}; fields are {', '.join(self.field_names)}"
            )
        values = self.fields()
        return {name: str(values[name]) for name in chosen if values[name] not in (None, "")}

    def _missing(self, field: str, reason: str) -> None:
        setattr(self, field, None)
        self.reasons[field] = reason

    def __repr__(self) -> str:
        parts = " ".join(
            f'{name}="{value}"' if isinstance(value, str) else f"{name}={value!r}"
            for name, value in self.fields().items()
        )
        return f"<{type(self).__name__} {parts}>"


#: The environment variable in which Panorama gives an application its instance id.
APP_INSTANCE_VARIABLE = "AppGraph_Uid"


class AutoIdentity(Identity):
    """The identity of the AWS Panorama application instance this code runs in.

    The instance id comes from ``application_instance_id`` or the
    ``AppGraph_Uid`` environment variable that Panorama sets. The instance is
    then looked up with ``ListApplicationInstances`` (every page), retrying
    with back-off while the service is unreachable, throttles, the instance is
    not listed yet or its health is NOT_AVAILABLE, for at most ``timeout``
    seconds. The constructor never raises for a service problem: fields it
    could not learn are None and :attr:`reasons` says why. The IAM role needs
    ``panorama:ListApplicationInstances``.

    Example::

        identity = AutoIdentity(device_region="us-east-1")
        adapter = CloudWatchTimerAdapter("my_app", "frame_time", identity.dimensions())

    Args:
        device_region: the AWS region the device is registered in.
        application_instance_id: the instance id; ``AppGraph_Uid`` when None.
        test_utility: fill in dummy values and call no service (Backpack's
            switch for Panorama's Test Utility); the id is
            ``test_utility_app_instance_id + "_test_app"``.
        test_utility_app_instance_id: the application name in that mode.
        parent_logger: log as a child of this logger (``<parent>.AutoIdentity``).
        timeout: the longest the lookup may take, in seconds.
        retry_interval: the first wait between attempts (doubles, capped by the timeout).
        boto3_session: the boto3 session to use.
        endpoint_url: another Panorama endpoint (e.g. a local test server).
        client: an existing boto3 Panorama client to use.
        clock: the clock the retry waits and the timeout are measured on (a
            :class:`~framescope.clock.FakeClock` with ``autojump`` runs the
            retries in no real time).
    """

    FIELDS: ClassVar[tuple[str, ...]] = (
        "application_created_time",
        "application_description",
        "application_instance_id",
        "application_name",
        "application_status",
        "application_tags",
        "device_id",
        "device_name",
    )
    DEFAULT_DIMENSIONS: ClassVar[tuple[str, ...]] = ("application_name", "device_name")

    application_created_time: datetime.datetime | None
    application_description: str | None
    application_instance_id: str | None
    application_name: str | None
    application_status: str | None
    application_tags: dict[str, str] | None
    device_id: str | None
    device_name: str | None

    def __init__(
        self,
        device_region: str,
        application_instance_id: str | None = None,
        test_utility: bool = False,
        test_utility_app_instance_id: str | None = None,
        parent_logger: logging.Logger | None = None,
        *,
        timeout: float = 10.0,
        retry_interval: float = 0.5,
        boto3_session: Any = None,
        endpoint_url: str | None = None,
        client: Any = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(self.FIELDS, self.DEFAULT_DIMENSIONS)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._logger = child_logger(parent_logger, "AutoIdentity")
        if not isinstance(device_region, str) or not device_region:
            raise ValueError(f"device_region must be a non-empty str, got {device_region!r}")
        if application_instance_id is not None and not isinstance(application_instance_id, str):
            raise TypeError(
                "application_instance_id must be a str or None, "
                f"got {type(application_instance_id).__name__}"
            )
        self.device_region = device_region
        self.timeout = check_positive_seconds(timeout, "timeout")
        self.retry_interval = check_positive_seconds(retry_interval, "retry_interval")
        self.attempts = 0
        for field in _PANORAMA_FIELDS:
            setattr(self, field, None)
        if test_utility:
            self._fill_for_test_utility(test_utility_app_instance_id)
            return
        self.application_instance_id = application_instance_id or os.environ.get(
            APP_INSTANCE_VARIABLE
        )
        if not self.application_instance_id:
            reason = (
                "no application instance id: pass application_instance_id "
                "or set the AppGraph_Uid environment variable"
            )
            self._missing("application_instance_id", reason)
            self._give_up(reason)
            return
        self._client = client
        self._client_options = {"boto3_session": boto3_session, "endpoint_url": endpoint_url}
        self.refresh()

    def _fill_for_test_utility(self, name: str | None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("test_utility needs test_utility_app_instance_id (the app's name)")
        self.application_instance_id = self.application_name = f"{name}_test_app"
        self.device_id, self.device_name = "emulator", "test_utility_emulator"
        self.application_created_time = datetime.datetime.now(datetime.timezone.utc)
        self.application_status = "TEST_UTILITY"
        self.application_tags = {}
        self.application_description = self.application_name

    def _give_up(self, reason: str) -> None:
        """Give ``reason`` to every field still unknown; what was learned before stays."""
        self._logger.warning("AutoIdentity: %s", reason)  # as Backpack logs it
        for field in _PANORAMA_FIELDS:
            if getattr(self, field) is None:
                self._missing(field, reason)

    def _panorama(self) -> Any:
        if self._client is None:
            self._client = aws_client(
                "panorama",
                region=self.device_region,
                connect_timeout=min(5.0, self.timeout),
                read_timeout=min(10.0, self.timeout),
                **self._client_options,
            )
        return self._client

    def refresh(self, timeout: float | None = None) -> bool:
        """Look the instance up again, for at most ``timeout`` seconds.

        Returns True when this lookup found the instance healthy and every
        field is known. When it gives up, fields learned earlier keep their
        values (an instance whose health stayed NOT_AVAILABLE keeps its name,
        device ...); the fields still unknown get the reason.
        """
        if not self.application_instance_id:
            return False
        now = self.clock.monotonic_ns
        limit = self.timeout if timeout is None else check_positive_seconds(timeout, "timeout")
        deadline = now() + round(limit * 1e9)
        failures = 0
        while True:
            done, reason = self._attempt()
            if done:
                return reason is None and not self.reasons
            remaining = (deadline - now()) / 1e9
            if remaining <= 0:
                self._give_up(f"{reason} (gave up after {self.attempts} attempts)")
                return False
            failures += 1
            wait = backoff_delay(failures, self.retry_interval, remaining, jitter=0.0)
            self._logger.info("AutoIdentity: %s; retrying in %.2f s", reason, wait)
            sleep_on(self.clock, wait)

    def _attempt(self) -> tuple[bool, str | None]:
        """One lookup: (finished, reason). Unfinished: retry for that reason.

        Finished with a reason: a failure no retry can mend (recorded already).
        """
        self.attempts += 1
        try:
            panorama = self._panorama()
            instance = None
            seen = 0
            for seen, candidate in enumerate(deployed_instances(panorama), 1):  # noqa: B007
                if candidate.get("ApplicationInstanceId") == self.application_instance_id:
                    instance = candidate
                    break
        except ImportError as error:
            self._give_up(str(error))
            return True, str(error)
        except Exception as error:
            description = f"ListApplicationInstances failed: {type(error).__name__}: {error}"
            if _is_unknown_service(error):
                description = (
                    "this boto3 has no Panorama API (AWS removed it in botocore 1.43.38); "
                    "install boto3<=1.43.37"
                )
            elif classify_aws_error(error) is FailureKind.RETRY:
                return False, description
            self._give_up(description)
            return True, description
        if instance is None:
            return False, (
                f"application instance {self.application_instance_id!r} not found among "
                f"{seen} instances in {self.device_region}"
            )
        self._fill(instance)
        if instance.get("HealthStatus", "NOT_AVAILABLE") == "NOT_AVAILABLE":
            return False, "the application's HealthStatus is NOT_AVAILABLE"
        return True, None

    def _fill(self, instance: Mapping[str, Any]) -> None:
        self.reasons.clear()
        for field, key in _PANORAMA_FIELDS.items():
            if key in instance:
                setattr(self, field, instance[key])
            else:
                self._missing(field, f"ListApplicationInstances gave no {key}")


def _is_unknown_service(error: BaseException) -> bool:
    return type(error).__name__ == "UnknownServiceError"


_CONTAINER_ID = re.compile(r"([0-9a-f]{64})")


def container_id() -> tuple[str | None, str]:
    """The id of the container this process runs in, or (None, why not)."""
    for source in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        try:
            text = Path(source).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if "docker" in line or "containerd" in line or "kubepods" in line or "crio" in line:
                match = _CONTAINER_ID.search(line)
                if match:
                    return match.group(1), ""
    return None, "not running in a container (no container id in /proc/self/cgroup or mountinfo)"


class HostIdentity(Identity):
    """An identity that works anywhere: host, process, container, environment values.

    Fields: ``host_name``, ``process_id``, ``process_name``, ``container_id``
    (None outside a container, with the reason), and one field per entry of
    ``env``, read from that environment variable (None with the reason when
    it is unset).

    Example::

        identity = HostIdentity(env={"site": "SITE_ID"})
        CloudWatchTimerAdapter("my_app", "frame_time", identity.dimensions("host_name", "site"))

    Args:
        env: ``{field name: environment variable}`` for extra fields.
        dimensions: the fields :meth:`dimensions` uses by default
            (``host_name``, ``container_id`` and the ``env`` fields when None).
    """

    BASE_FIELDS: ClassVar[tuple[str, ...]] = (
        "host_name",
        "process_id",
        "process_name",
        "container_id",
    )

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        dimensions: tuple[str, ...] | None = None,
    ) -> None:
        extra = dict(env or {})
        for name, variable in extra.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"env keys must be identifiers (field names), got {name!r}")
            if name in self.BASE_FIELDS:
                raise ValueError(f"env key {name!r} clashes with a built-in field")
            if not isinstance(variable, str) or not variable:
                raise ValueError(f"env[{name!r}] must name an environment variable")
        super().__init__(
            (*self.BASE_FIELDS, *extra), dimensions or ("host_name", "container_id", *extra)
        )
        self.host_name: str | None = socket.gethostname() or None
        if self.host_name is None:
            self.reasons["host_name"] = "the system has no host name"
        self.process_id: int | None = os.getpid()
        self.process_name: str | None = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None
        if self.process_name is None:
            self.reasons["process_name"] = "sys.argv[0] is empty (interactive interpreter)"
        self.container_id: str | None
        self.container_id, why = container_id()
        if self.container_id is None:
            self.reasons["container_id"] = why
        for name, variable in extra.items():
            value = os.environ.get(variable)
            if value is None:
                self._missing(name, f"environment variable {variable} is not set")
            else:
                setattr(self, name, value)
        self.dimensions(*self.default_dimensions)  # a bad dimensions= fails here

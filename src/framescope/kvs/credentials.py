"""Credentials for KVSSpyGlass: Backpack's handler names, backed by boto3 sessions.

A handler gives the current credentials each time a PutMedia connection is
opened: static ones (:class:`KVSInlineCredentialsHandler`), the process
environment's (:class:`KVSEnvironmentCredentialsHandler`), or the role's
temporary ones (:class:`KVSFileCredentialsHandler`: the container or
instance role, refreshed by botocore before they expire). Secrets never
appear in a repr, a log line or an exception.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from framescope._optional import require

__all__ = [
    "Credentials",
    "KVSCredentialsHandler",
    "KVSEnvironmentCredentialsHandler",
    "KVSFileCredentialsHandler",
    "KVSInlineCredentialsHandler",
]

logger = logging.getLogger(__name__)


def _masked(key: str) -> str:
    return f"{key[:4]}...{key[-2:]}" if len(key) > 8 else "***"


@dataclass(frozen=True)
class Credentials:
    """One set of AWS credentials; ``expiry`` (UTC) is None for ones that do not expire."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expiry: datetime.datetime | None = None

    def __repr__(self) -> str:
        token = ", token=***" if self.token else ""
        return f"Credentials(access_key={_masked(self.access_key)!r}, secret_key=***{token})"

    def seconds_left(self, now: datetime.datetime | None = None) -> float | None:
        """Seconds until they expire (None: never)."""
        if self.expiry is None:
            return None
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (self.expiry - now).total_seconds()


class KVSCredentialsHandler:
    """Gives the current credentials of a boto3 session (the base of the handlers).

    Args:
        session: the boto3 session to read (default: one the handler makes).
        update_period, max_retries, parent_logger: accepted for code written
            for Backpack; botocore refreshes temporary credentials itself.
    """

    def __init__(
        self,
        *,
        session: Any = None,
        update_period: datetime.timedelta | None = None,
        max_retries: int | None = None,
        parent_logger: logging.Logger | None = None,
    ) -> None:
        self._session = session
        self.update_period = update_period
        self.max_retries = max_retries
        self.logger = parent_logger.getChild(type(self).__name__) if parent_logger else logger

    def boto3_session(self, region: str | None = None) -> Any:
        """The boto3 session the credentials come from (also used for the control plane)."""
        if self._session is None:
            boto3 = require("boto3", "kvs", "KVSSpyGlass")
            self._session = self._make_session(boto3, region)
        return self._session

    def _make_session(self, boto3: Any, region: str | None) -> Any:
        return boto3.Session(region_name=region)

    def credentials(self) -> Credentials:
        """The current credentials; RuntimeError (without secrets) when there are none."""
        found = self.boto3_session().get_credentials()
        if found is None:
            raise RuntimeError(f"{type(self).__name__}: no AWS credentials were found")
        frozen = found.get_frozen_credentials()  # refreshes temporary ones when due
        expiry = getattr(found, "_expiry_time", None)  # RefreshableCredentials keep it here
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class KVSInlineCredentialsHandler(KVSCredentialsHandler):
    """Static credentials given in code (for tests and development: prefer a role).

    Unlike Backpack's, the secret key is the secret key (Backpack's session
    used the key id for both).
    """

    def __init__(
        self,
        aws_access_key_id: str,
        aws_secret_access_key: str,
        aws_session_token: str | None = None,
        **options: Any,
    ) -> None:
        for name, value in (
            ("aws_access_key_id", aws_access_key_id),
            ("aws_secret_access_key", aws_secret_access_key),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str")
        super().__init__(**options)
        self._key_id = aws_access_key_id
        self._secret = aws_secret_access_key
        self._token = aws_session_token

    def _make_session(self, boto3: Any, region: str | None) -> Any:
        return boto3.Session(
            aws_access_key_id=self._key_id,
            aws_secret_access_key=self._secret,
            aws_session_token=self._token,
            region_name=region,
        )

    def __repr__(self) -> str:
        return f"KVSInlineCredentialsHandler(aws_access_key_id={_masked(self._key_id)!r})"


class KVSEnvironmentCredentialsHandler(KVSCredentialsHandler):
    """Credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``.

    Read from the environment each time they are needed, so a process that
    updates its environment is followed. Keys given here are put into the
    environment first (as Backpack's handler did for the GStreamer plugin).
    """

    def __init__(
        self,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        for name, value in (
            ("AWS_ACCESS_KEY_ID", aws_access_key_id),
            ("AWS_SECRET_ACCESS_KEY", aws_secret_access_key),
            ("AWS_SESSION_TOKEN", aws_session_token),
        ):
            if value is not None:
                os.environ[name] = value

    def credentials(self) -> Credentials:
        """The environment's credentials now."""
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            raise RuntimeError(
                "KVSEnvironmentCredentialsHandler: AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY must be set"
            )
        return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)

    def _make_session(self, boto3: Any, region: str | None) -> Any:
        found = self.credentials()
        return boto3.Session(
            aws_access_key_id=found.access_key,
            aws_secret_access_key=found.secret_key,
            aws_session_token=found.token,
            region_name=region,
        )


class KVSFileCredentialsHandler(KVSCredentialsHandler):
    """The role's temporary credentials (container, instance or profile), refreshed before expiry.

    Backpack's handler wrote them to a text file for the GStreamer plugin;
    nothing reads such a file any more, so ``credentials_path`` is accepted
    and not written.
    """

    def __init__(self, credentials_path: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.credentials_path = credentials_path

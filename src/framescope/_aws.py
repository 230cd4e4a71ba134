"""boto3 clients for framescope, and how their errors are classified for retries."""

from __future__ import annotations

from typing import Any

from framescope._optional import require
from framescope.delivery import FailureKind

__all__ = ["aws_client", "classify_aws_error"]

#: Error codes that mean "try again later": throttling, server trouble, credentials
#: that may be rotated or attached later.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceError",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def aws_client(
    service: str,
    *,
    region: str | None,
    boto3_session: Any = None,
    endpoint_url: str | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
) -> Any:
    """A boto3 client that makes one attempt per call (framescope does the retrying).

    Raises ValueError naming ``region`` when neither the argument, the session
    nor the environment gives a region.
    """
    boto3 = require("boto3", "aws", f"the AWS {service} client")
    botocore_config = require("botocore.config", "aws", f"the AWS {service} client")
    botocore_exceptions = require("botocore.exceptions", "aws", f"the AWS {service} client")
    session = boto3_session if boto3_session is not None else boto3.Session(region_name=region)
    config = botocore_config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    try:
        return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
    except botocore_exceptions.NoRegionError:
        raise ValueError(
            "region: no AWS region given and none configured "
            "(pass region=... or set AWS_DEFAULT_REGION)"
        ) from None


def classify_aws_error(error: BaseException) -> FailureKind:
    """RETRY for faults that may pass (network, throttling, credentials, 5xx), else REJECT."""
    exceptions = require("botocore.exceptions", "aws", "AWS error handling")
    if isinstance(error, exceptions.ClientError):
        response = error.response
        code = response.get("Error", {}).get("Code", "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in RETRYABLE_CODES or status == 429 or status >= 500:
            return FailureKind.RETRY
        return FailureKind.REJECT
    if isinstance(error, exceptions.ParamValidationError):
        return FailureKind.REJECT
    if isinstance(error, (exceptions.BotoCoreError, ConnectionError, TimeoutError)):
        # Connection refused or reset, timeouts, no or expired credentials.
        return FailureKind.RETRY
    return FailureKind.REJECT

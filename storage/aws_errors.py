"""Turns botocore's errors into the project's own, so none leaves storage/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import DependencyUnavailable, GhostEngineError

# Codes after which the same call may well succeed later: worth a retry.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "ResourceNotFoundException",  # a table not there (yet): the operator must provision it
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return exc.response.get("Error", {}).get("Code", "")


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    """Re-raise botocore errors from ``operation`` as DependencyUnavailable or GhostEngineError."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        details = {"service": service, "operation": operation, "awsCode": code}
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_CODES or status >= 500:
            raise DependencyUnavailable(f"{service} is unavailable ({code})", details=details) from exc
        raise GhostEngineError(f"{service} rejected {operation} ({code})", details=details) from exc
    except BotoCoreError as exc:
        # Connection refused, timeouts, bad endpoints: the service is not reachable.
        details = {"service": service, "operation": operation, "reason": type(exc).__name__}
        raise DependencyUnavailable(f"{service} is unreachable", details=details) from exc

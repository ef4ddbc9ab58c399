"""Turns botocore's errors into the project's own, so none leaves storage/.

Four failures an operator must tell apart get their own error (and code):
unreachable (connection refused, timeouts, 5xx), throttled, no credentials,
and credentials refused. The message names the service and says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from storage.errors import (
    AccessDenied,
    CredentialsMissing,
    DependencyThrottled,
    DependencyUnavailable,
    GhostEngineError,
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)

# Codes after which the same call may well succeed later: worth a retry.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "TransactionConflictException",
        "ResourceNotFoundException",  # a table not there (yet): the operator must provision it
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)

# The credentials were read but AWS refused them, or they lack a permission.
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "AuthorizationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)


# A DynamoDB Query refused because its index is not there yet: dropped and being built again (a
# change of its projection, docs/deploy.md "Upgrading") or still backfilling. Both pass within
# minutes, unlike any other ValidationException. The index's name ends the message.
INDEX_UNREADY = re.compile(r"(?:backfilling global secondary index|does not have the specified index): (\S+)")


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return exc.response.get("Error", {}).get("Code", "")


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    """Re-raise botocore errors from ``operation`` as the project's own (see storage/errors.py)."""
    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc, service, operation) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        details = {"service": service, "operation": operation, "reason": type(exc).__name__}
        raise CredentialsMissing(
            f"{service}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
            " or AWS_PROFILE; against the local emulator ENV=local supplies them)",
            details=details,
        ) from exc
    except BotoCoreError as exc:
        # Connection refused, timeouts, bad endpoints: the service is not reachable.
        details = {"service": service, "operation": operation, "reason": type(exc).__name__}
        raise DependencyUnavailable(f"{service} is unreachable", details=details) from exc


def transient(exc: BaseException) -> bool:
    """Whether the same AWS call may well succeed soon: throttled, unavailable, unreachable, timed out.

    Not a refusal for good (denied, missing credentials, a bad request), nor anything not from AWS.
    """
    if isinstance(exc, ClientError):
        return isinstance(from_client_error(exc, "aws", "?"), DependencyUnavailable)
    return isinstance(exc, BotoCoreError) and not isinstance(exc, (NoCredentialsError, PartialCredentialsError))


def from_client_error(exc: ClientError, service: str, operation: str) -> GhostEngineError:
    """The project's error for an error response from AWS."""
    code = error_code(exc)
    details = {"service": service, "operation": operation, "awsCode": code}
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_CODES or status == 429:
        return DependencyThrottled(f"{service} is throttling requests ({code})", details=details)
    if code in DENIED_CODES or status == 403:  # a HEAD's 403 has no body, so no code
        return AccessDenied(
            f"{service} refused the credentials or their permissions for {operation} ({code})", details=details
        )
    if code in TRANSIENT_CODES or status >= 500:
        return DependencyUnavailable(f"{service} is unavailable ({code})", details=details)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code == "ValidationException" and (unready := INDEX_UNREADY.search(message)):
        index = unready.group(1)
        return DependencyUnavailable(
            f"{service}: the index {index} is being built; try again shortly", details={**details, "index": index}
        )
    return GhostEngineError(f"{service} rejected {operation} ({code})", details=details)

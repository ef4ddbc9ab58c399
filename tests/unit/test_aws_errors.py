"""botocore's failures become four errors an operator can tell apart (storage/aws_errors.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from storage.aws_errors import translated
from storage.errors import (
    AccessDenied,
    CredentialsMissing,
    DependencyError,
    DependencyThrottled,
    DependencyUnavailable,
    GhostEngineError,
)


def client_error(code: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "AnOperation")


def raised(exc: Exception) -> GhostEngineError:
    with pytest.raises(GhostEngineError) as caught, translated("dynamodb", "UpdateItem"):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    "exc, kind, code, words",
    [
        (NoCredentialsError(), CredentialsMissing, "AWS_CREDENTIALS_MISSING", "no AWS credentials found"),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            CredentialsMissing,
            "AWS_CREDENTIALS_MISSING",
            "no AWS credentials found",
        ),
        (client_error("AccessDeniedException"), AccessDenied, "AWS_ACCESS_DENIED", "refused the credentials"),
        (client_error("UnrecognizedClientException"), AccessDenied, "AWS_ACCESS_DENIED", "refused the credentials"),
        (client_error("403", 403), AccessDenied, "AWS_ACCESS_DENIED", "refused the credentials"),
        (client_error("ThrottlingException"), DependencyThrottled, "DEPENDENCY_THROTTLED", "throttling"),
        (
            client_error("ProvisionedThroughputExceededException"),
            DependencyThrottled,
            "DEPENDENCY_THROTTLED",
            "throttling",
        ),
        (client_error("TooManyRequests", 429), DependencyThrottled, "DEPENDENCY_THROTTLED", "throttling"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            DependencyUnavailable,
            "DEPENDENCY_UNAVAILABLE",
            "unreachable",
        ),
        (
            ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
            DependencyUnavailable,
            "DEPENDENCY_UNAVAILABLE",
            "unreachable",
        ),
        (client_error("InternalServerError", 500), DependencyUnavailable, "DEPENDENCY_UNAVAILABLE", "unavailable"),
    ],
)
def test_each_kind_of_aws_failure_has_its_own_error_code_and_message(exc, kind, code, words):
    error = raised(exc)
    assert type(error) is kind and isinstance(error, DependencyError)
    assert error.code == code
    assert words in error.message and error.message.startswith("dynamodb")
    assert error.details["service"] == "dynamodb" and error.details["operation"] == "UpdateItem"


def test_only_unreachable_and_throttled_are_transient():
    """Celery retries DependencyUnavailable (celeryconfig.step_retry_policy); a missing or refused credential is not."""
    assert isinstance(raised(client_error("ThrottlingException")), DependencyUnavailable)
    assert not isinstance(raised(NoCredentialsError()), DependencyUnavailable)
    assert not isinstance(raised(client_error("AccessDenied")), DependencyUnavailable)


def test_any_other_refusal_is_a_plain_project_error_naming_the_code():
    error = raised(client_error("ValidationException"))
    assert type(error) is GhostEngineError and "ValidationException" in error.message

"""The project's own errors; adapters raise these ``from`` the vendor error.

    GhostEngineError
    ├── ConfigError                 settings missing or out of range (start-up)
    ├── JobNotFound                 no job with that id
    ├── JobExists                   a job with that id is already stored
    ├── IdempotencyKeyReused        an Idempotency-Key sent again with another body
    ├── InvalidTransition           the job's state does not allow the write
    │   ├── JobTerminal             the job is done, failed or cancelled
    │   └── AttemptsExhausted       a failed job that has used all its attempts
    ├── InvalidCursor               a listing cursor that we did not issue
    ├── ArtifactNotFound            no artifact under that key
    ├── ArtifactTooLarge            an artifact over the store's size limit
    ├── InvalidExport               an export file this code cannot import (format, version, content)
    ├── DependencyError             an AWS dependency failed the call
    │   ├── DependencyUnavailable   unreachable, timed out or a 5xx (transient)
    │   │   └── DependencyThrottled AWS throttled the call (transient)
    │   ├── CredentialsMissing      no AWS credentials were found (configuration)
    │   └── AccessDenied            the credentials were refused or lack a permission
    └── EnqueueFailed               the job's first message could not be sent

``api/`` maps each of these to one HTTP status; ``tasks/`` retries only
``DependencyUnavailable`` and fails the job on anything else.
"""

from __future__ import annotations

from typing import Any


class GhostEngineError(Exception):
    """Base of every error the project raises on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigError(GhostEngineError):
    code = "CONFIG_ERROR"


class JobNotFound(GhostEngineError):
    code = "JOB_NOT_FOUND"


class JobExists(GhostEngineError):
    code = "JOB_EXISTS"


class IdempotencyKeyReused(GhostEngineError):
    code = "IDEMPOTENCY_KEY_REUSED"


class InvalidTransition(GhostEngineError):
    code = "INVALID_TRANSITION"


class JobTerminal(InvalidTransition):
    code = "JOB_TERMINAL"


class AttemptsExhausted(InvalidTransition):
    code = "ATTEMPTS_EXHAUSTED"


class InvalidCursor(GhostEngineError):
    code = "INVALID_CURSOR"


class ArtifactNotFound(GhostEngineError):
    code = "ARTIFACT_NOT_FOUND"


class ArtifactTooLarge(GhostEngineError):
    code = "ARTIFACT_TOO_LARGE"


class InvalidExport(GhostEngineError):
    code = "INVALID_EXPORT"


class DependencyError(GhostEngineError):
    """DynamoDB, S3 or SQS failed a call; the subclass says why."""

    code = "DEPENDENCY_ERROR"


class DependencyUnavailable(DependencyError):
    code = "DEPENDENCY_UNAVAILABLE"


class DependencyThrottled(DependencyUnavailable):
    code = "DEPENDENCY_THROTTLED"


class CredentialsMissing(DependencyError):
    code = "AWS_CREDENTIALS_MISSING"


class AccessDenied(DependencyError):
    code = "AWS_ACCESS_DENIED"


class EnqueueFailed(GhostEngineError):
    code = "ENQUEUE_FAILED"

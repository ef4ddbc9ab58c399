"""The one place errors become HTTP responses: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from storage.errors import (
    ArtifactNotFound,
    DependencyError,
    EnqueueFailed,
    GhostEngineError,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidTransition,
    JobNotFound,
)
from tasks.logs import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 1

STATUS_FOR: dict[type[GhostEngineError], int] = {
    JobNotFound: 404,
    ArtifactNotFound: 404,
    IdempotencyKeyReused: 422,
    InvalidCursor: 400,
    InvalidTransition: 409,
    DependencyError: 503,  # unreachable, throttled, no credentials, access denied: each its own code
    EnqueueFailed: 503,
}


class ApiError(Exception):
    """A request the API refuses, with its status, code and message."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: dict | None = None):
    """A JSON error response."""
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(error=body), status


def register_error_handlers(app: Flask) -> None:
    """Map ApiError, the project's errors and werkzeug's HTTP errors to JSON."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(GhostEngineError)
    def _domain_error(exc: GhostEngineError):
        status = next((s for cls, s in STATUS_FOR.items() if isinstance(exc, cls)), 500)
        if status >= 500:
            log.error("request.dependency_error", code=exc.code, error=exc.message, details=exc.details)
        if status == 500:
            return error_response(500, "INTERNAL", "internal error; see the server log for this requestId")
        response, status = error_response(status, exc.code, exc.message, exc.details)
        if status == 503:
            # A dependency is down or throttling: worth a retry (with the same Idempotency-Key).
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").upper().replace(" ", "_")
        if exc.code == 413:
            message = f"request body is over the {app.config['MAX_CONTENT_LENGTH']}-byte limit"
        else:
            message = exc.description or exc.name
        response, status = error_response(exc.code or 500, code, message)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("request.unhandled")
        return error_response(500, "INTERNAL", "internal error; see the server log for this requestId")

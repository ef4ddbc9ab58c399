"""The ghost-engine CLI's HTTP client, and the failures that end a command with its exit code."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
import requests

BACKOFF_SECONDS = (0.5, 5.0)  # the first and the longest pause before a transient failure is tried again

EXIT_JOB_FAILED = 1
EXIT_USAGE_OR_CONNECTION = 2
EXIT_REFUSED = 3
EXIT_NOT_SAVED = 4
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141


class CliError(click.ClickException):
    """A failure that ends the command with its exit code (the module docstring's), 2 unless a subclass says;
    ``code`` names it in --json's ``{"error": {"code": ..., "message": ...}}``."""

    exit_code = EXIT_USAGE_OR_CONNECTION
    code = "FAILED"


class Unreachable(CliError):
    """The API could not be reached, timed out, or answered 5xx or 429: nothing was decided, worth another try."""

    code = "UNREACHABLE"


class NotTheApi(CliError):
    """The URL answered, but not as the ghost-engine API does (JSON): --api is likely wrong (exit 2)."""

    code = "NOT_THE_API"


class GaveUp(CliError):
    """--wait stopped at --timeout; the job goes on (exit 2)."""

    code = "GAVE_UP"


class Refused(CliError):
    """The API answered 4xx: it understood and said no (exit 3); ``code`` is the API's, such as JOB_NOT_FOUND."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotSaved(CliError):
    """The job is done, but --out could not be written (exit 4)."""

    exit_code = EXIT_NOT_SAVED
    code = "NOT_SAVED"


class Interrupted(CliError):
    """Ctrl-C while waiting: the job goes on (exit 130)."""

    exit_code = EXIT_INTERRUPTED
    code = "INTERRUPTED"


def error_message(body: Any) -> str | None:
    """``CODE: message`` of an API error body, with what each refused field must be (the API's words)."""
    try:
        error = body["error"]
        message = f"{error['code']}: {error['message']}"
    except (KeyError, TypeError):
        return None
    fields = (error.get("details") or {}).get("fields") if isinstance(error.get("details"), dict) else None
    if isinstance(fields, dict) and fields:
        said = "; ".join(f"{name}: {_words(why)}" for name, why in sorted(fields.items(), key=lambda kv: str(kv[0])))
        message = f"{message} ({said})"
    return message


def _words(why: Any) -> str:
    if isinstance(why, list):
        return " ".join(_words(item) for item in why)
    if isinstance(why, dict):
        return "; ".join(f"{name}: {_words(inner)}" for name, inner in why.items())
    return str(why)


class ApiClient:
    """The few HTTP calls the CLI makes, with errors turned into one-line messages."""

    def __init__(
        self, base_url: str, token: str | None, timeout: float = 15, note: Callable[[str], None] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.note = note or (lambda _text: None)  # says, once a call, that a failure is tried again
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        *,
        operator: bool = False,
        headers: dict[str, str | bytes] | None = None,
        retry_until: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """The JSON answer; with ``retry_until`` (a time.monotonic() value) a transient failure
        (Unreachable) is tried again after a growing pause until then, with one ``note``."""
        headers = dict(headers or {})
        if operator:
            if not self.token:
                raise click.UsageError("this command needs --token or INTERNAL_TOKEN")
            headers["X-INTERNAL-TOKEN"] = self.token
        pause, noted = BACKOFF_SECONDS[0], False
        while True:
            try:
                return self._call_once(method, path, headers, **kwargs)
            except Unreachable as exc:
                left = (retry_until or 0.0) - time.monotonic()
                if retry_until is None or left <= 0:
                    raise
                if not noted:
                    self.note(f"{exc.message}; trying again")
                    noted = True
                time.sleep(min(pause, left))
                pause = min(pause * 2, BACKOFF_SECONDS[1])

    def _call_once(self, method: str, path: str, headers: dict[str, str | bytes], **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise Unreachable(f"cannot reach the API at {self.base_url}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise CliError(f"cannot call the API at {self.base_url}: {type(exc).__name__}: {exc}") from None
        try:
            body, is_json = (response.json() if response.content else None), True
        except ValueError:
            body, is_json = None, False
        code = response.status_code
        if code >= 500 or code == 429:
            raise Unreachable(f"{method} {path} failed: {error_message(body) or f'HTTP {code}'}")
        if code >= 400 and isinstance(body, dict) and (said := error_message(body)):
            raise Refused(f"{method} {path} failed: {said}", code=body["error"]["code"])
        if code >= 400 or not is_json:
            kind = response.headers.get("Content-Type") or "no Content-Type"
            raise NotTheApi(
                f"{response.url or url} answered HTTP {code} ({kind}), not the JSON of the ghost-engine API: "
                "is --api (or GHOST_API_URL) right?"
            )
        return body

    def download(self, url: str) -> bytes:
        target = url if url.startswith("http") else f"{self.base_url}{url}"
        try:
            response = self.session.get(target, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise Unreachable(f"cannot download an artifact: {type(exc).__name__}") from None
        return response.content

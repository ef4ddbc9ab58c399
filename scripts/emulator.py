"""moto's server, with DynamoDB writes made atomic as they are on AWS, and a few other flaws mended.

    python scripts/emulator.py --port 4566

moto serves each request on its own thread and evaluates a condition
expression and applies the write without a lock, so two concurrent
conditional writes to one item can both pass their condition — something
DynamoDB never allows. Conditional writes are what this project's guarantees
rest on, so the local stack serialises DynamoDB requests (and only those: SQS
long polls must not wait behind each other).

And moto 5.2 checks each message a receive returns against the queue's
retention period by computing every queue attribute, counting every message
in the queue three times: a receive costs O(messages²), and with a few hundred
jobs queued the emulator spent most of its time there (the load test measured
moto, not ghost-engine). The check reads the one attribute it needs instead.
Likewise moto lists its own package directory, under a lock, on every request
to learn its service names; they are listed once. And its request recorder
(MOTO_ENABLE_RECORDING, which the job-cost test and `make bench` read) appends
each request to its file without a lock, so two requests served at once could
interleave their lines, and with no clock; it now records one at a time, with
when each request came and when its answer went (TimedRecorder). Everything
else is moto as is.

With --state-file, the state is loaded from that file at start and saved to it
at stop (scripts/emulator_state.py): `make run` keeps its jobs across restarts.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time."""

    def __init__(self, app) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # Materialise the body inside the lock: the write happens while it is built.
            return list(self._app(environ, start_response))


def read_only_the_retention_period() -> None:
    """Replace moto's retention check with one that reads the retention period alone (same answer)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name, message) -> bool:
        retention_seconds = self.get_queue(queue_name).message_retention_period
        return retention_seconds + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def list_services_once() -> None:
    """moto's service names, from its package directory, read once rather than on every request."""
    from moto import backends

    names = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: names


class TimedRecorder:
    """WSGI middleware: moto's request recorder, one line per request with when it came and went.

        moto appends each request to its file as it arrives, without a lock (two requests served at
        once could interleave their lines) and without a clock. Here moto's recorder keeps its
        switch and its endpoints (``/moto-api/recorder/...``), and this middleware writes the lines:
        one per request once its answer is built, one at a time, in moto's format (headers, method,
        url, body) plus ``startedAt`` and ``endedAt`` (epoch seconds, this process's clock), the
        answer's ``status`` and ``responseBytes``, and for a receive the ``receipts`` of the messages it
    returned —
        what `make bench` needs to find a job's critical path (scripts/aws_requests.py).
    """

    def __init__(self, app) -> None:
        from moto.moto_api._internal.recorder.models import Recorder

        self._app = app
        self._lock = threading.Lock()
        Recorder._record_request = lambda recorder, request, body=None: None  # written here instead

    def __call__(self, environ, start_response):
        from moto.moto_api import recorder

        if environ.get("PATH_INFO", "").startswith("/moto-api/"):
            return self._app(environ, start_response)
        # Every request is read here, recorded or not: a long poll that began before the
        # recording and ends during it (its answer the message a step waited for) is recorded.
        started = time.time()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request_body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(request_body)
        status: list[str] = []

        def start(status_line, headers, exc_info=None):
            status.append(status_line)
            return start_response(status_line, headers, exc_info)

        body = list(self._app(environ, start))
        if not recorder._user_enabled:
            return body
        answer = b"".join(body)
        entry = {
            "headers": _headers(environ),
            "method": environ["REQUEST_METHOD"],
            "url": _raw_url(environ),
            "body": base64.b64encode(request_body).decode("ascii"),
            "body_encoded": True,
            "startedAt": started,
            "endedAt": time.time(),
            "status": int(status[0].split()[0]) if status else 0,
            "responseBytes": len(answer),
            "receipts": [handle.decode() for handle in _RECEIPT.findall(answer)],
        }
        with self._lock, open(recorder._location, "a+") as file:
            file.write(json.dumps(entry) + "\n")
        return body


_RECEIPT = re.compile(rb'(?:"ReceiptHandle"\s*:\s*"|<ReceiptHandle>)([^"<]+)')


def _headers(environ) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    return headers


def _raw_url(environ) -> str:
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not path:
        path = quote(environ.get("PATH_INFO", "")) + (
            f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
        )
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}{path}"


def main(wrap=None) -> None:
    """Serve moto on loopback until SIGINT or SIGTERM; ``wrap`` adds one more WSGI middleware."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="Load the state from this file at start (if there) and save it there at stop.",
    )
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs (SQS queues) from it
    read_only_the_retention_period()
    list_services_once()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(0))
    if args.state_file is not None:
        _load_state(args.state_file)
    app = TimedRecorder(AtomicDynamoDB(DomainDispatcherApplication(create_backend_app)))
    try:
        run_simple(args.host, args.port, wrap(app) if wrap else app, threaded=True, request_handler=MotoRequestHandler)
    finally:
        if args.state_file is not None:
            _save_state(args.state_file)


def _load_state(path: Path) -> None:
    import emulator_state

    if not path.exists():
        print(f"emulator: no saved state at {path}: starting empty", file=sys.stderr, flush=True)
        return
    try:
        count = emulator_state.load(path)
    except ValueError as exc:
        print(f"emulator: {exc}: starting empty", file=sys.stderr, flush=True)
        return
    print(f"emulator: loaded {count} backends from {path}", file=sys.stderr, flush=True)


def _save_state(path: Path) -> None:
    import emulator_state

    started = time.monotonic()
    count = emulator_state.save(path)
    print(
        f"emulator: saved {count} backends to {path} in {time.monotonic() - started:.2f} s", file=sys.stderr, flush=True
    )


if __name__ == "__main__":
    main()

"""The Flask API (``gunicorn 'api:create_app()'``)."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, g, jsonify, request

from api import internal, routes
from api.console import register_console
from api.errors import register_error_handlers
from api.openapi import build_spec
from storage.bootstrap import Services, build_services
from tasks import logs, metrics
from tasks.dispatch import Enqueue, send_chain

MAX_BODY_BYTES = 64 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=([A-Za-z0-9-]{1,64})")

log = logs.get_logger("api")


def create_app(services: Services | None = None, enqueue: Enqueue | None = None) -> Flask:
    """Build the app; ``services`` and ``enqueue`` default to the real ones from the environment."""
    services = services or build_services()
    if not logs.is_configured():
        logs.configure_logging("api", services.settings.log_level)
    metrics.configure(services.settings.metrics_namespace)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # app.json is Flask's DefaultJSONProvider, which has both; the base class does not declare them.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # as above
    app.extensions["ghost_engine"] = {"services": services, "enqueue": enqueue or send_chain}
    app.register_blueprint(routes.bp)
    app.register_blueprint(internal.bp)
    app.register_blueprint(internal.operators)
    register_console(app)
    register_error_handlers(app)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    spec = build_spec(app)
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(spec))
    return app


def request_id_from(headers) -> str:
    """X-Request-Id if well formed, else the Root of X-Amzn-Trace-Id, else a new id."""
    given = headers.get("X-Request-Id", "")
    if _REQUEST_ID.match(given):
        return given
    trace = _TRACE_ROOT.search(headers.get("X-Amzn-Trace-Id", ""))
    return trace.group(1) if trace else uuid.uuid4().hex


def _start_request() -> None:
    g.started = time.monotonic()
    g.request_id = request_id_from(request.headers)
    request.environ["ghost_engine.request_id"] = g.request_id
    logs.clear()
    logs.bind(requestId=g.request_id, jobId=(request.view_args or {}).get("job_id"))


def _finish_request(response):
    response.headers["X-Request-Id"] = g.get("request_id", "")
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        durationMs=int((time.monotonic() - g.get("started", time.monotonic())) * 1000),
    )
    return response

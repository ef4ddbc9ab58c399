"""The HTTP endpoints: validate, call storage or dispatch, shape the response."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

import pipeline
from api import presenters
from api.errors import ApiError
from api.schemas import GenerateSceneRequest, ListJobsQuery
from storage.bootstrap import Services
from storage.errors import (
    AccessDenied,
    CredentialsMissing,
    DependencyThrottled,
    DependencyUnavailable,
    GhostEngineError,
)
from storage.model import JobState, is_job_id
from tasks.artifacts import ARTIFACT_NAMES, BY_NAME, CONTENT_TYPES
from tasks.checkpoints import artifact_key
from tasks.dispatch import submit_job
from tasks.runner import lease_seconds

bp = Blueprint("jobs", __name__)

FAULT_DRILL_HEADER = "X-Fault-Drill"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Printable ASCII but the comma: a server joins a header sent twice with one ("k1,k2"), which
# would make a key neither request named.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,255}")
JOB_ID_RULE = (
    "a job id is a version-4 UUID in lower case, xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx with N one of 8, 9, a, b "
    "(as the API issues them; the nil UUID is not one)"
)


def services() -> Services:
    return current_app.extensions["ghost_engine"]["services"]


def load(schema: Schema, data: Any) -> dict:
    if not isinstance(data, Mapping):
        # marshmallow would name this "_schema", a name of its own insides.
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "the body must be a JSON object",
            {"fields": {"body": [f"Expected a JSON object, got {_json_type(data)}."]}},
        )
    try:
        return schema.load(data)
    except ValidationError as exc:
        fields = ", ".join(sorted(str(name) for name in exc.messages)) if isinstance(exc.messages, dict) else ""
        raise ApiError(422, "VALIDATION_ERROR", f"invalid {fields or 'request'}", {"fields": exc.messages}) from None


def json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH turns an oversized body into a 413 here
    _refuse_a_body_cut_short(raw)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "MALFORMED_JSON", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "MALFORMED_JSON", "the body is nested too deeply") from None
    # JSON can spell lone surrogates ("\ud800") that no store, log or response can encode.
    if not _encodable(data):
        entries = data.items() if isinstance(data, dict) else [("body", data)]
        bad = {
            _printable(key): ["Contains a lone surrogate, which is not valid Unicode."]
            for key, value in entries
            if not (_encodable(key) and _encodable(value))
        }
        raise ApiError(422, "VALIDATION_ERROR", f"invalid {', '.join(sorted(bad))}", {"fields": bad})
    return data


def _refuse_a_body_cut_short(raw: bytes) -> None:
    """A body of unknown length (chunked) over MAX_CONTENT_LENGTH is 413, as one that says its length.

    For such a body werkzeug reads up to the limit and stops there without a word (its LimitedStream
    raises only on a read past the limit, which its readall does not make): what came through is
    the body's first 64 KiB. One byte more from the server's stream tells the two apart.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (list, "an array"), (str, "a string"), (int | float, "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def job_id_from(value: str) -> str:
    if not is_job_id(value):
        raise ApiError(400, "INVALID_JOB_ID", JOB_ID_RULE, {"jobId": value[:64]})
    return value


def _fault_drill() -> str | None:
    drill = request.headers.get(FAULT_DRILL_HEADER)
    if drill is None:
        return None
    if not services().settings.fault_drills:
        raise ApiError(400, "FAULT_DRILLS_DISABLED", f"{FAULT_DRILL_HEADER} needs FAULT_DRILLS=1 on the server")
    kind, _, step = drill.partition(":")
    if kind not in {"fail", "slow"} or step not in pipeline.STEPS:
        raise ApiError(
            422,
            "INVALID_FAULT_DRILL",
            f"{FAULT_DRILL_HEADER} is fail:<step> or slow:<step>, step one of {', '.join(pipeline.STEPS)}",
        )
    return drill


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            f"{IDEMPOTENCY_HEADER} is one header of 1-255 printable ASCII characters, no comma",
        )
    return key


@bp.post("/generate-scene")
def generate_scene():
    """Accept a job; 202 with its id and status URL."""
    if request.args:
        # ?seed=5 was ignored, and the job given a random seed: the fields are the body's alone.
        unread = {name: ["Not read from the query string: send it in the JSON body."] for name in request.args}
        raise ApiError(422, "VALIDATION_ERROR", f"invalid {', '.join(sorted(unread))}", {"fields": unread})
    body = load(GenerateSceneRequest(), json_body())
    current = services()
    job, replayed = submit_job(
        current.jobs,
        body,
        ttl_days=current.settings.job_ttl_days,
        request_id=request.environ.get("ghost_engine.request_id"),
        fault_drill=_fault_drill(),
        idempotency_key=_idempotency_key(),
        enqueue=current_app.extensions["ghost_engine"]["enqueue"],
        # The item hands the first step its lease: no claim on the job's first hop.
        lease_seconds=lease_seconds(current.settings),
    )
    url = presenters.status_url(job.job_id)
    response = jsonify(
        jobId=job.job_id, statusUrl=url, seed=job.request["seed"], style=job.request["style"], state=job.state.value
    )
    response.headers["Location"] = url
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


@bp.get("/status/<job_id>")
def get_status(job_id: str):
    """A job's state, steps, progress, and its artifacts once done."""
    current = services()
    return jsonify(presenters.job_status(current.jobs.get(job_id_from(job_id)), current))


@bp.get("/jobs")
def list_jobs():
    """Jobs newest first, a page at a time."""
    query = load(ListJobsQuery(), request.args.to_dict())
    state = JobState(query["state"]) if query["state"] else None
    page = services().jobs.list_jobs(limit=query["limit"], cursor=query["cursor"], state=state)
    return jsonify(jobs=[presenters.job_summary(job) for job in page.jobs], nextCursor=page.cursor)


@bp.get("/jobs/<job_id>/artifacts/<name>")
def get_artifact(job_id: str, name: str):
    """Redirect to a presigned URL of an artifact, or (demo mode) serve its bytes."""
    current = services()
    job = current.jobs.get(job_id_from(job_id))
    if name not in ARTIFACT_NAMES:
        raise ApiError(404, "ARTIFACT_NOT_FOUND", f"artifacts are {', '.join(ARTIFACT_NAMES)}")
    if job.state is not JobState.DONE:
        raise ApiError(409, "JOB_NOT_DONE", f"job is {job.state.value}; artifacts exist once it is done")
    if name in BY_NAME and BY_NAME[name].field not in job.result_keys:
        raise ApiError(404, "ARTIFACT_NOT_FOUND", f"this job has no {name}")
    key = artifact_key(job_id, name)
    url = current.artifacts.url_for(key, expires_in=current.settings.presign_ttl_seconds)
    if url is not None:
        return redirect(url, code=302)
    return current.artifacts.get(key), 200, {"Content-Type": CONTENT_TYPES[name]}


@bp.get("/healthz")
def healthz():
    """Liveness: the process serves requests. Dependencies are checked by /readyz."""
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz():
    """Readiness: DynamoDB, the artifact store and SQS answer; 503 naming the ones that do not, and why."""
    current = services()
    probes = {"dynamodb": current.jobs.check, "artifacts": current.artifacts.check}
    if current.queue is not None:
        probes["sqs"] = current.queue.check
    # In parallel, so a dead dependency costs one timeout, not one per probe.
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
    failures = {name: exc for name, future in futures.items() if (exc := future.exception()) is not None}
    checks = {name: "ok" if name not in failures else _check_state(failures[name]) for name in probes}
    if failures:
        reasons = "; ".join(f"{name}: {_reason(exc)}" for name, exc in sorted(failures.items()))
        problems = {name: _problem(exc) for name, exc in failures.items()}
        raise ApiError(503, "DEPENDENCY_UNAVAILABLE", f"not ready: {reasons}", {"checks": checks, "problems": problems})
    return jsonify(ok=True, checks=checks)


# What /readyz reports per dependency, by the kind of failure (storage/errors.py).
_CHECK_STATES = {
    CredentialsMissing: "credentials-missing",
    AccessDenied: "access-denied",
    DependencyThrottled: "throttled",
    DependencyUnavailable: "unavailable",
}


def _check_state(exc: BaseException) -> str:
    return next((state for kind, state in _CHECK_STATES.items() if isinstance(exc, kind)), "error")


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, GhostEngineError) else type(exc).__name__


def _problem(exc: BaseException) -> dict:
    code = exc.code if isinstance(exc, GhostEngineError) else "INTERNAL"
    return {"code": code, "message": _reason(exc)}

"""Endpoints for operators and for workers outside Celery, behind X-INTERNAL-TOKEN."""

from __future__ import annotations

import hmac
import unicodedata

from flask import Blueprint, current_app, jsonify, request

import pipeline
from api import presenters
from api.errors import ApiError
from api.routes import job_id_from, json_body, load, services
from api.schemas import OperatorAction, StepEventRequest
from storage.model import JobError, RecordOutcome, StepEvent, StepStatus, step_id
from tasks import dispatch

bp = Blueprint("internal", __name__, url_prefix="/internal")
operators = Blueprint("operators", __name__)

TOKEN_HEADER = "X-INTERNAL-TOKEN"  # noqa: S105 - the header's name, not a secret


def _require_token() -> None:
    expected = current_app.extensions["ghost_engine"]["services"].settings.internal_token
    given = request.headers.get(TOKEN_HEADER, "")
    # Fail closed: with no token configured nobody gets in. compare_digest takes
    # the same time wherever the strings differ, so timing reveals nothing.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "UNAUTHORIZED", f"a valid {TOKEN_HEADER} header is required")


bp.before_request(_require_token)
operators.before_request(_require_token)


@bp.post("/jobs/<job_id>/step")
def record_step(job_id: str):
    """Record a step event once per stepId: 201 recorded, 200 duplicate, 409 job terminal.

    What an event means (docs/reliability.md): ``ok`` counts the step as done — a worker that later
    needs its output recomputes it (the pipeline is deterministic); ``error`` records the step and
    fails the job with the event's error, in one write. Whichever record of a stepId comes first
    wins; a later or duplicate event for it changes nothing.
    """
    job_id = job_id_from(job_id)
    body = load(StepEventRequest(), json_body())
    current = services()
    attempt = current.jobs.get(job_id).attempt
    expected = step_id(job_id, body["name"], attempt)
    if body["stepId"] != expected:
        raise ApiError(422, "VALIDATION_ERROR", "invalid stepId", {"fields": {"stepId": [f"must be {expected}"]}})
    event = StepEvent(
        step_id=body["stepId"],
        name=body["name"],
        started_at=body["startedAt"],
        ended_at=body["endedAt"],
        duration_ms=body["durationMs"],
        summary=body["summary"],
        status=StepStatus(body["status"]),
    )
    error = _event_error(body) if event.status is StepStatus.ERROR else None
    outcome = current.jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS), error=error)
    if outcome is RecordOutcome.TERMINAL:
        raise ApiError(409, "JOB_TERMINAL", "the job is already terminal; the step was not recorded", {"jobId": job_id})
    status = 201 if outcome is RecordOutcome.RECORDED else 200
    return jsonify(jobId=job_id, stepId=event.step_id, outcome=outcome.value), status


def _event_error(body: dict) -> JobError:
    """The error a step event fails its job with; a bare error event gets STEP_FAILED and its summary."""
    given = body.get("error")
    if given:
        return JobError(given["message"], given["code"], {"step": body["name"], **given["details"]})
    message = body["summary"] or f"{body['name']} failed (reported by a step event)"
    return JobError(message, "STEP_FAILED", {"step": body["name"]})


def _reason(header: str, default: str) -> str:
    """An operator's reason: its header, or "reason" in a JSON body (OperatorAction), not both.

    A body is optional (the usual action has none) and holds any Unicode, which is what a browser
    can send: its fetch refuses a header with a character beyond latin-1. The header's clients send
    UTF-8 (curl, requests, the CLI), which WSGI hands over as latin-1 text, so it is read back as
    UTF-8, and as latin-1 only when it is not UTF-8 (a browser sends "é" as one byte). No control
    characters in either: 400 naming the header, 422 naming the field.
    """
    raw = request.headers.get(header, "").strip()
    try:
        reason = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        reason = raw
    if _has_control(reason):
        raise ApiError(400, "INVALID_HEADER", f"{header} may not hold control characters", {"header": header})
    body = _action_body()
    if body.get("reason") is None:
        return reason or default
    if reason:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"invalid reason: give it once, in {header} or in the body",
            {"fields": {"reason": [f"Given in the body and in {header}: send one."]}},
        )
    if _has_control(body["reason"]):
        raise ApiError(
            422, "VALIDATION_ERROR", "invalid reason", {"fields": {"reason": ["May not hold control characters."]}}
        )
    return body["reason"] or default


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def _action_body() -> dict:
    """An operator action's JSON body (OperatorAction), {} when the request has none."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not request.content_length and not chunked:
        return {}
    return load(OperatorAction(), json_body())  # 415 unless JSON, 400 malformed, 413 too large, 422 unknown fields


def _operator() -> str:
    """Who made an operator request, as recorded in the job's operator actions."""
    return f"api:{request.remote_addr or 'unknown'}"


@operators.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    """Cancel a job that has not ended: steps not started never run; one in flight changes nothing."""
    current = services()
    reason = _reason("X-Cancel-Reason", "cancelled through the API")
    # 409 (JobTerminal) once done or failed
    dispatch.cancel_job(current.jobs, job_id_from(job_id), by=_operator(), reason=reason)
    return jsonify(presenters.job_status(current.jobs.get(job_id), current))


@operators.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    """Re-run a failed job from its first incomplete step as a new attempt; 409 unless it is failed."""
    current = services()
    job = dispatch.retry_job(
        current.jobs,
        job_id_from(job_id),
        reason=_reason("X-Retry-Reason", "retried through the API"),
        by=_operator(),
        request_id=request.environ.get("ghost_engine.request_id"),
        enqueue=current_app.extensions["ghost_engine"]["enqueue"],
    )
    return jsonify(presenters.job_status(job, current)), 202

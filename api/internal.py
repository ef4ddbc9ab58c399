"""Endpoints for operators and workers outside Celery, behind X-INTERNAL-TOKEN."""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

import pipeline
from api.errors import ApiError
from api.routes import job_id_from, json_body, load, services
from api.schemas import StepEventRequest
from storage.model import RecordOutcome, StepEvent, StepStatus, step_id

bp = Blueprint("internal", __name__, url_prefix="/internal")

TOKEN_HEADER = "X-INTERNAL-TOKEN"


@bp.before_request
def _require_token() -> None:
    expected = current_app.extensions["ghost_engine"]["services"].settings.internal_token
    given = request.headers.get(TOKEN_HEADER, "")
    # Fail closed: with no token configured nobody gets in. compare_digest takes
    # the same time wherever the strings differ, so timing reveals nothing.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "UNAUTHORIZED", f"a valid {TOKEN_HEADER} header is required")


@bp.post("/jobs/<job_id>/step")
def record_step(job_id: str):
    """Record a step event once per stepId: 201 recorded, 200 duplicate, 409 job terminal."""
    job_id = job_id_from(job_id)
    body = load(StepEventRequest(), json_body())
    if body["stepId"] != step_id(job_id, body["name"]):
        raise ApiError(
            422, "VALIDATION_ERROR", "invalid stepId",
            {"fields": {"stepId": [f"must be {step_id(job_id, body['name'])}"]}},
        )
    event = StepEvent(
        step_id=body["stepId"],
        name=body["name"],
        started_at=body["startedAt"],
        ended_at=body["endedAt"],
        duration_ms=body["durationMs"],
        summary=body["summary"],
        status=StepStatus(body["status"]),
    )
    outcome = services().jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS))
    if outcome is RecordOutcome.TERMINAL:
        raise ApiError(409, "JOB_TERMINAL", "the job is already terminal; the step was not recorded", {"jobId": job_id})
    status = 201 if outcome is RecordOutcome.RECORDED else 200
    return jsonify(jobId=job_id, stepId=event.step_id, outcome=outcome.value), status

"""The HTTP endpoints: validate, call storage or dispatch, shape the response."""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, request
from marshmallow import Schema, ValidationError

import pipeline
from api import presenters
from api.errors import ApiError
from api.schemas import SEED_MAX, GenerateSceneRequest, ListJobsQuery
from storage.bootstrap import Services
from storage.model import is_job_id
from tasks.checkpoints import ARTIFACT_NAMES, CONTENT_TYPES, artifact_key
from tasks.dispatch import submit_job

bp = Blueprint("jobs", __name__)

FAULT_DRILL_HEADER = "X-Fault-Drill"


def _services() -> Services:
    return current_app.extensions["ghost_engine"]["services"]


def _load(schema: Schema, data: Any) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        fields = ", ".join(sorted(str(name) for name in exc.messages)) if isinstance(exc.messages, dict) else ""
        raise ApiError(422, "VALIDATION_ERROR", f"invalid {fields or 'request'}", {"fields": exc.messages}) from None


def _json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH turns an oversized body into a 413 here
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "MALFORMED_JSON", f"the body is not valid JSON: {exc}") from None


def _job_id(value: str) -> str:
    if not is_job_id(value):
        raise ApiError(400, "INVALID_JOB_ID", "a job id is a lower-case UUID, e.g. 3f0c…-…", {"jobId": value[:64]})
    return value


def _fault_drill() -> str | None:
    drill = request.headers.get(FAULT_DRILL_HEADER)
    if drill is None:
        return None
    if not _services().settings.fault_drills:
        raise ApiError(400, "FAULT_DRILLS_DISABLED", f"{FAULT_DRILL_HEADER} needs FAULT_DRILLS=1 on the server")
    kind, _, step = drill.partition(":")
    if kind not in {"fail", "slow"} or step not in pipeline.STEPS:
        raise ApiError(
            422,
            "INVALID_FAULT_DRILL",
            f"{FAULT_DRILL_HEADER} is fail:<step> or slow:<step>, step one of {', '.join(pipeline.STEPS)}",
        )
    return drill


@bp.post("/generate-scene")
def generate_scene():
    """Accept a job; 202 with its id and status URL."""
    body = _load(GenerateSceneRequest(), _json_body())
    if body["seed"] is None:
        body["seed"] = secrets.randbelow(SEED_MAX + 1)
    services = _services()
    job = submit_job(
        services.jobs,
        body,
        ttl_days=services.settings.job_ttl_days,
        request_id=request.environ.get("ghost_engine.request_id"),
        fault_drill=_fault_drill(),
        enqueue=current_app.extensions["ghost_engine"]["enqueue"],
    )
    url = presenters.status_url(job.job_id)
    response = jsonify(jobId=job.job_id, statusUrl=url, seed=body["seed"], style=body["style"], state=job.state.value)
    response.headers["Location"] = url
    return response, 202


@bp.get("/status/<job_id>")
def get_status(job_id: str):
    """A job's state, steps, progress, and its artifacts once done."""
    services = _services()
    return jsonify(presenters.job_status(services.jobs.get(_job_id(job_id)), services))


@bp.get("/jobs")
def list_jobs():
    """Jobs newest first, a page at a time."""
    query = _load(ListJobsQuery(), request.args.to_dict())
    page = _services().jobs.list_jobs(limit=query["limit"], cursor=query["cursor"])
    return jsonify(jobs=[presenters.job_summary(job) for job in page.jobs], nextCursor=page.cursor)


@bp.get("/jobs/<job_id>/artifacts/<name>")
def get_artifact(job_id: str, name: str):
    """Redirect to a presigned URL of an artifact, or (demo mode) serve its bytes."""
    services = _services()
    job = services.jobs.get(_job_id(job_id))
    if name not in ARTIFACT_NAMES:
        raise ApiError(404, "ARTIFACT_NOT_FOUND", f"artifacts are {', '.join(ARTIFACT_NAMES)}")
    if job.state.value != "done":
        raise ApiError(409, "JOB_NOT_DONE", f"job is {job.state.value}; artifacts exist once it is done")
    key = artifact_key(job_id, name)
    url = services.artifacts.url_for(key, expires_in=services.settings.presign_ttl_seconds)
    if url is not None:
        return redirect(url, code=302)
    return services.artifacts.get(key), 200, {"Content-Type": CONTENT_TYPES[name]}


@bp.get("/healthz")
def healthz():
    """Liveness: the process serves requests. Dependencies are not checked here."""
    return jsonify(ok=True)

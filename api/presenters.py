"""Shapes jobs into response bodies (status, listing)."""

from __future__ import annotations

import json

from flask import url_for

import pipeline
from storage.bootstrap import Services
from storage.model import Job, JobState, StepEvent
from tasks.artifacts import ARTIFACTS


def status_url(job_id: str) -> str:
    """The relative URL of a job's status."""
    return url_for("jobs.get_status", job_id=job_id)


def job_status(job: Job, services: Services) -> dict:
    """The body of GET /status/<jobId>."""
    return {
        "jobId": job.job_id,
        "state": job.state.value,
        "progress": round(job.progress, 6),
        "steps": [step.to_dict() for step in ordered_steps(job)],
        "result": job_result(job, services) if job.state is JobState.DONE else None,
        "error": job.error.to_dict() if job.error else None,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "request": job.request,
        "attempt": job.attempt,
        "attempts": list(job.attempts),
        "cancellation": job.cancellation,
    }


def ordered_steps(job: Job) -> list[StepEvent]:
    """The job's steps by attempt, then in pipeline order (events may arrive in any order)."""
    order = {name: index for index, name in enumerate(pipeline.STEPS)}
    # sorted() is stable: two records of one step in one attempt keep their arrival order.
    return sorted(job.steps, key=lambda step: (step.attempt, order.get(step.name, len(order))))


def job_result(job: Job, services: Services) -> dict:
    """Artifact keys and presigned URLs; in demo mode, text artifacts inlined and links to the rest."""
    result = {"summary": job.result_summary, "resultKey": job.result_keys.get("result", "")}
    ttl = services.settings.presign_ttl_seconds
    for artifact in ARTIFACTS:
        key = job.result_keys.get(artifact.field)
        if key is None:
            continue  # not made for this job (a job from before the artifact existed, or skipped)
        result[f"{artifact.field}Key"] = key
        url = services.artifacts.url_for(key, expires_in=ttl)
        if url is not None:
            result[f"{artifact.field}Url"] = url
            result["expiresIn"] = ttl
        elif artifact.inline == "json":
            result[artifact.field] = json.loads(services.artifacts.get(key))
        elif artifact.inline == "text":
            result[artifact.field] = services.artifacts.get(key).decode("utf-8")
        else:
            result[f"{artifact.field}Url"] = url_for("jobs.get_artifact", job_id=job.job_id, name=artifact.name)
    return result


def job_summary(job: Job) -> dict:
    """One entry of GET /jobs."""
    return {
        "jobId": job.job_id,
        "state": job.state.value,
        "progress": round(job.progress, 6),
        "promptPreview": job.prompt_preview,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "statusUrl": status_url(job.job_id),
    }

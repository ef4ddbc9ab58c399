"""Shapes jobs into response bodies (status, listing)."""

from __future__ import annotations

import json

from flask import url_for

import pipeline
from storage.bootstrap import Services
from storage.model import Job, JobState, StepEvent
from tasks.checkpoints import ASCII_MINIMAP, SCENE_GRAPH, artifact_key


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
    """Artifact keys plus presigned URLs, or (demo mode) the artifacts inlined."""
    scene_key = artifact_key(job.job_id, SCENE_GRAPH)
    minimap_key = artifact_key(job.job_id, ASCII_MINIMAP)
    result = {
        "summary": job.result_summary,
        "sceneGraphKey": scene_key,
        "asciiMinimapKey": minimap_key,
        "resultKey": job.result_keys.get("result", ""),
    }
    ttl = services.settings.presign_ttl_seconds
    scene_url = services.artifacts.url_for(scene_key, expires_in=ttl)
    if scene_url is not None:
        result["sceneGraphUrl"] = scene_url
        result["asciiMinimapUrl"] = services.artifacts.url_for(minimap_key, expires_in=ttl)
        result["expiresIn"] = ttl
    else:
        result["sceneGraph"] = json.loads(services.artifacts.get(scene_key))
        result["asciiMinimap"] = services.artifacts.get(minimap_key).decode("utf-8")
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

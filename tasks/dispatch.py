"""Submitting a job: write its item, then send its chain of step messages."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence

from celery import chain

import pipeline
from storage.errors import EnqueueFailed, GhostEngineError, IdempotencyKeyReused, JobExists
from storage.model import (
    Job,
    JobError,
    JobState,
    job_id_for_key,
    new_job_id,
    request_fingerprint,
    retry_record,
    utc_now,
)
from storage.ports import JobStore
from tasks import app, metrics
from tasks.logs import get_logger

log = get_logger(__name__)

# enqueue(job_id, request_id, *, steps=..., attempt=...): sends the job's chain.
Enqueue = Callable[..., None]


def send_chain(
    job_id: str, request_id: str | None, *, steps: Sequence[str] = pipeline.STEPS, attempt: int = 1
) -> None:
    """Send the job's chain: one immutable signature per step, carrying only ids.

    Signatures by name keep the API process from importing the step tasks.
    """
    kwargs: dict = {"request_id": request_id}
    if attempt > 1:
        kwargs["attempt"] = attempt
    signatures = [
        app.signature(f"tasks.steps.{step}", args=(job_id,), kwargs=kwargs, immutable=True) for step in steps
    ]
    try:
        chain(*signatures).apply_async()
    except Exception as exc:  # kombu and botocore raise many kinds; all mean "not sent"
        raise EnqueueFailed(
            f"could not send the job to the queue ({type(exc).__name__})", details={"jobId": job_id}
        ) from exc


def submit_job(
    jobs: JobStore,
    request: Mapping,
    *,
    ttl_days: int,
    request_id: str | None = None,
    fault_drill: str | None = None,
    idempotency_key: str | None = None,
    enqueue: Enqueue = send_chain,
) -> tuple[Job, bool]:
    """Create a queued job and enqueue it; (job, replayed).

    On a send failure the job ends failed, never stuck queued. With an
    idempotency key, a repeat of the same request returns the original job
    (replayed=True) and sends nothing; another request under the key raises
    IdempotencyKeyReused.
    """
    now = utc_now()
    # The fingerprint is of the request as sent, before a seed is chosen for it.
    fingerprint = request_fingerprint({**request, "faultDrill": fault_drill}) if idempotency_key else None
    if request.get("seed") is None:
        request = {**request, "seed": secrets.randbelow(pipeline.MAX_SEED + 1)}
    job = Job(
        job_id=job_id_for_key(idempotency_key) if idempotency_key else new_job_id(),
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
        request=dict(request),
        total_steps=len(pipeline.STEPS),
        ttl=int(time.time()) + ttl_days * 86400,
        fault_drill=fault_drill,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )
    try:
        # The item exists before any message: a worker never sees a job it cannot load.
        jobs.create(job)
    except JobExists:
        if idempotency_key is None:
            raise
        original = jobs.get(job.job_id)
        if original.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request", details={"jobId": original.job_id}
            ) from None
        log.info("job.replayed", jobId=original.job_id)
        return original, True
    _enqueue_or_fail(jobs, job.job_id, lambda: enqueue(job.job_id, request_id))
    log.info("job.queued", jobId=job.job_id)
    return job, False


def retry_job(
    jobs: JobStore,
    job_id: str,
    *,
    reason: str,
    by: str,
    request_id: str | None = None,
    enqueue: Enqueue = send_chain,
) -> Job:
    """Re-run a failed job from its first incomplete step, as a new attempt; the one exit from failed.

    Steps that completed keep their records and their checkpoints, so they are
    not run again; the steps of the new attempt get stepIds of their own.
    """
    job = jobs.get(job_id)
    first = first_incomplete_step(job)
    steps = pipeline.STEPS[pipeline.STEPS.index(first) :]
    attempt = job.attempt + 1
    jobs.mark_retry(
        job_id, attempt=retry_record(job_id, attempt=attempt, at=utc_now(), reason=reason, by=by, from_step=first)
    )
    _enqueue_or_fail(jobs, job_id, lambda: enqueue(job_id, request_id, steps=steps, attempt=attempt))
    log.info("job.retried", jobId=job_id, attempt=attempt, fromStep=first, by=by)
    return jobs.get(job_id)


def cancel_job(jobs: JobStore, job_id: str, *, by: str, reason: str) -> bool:
    """Cancel a job that has not ended, recording who and why; False if it already was cancelled.

    JobTerminal after done or failed.
    """
    changed = jobs.mark_cancelled(job_id, by=by, reason=reason)
    if changed:
        log.info("job.cancelled", jobId=job_id, by=by)
        metrics.job_cancelled(job_id)
    return changed


def first_incomplete_step(job: Job) -> str:
    """Where a retry of ``job`` starts.

    A job that failed after its last step (e.g. stalled before it was marked
    done) re-runs that step, which reuses its checkpoint and finishes the job.
    """
    done = set(job.completed_steps())
    return next((step for step in pipeline.STEPS if step not in done), pipeline.STEPS[-1])


def _enqueue_or_fail(jobs: JobStore, job_id: str, send: Callable[[], None]) -> None:
    """Send; if that fails, fail the job with ENQUEUE_FAILED (never leave it queued) and raise."""
    try:
        try:
            send()
        except EnqueueFailed:
            raise
        except Exception as exc:  # whatever the transport raised, the job was not sent
            raise EnqueueFailed(f"could not send the job ({type(exc).__name__})", details={"jobId": job_id}) from exc
    except EnqueueFailed as exc:
        log.error("job.enqueue_failed", jobId=job_id, error=exc.message)
        try:
            if jobs.mark_failed(job_id, JobError(exc.message, exc.code, exc.details)):
                metrics.job_failed(exc.code, job_id)
        except GhostEngineError:
            log.exception("job.enqueue_failed_unrecorded", jobId=job_id)
        raise

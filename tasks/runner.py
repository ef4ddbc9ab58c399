"""Runs one pipeline step of one job: load input, compute, checkpoint, record, hand on.

Everything here is written for at-least-once delivery: a step may run twice,
concurrently, or be killed half way, and the job item still ends correct,
because each write is conditional and keyed by the step's deterministic id.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import Enum

import pipeline
from storage.bootstrap import Services
from storage.errors import ArtifactNotFound, InvalidTransition, JobNotFound
from storage.model import ClaimOutcome, Job, JobError, JobState, RecordOutcome, StepEvent, StepStatus, step_id, utc_now
from tasks.artifacts import CONTENT_TYPES, write_artifacts
from tasks.checkpoints import RESULT, artifact_key, checkpoint_key
from tasks import metrics
from tasks.logs import get_logger

log = get_logger(__name__)

SLOW_DRILL_SECONDS = 5.0


class Next(Enum):
    """What the chain should do after a step."""

    CONTINUE = "continue"
    STOP = "stop"
    RETRY = "retry"  # another run holds the step's lease: deliver this message again later


# A lease outlives the step's hard time limit by this much, so it can only
# lapse once the run that took it has finished, failed or been killed.
LEASE_MARGIN_SECONDS = 5


class FaultDrill(Exception):
    """A failure injected on purpose (X-Fault-Drill), to rehearse failure handling."""


@dataclass(frozen=True)
class StepRun:
    next: Next
    outcome: str  # recorded | duplicate | terminal | held | missing
    retry_in: float = 0.0  # with RETRY: seconds until the other run's lease lapses


def run_step(services: Services, job_id: str, step: str, attempt: int = 1) -> StepRun:
    """Run ``step`` of ``attempt`` of ``job_id`` once in effect, however often it is delivered."""
    try:
        job = services.jobs.get(job_id)
    except JobNotFound:
        # A message for a job that does not exist can never succeed: drop it.
        log.error("step.job_missing", step=step)
        return StepRun(Next.STOP, "missing")
    if job.terminal:
        log.info("step.skipped_terminal", step=step, state=str(job.state))
        return StepRun(Next.STOP, "terminal")
    if job.attempt != attempt:
        # A message of an earlier attempt, delivered after an operator's retry.
        log.info("step.stale_attempt", step=step, attempt=attempt, current=job.attempt)
        return StepRun(Next.STOP, "stale")
    sid = step_id(job_id, step, attempt)
    if sid in job.step_ids:
        return _already_recorded(services, job, step)
    claim = services.jobs.claim_step(
        job_id,
        sid,
        owner=uuid.uuid4().hex,
        lease_seconds=services.settings.step_time_limit_seconds + LEASE_MARGIN_SECONDS,
    )
    if claim.outcome is ClaimOutcome.DUPLICATE:
        return _already_recorded(services, services.jobs.get(job_id), step)
    if claim.outcome is ClaimOutcome.TERMINAL:
        return StepRun(Next.STOP, "terminal")
    if claim.outcome is ClaimOutcome.HELD:
        # SQS handed this message out again while a run still computes the step
        # (visibility timeout ran out). Don't run it beside that run; look again
        # once its lease lapses — by then it is recorded, or its run is dead.
        retry_in = max(1.0, claim.expires_at_ms / 1000 - time.time() + 0.5)
        log.info("step.lease_held", step=step, retryIn=round(retry_in, 1))
        return StepRun(Next.RETRY, "held", retry_in)

    if job.state is JobState.QUEUED:
        services.jobs.mark_running(job_id)
    started_at, started = utc_now(), time.monotonic()
    summary = _compute(services, job, step)
    event = StepEvent(
        step_id=sid,
        name=step,
        started_at=started_at,
        ended_at=utc_now(),
        duration_ms=int((time.monotonic() - started) * 1000),
        summary=summary,
        status=StepStatus.OK,
    )
    outcome = services.jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS))
    log.info("step.recorded", step=step, outcome=str(outcome), durationMs=event.duration_ms)
    if outcome is RecordOutcome.RECORDED:
        metrics.step_succeeded(step, event.duration_ms, job_id)
    if outcome is RecordOutcome.TERMINAL:
        return StepRun(Next.STOP, str(outcome))
    if step == pipeline.STEPS[-1]:
        _finish(services, job)
    return StepRun(Next.CONTINUE, str(outcome))


def _already_recorded(services: Services, job: Job, step: str) -> StepRun:
    """A delivery of a step that is recorded: finish what its first run may have left undone."""
    log.info("step.already_recorded", step=step)
    index = pipeline.STEPS.index(step)
    if index == len(pipeline.STEPS) - 1:
        _finish(services, job)
        return StepRun(Next.STOP, "duplicate")
    if step_id(job.job_id, pipeline.STEPS[index + 1], job.attempt) in job.step_ids:
        # The chain already went past this step; sending its next message again would only
        # start a second tail of duplicates.
        return StepRun(Next.STOP, "duplicate")
    # The first run died after recording but before sending the next message: send it.
    return StepRun(Next.CONTINUE, "duplicate")


def fail_job(services: Services, job_id: str, step: str, error: JobError, attempt: int = 1) -> None:
    """Record the failed step and move the job to failed, keeping the steps done so far."""
    now = utc_now()
    event = StepEvent(
        step_id=step_id(job_id, step, attempt),
        name=step,
        started_at=now,
        ended_at=now,
        duration_ms=0,
        summary=error.message,
        status=StepStatus.ERROR,
    )
    try:
        services.jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS))
        moved = services.jobs.mark_failed(job_id, error)
    except JobNotFound:
        return
    log.error("job.failed", step=step, code=error.code, moved=moved, error=error.message)
    metrics.step_failed(step, error.code, job_id)
    if moved:
        metrics.job_failed(error.code, job_id)


def _compute(services: Services, job: Job, step: str) -> str:
    """The step's summary; its output is checkpointed, or read back if a run already wrote it."""
    key = checkpoint_key(job.job_id, step)
    try:
        # A run killed after its checkpoint but before its record left this
        # behind: the pipeline is deterministic, so reuse it, don't recompute.
        return json.loads(services.artifacts.get(key))["summary"]
    except ArtifactNotFound:
        pass
    _apply_drill(job, step)
    output = pipeline.run_step(step, _load_input(services, job, step))
    checkpoint = {"step": step, "summary": output.summary, "data": output.data}
    if step == pipeline.STEPS[-1]:
        written = write_artifacts(services.artifacts, job.job_id, output.data)
        checkpoint |= {"summary": written.summary(output.summary), "artifacts": written.keys}
    services.artifacts.put(key, pipeline.encode_json(checkpoint), CONTENT_TYPES[RESULT])
    return checkpoint["summary"]


def _load_input(services: Services, job: Job, step: str) -> dict:
    index = pipeline.STEPS.index(step)
    if index == 0:
        return dict(job.request)
    previous = checkpoint_key(job.job_id, pipeline.STEPS[index - 1])
    return json.loads(services.artifacts.get(previous))["data"]


def _apply_drill(job: Job, step: str) -> None:
    # Drills act in the first attempt only, so a retry shows the recovery.
    if not job.fault_drill or job.attempt > 1:
        return
    kind, _, target = job.fault_drill.partition(":")
    if target != step:
        return
    if kind == "fail":
        raise FaultDrill(f"fault drill: {step} failed on purpose")
    if kind == "slow":
        time.sleep(SLOW_DRILL_SECONDS)


def _finish(services: Services, job: Job) -> None:
    """Write result.json and mark the job done (both idempotent)."""
    final = json.loads(services.artifacts.get(checkpoint_key(job.job_id, pipeline.STEPS[-1])))
    # The artifacts the last step wrote, by result field (tasks/artifacts.py), then result.json.
    keys = {**final.get("artifacts", {}), "result": artifact_key(job.job_id, RESULT)}
    result = {
        "jobId": job.job_id,
        "request": job.request,
        "summary": final["summary"],
        "artifacts": {name: key for name, key in keys.items() if name != "result"},
        "metrics": final["data"]["sceneGraph"].get("metrics", {}),
    }
    services.artifacts.put(keys["result"], pipeline.encode_json(result), CONTENT_TYPES[RESULT])
    try:
        if services.jobs.mark_done(job.job_id, result_keys=keys, summary=final["summary"]):
            log.info("job.done", summary=final["summary"])
            metrics.job_succeeded(job.created_at, job.job_id)
    except InvalidTransition as exc:
        # Cancelled or failed while the last step ran: the terminal state stands.
        log.info("job.not_done", reason=exc.message)

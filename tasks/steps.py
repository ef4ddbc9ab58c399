"""The Celery tasks: one per pipeline step, each a thin shell around runner.run_step."""

from __future__ import annotations

import functools

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

import pipeline
from storage.bootstrap import Services, build_services
from storage.errors import DependencyError, GhostEngineError
from storage.model import JobError
from tasks import app, logs, metrics
from tasks.runner import FaultDrill, Next, fail_job, run_step

log = logs.get_logger(__name__)

# How often a delivery may find its step leased to another run before giving up
# (each wait lasts until that lease lapses, so a few suffice).
LEASE_RETRIES = 10


@functools.cache
def services() -> Services:
    """The worker process's stores, built on first use (after the prefork fork)."""
    built = build_services()
    metrics.configure(built.settings.metrics_namespace)
    return built


def job_error(step: str, exc: BaseException) -> JobError:
    """The stored error for a step that failed for good."""
    details = {"step": step}
    if isinstance(exc, GhostEngineError):
        return JobError(exc.message, exc.code, {**details, **exc.details})
    if isinstance(exc, FaultDrill):
        return JobError(str(exc), "FAULT_DRILL", details)
    if isinstance(exc, SoftTimeLimitExceeded):
        return JobError(f"{step} ran out of time", "STEP_TIMEOUT", details)
    if isinstance(exc, pipeline.LevelInvalid):
        return JobError(f"{step}: {exc}", "LEVEL_INVALID", {**details, "attempts": exc.attempts})
    if isinstance(exc, pipeline.PipelineError):
        return JobError(f"{step} rejected its input: {exc}", "STEP_FAILED", details)
    # An unexpected bug: say which step and what kind, never a stack trace.
    return JobError(f"{step} failed: {type(exc).__name__}", "STEP_FAILED", details)


class StepTask(Task):
    """Base of the step tasks: binds log context; fails the job when a step gives up."""

    step: str = ""

    def before_start(self, task_id, args, kwargs):
        logs.clear()
        logs.bind(jobId=args[0] if args else kwargs.get("job_id"), requestId=kwargs.get("request_id"))

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Called once retries are exhausted, or at once for a non-transient error.
        job_id = args[0] if args else kwargs.get("job_id")
        log.error("step.gave_up", step=self.step, error=type(exc).__name__, exc_info=exc)
        try:
            fail_job(services(), job_id, self.step, job_error(self.step, exc), kwargs.get("attempt", 1))
        except DependencyError:
            # Storage is down (or refuses us) too: the message is not acked (acks_late), so SQS
            # redelivers it, and after maxReceiveCount it goes to the DLQ.
            log.error("step.fail_unrecorded", step=self.step)
            raise


def _make_step_task(step: str) -> StepTask:
    def run(self: StepTask, job_id: str, request_id: str | None = None, attempt: int = 1) -> None:
        result = run_step(
            services(), job_id, step, attempt, delivery=self.request.id, run=self.request.retries or 0
        )
        if result.next is Next.RETRY:
            # A new message with the same chain; this one is acked.
            raise self.retry(countdown=result.retry_in, max_retries=LEASE_RETRIES)
        if result.next is Next.STOP:
            # Ends the chain here: the job is terminal or gone, or the chain already moved on.
            self.request.chain = None

    run.__name__ = step
    run.__doc__ = f"Run the {step} step of a job."
    policy = app.conf.get("step_retry_policy", {})
    return app.task(run, name=f"tasks.steps.{step}", bind=True, base=StepTask, step=step, **policy)


parse_prompt = _make_step_task("parse_prompt")
layout_rooms = _make_step_task("layout_rooms")
connect_doors = _make_step_task("connect_doors")
populate = _make_step_task("populate")
validate_level = _make_step_task("validate_level")
render_minimap = _make_step_task("render_minimap")

STEP_TASKS: dict[str, StepTask] = {
    task.step: task
    for task in (parse_prompt, layout_rooms, connect_doors, populate, validate_level, render_minimap)
}
assert tuple(STEP_TASKS) == pipeline.STEPS, "one task per pipeline step, in pipeline order"

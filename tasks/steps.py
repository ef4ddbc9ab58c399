"""The Celery tasks: one per pipeline step, each a thin shell around runner.run_step.

A step hands the chain on itself, in its body (``hand_on``), rather than leaving the next
message to Celery: Celery sends it after the body has returned (``celery/app/trace.py``,
``_dispatch_callbacks_and_chain``), and a send that fails there is the task's failure — its
``on_failure`` would fail a job whose step was just recorded, and the message be acked, taking
the rest of the chain with it. Here a send that fails is tried again for ``HAND_ON_SECONDS``,
then the message is rejected with requeue: not acked, SQS delivers it again, the redelivery
finds the step recorded and hands on. The job is never left ``running`` with no message.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, cast

from celery import Task
from celery.canvas import signature
from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded

import pipeline
from storage.bootstrap import Services, build_services
from storage.errors import DependencyError, DependencyUnavailable, GhostEngineError
from storage.model import JobError, step_id
from storage.settings import Settings
from tasks import app, backoff, logs, metrics
from tasks.runner import (
    LEASE_MARGIN_SECONDS,
    FaultDrill,
    Leased,
    Next,
    fail_job,
    lease_seconds,
    run_step,
    shown_kwargs,
)

log = logs.get_logger(__name__)

# How often a delivery may find its step leased to another run, beyond the waits that run's
# time limit can take (lease_retries).
LEASE_RETRIES_SPARE = 3
# How long a step keeps trying to send the next step's message before it leaves its own
# message to be delivered again: longer than a 20 s SQS outage (docs/reliability.md).
HAND_ON_SECONDS = 30.0
HAND_ON_BACKOFF_SECONDS = 0.5  # the first wait; then doubling, up to HAND_ON_BACKOFF_MAX_SECONDS
HAND_ON_BACKOFF_MAX_SECONDS = 5.0


@functools.cache
def services() -> Services:
    """The worker process's stores, built on first use (after the prefork fork)."""
    built = build_services()
    metrics.configure(built.settings.metrics_namespace)
    return built


def lease_retries(settings: Settings) -> int:
    """How often a delivery may find its step leased to another run before it gives up.

    Each wait lasts until that run's lease lapses: at least two thirds of a lease, since the run
    renews it every third (runner._LeaseKeeper). A run that lives renews it for up to its hard
    time limit, so that many waits, and a few spare, are allowed before giving up — which fails
    the job — could end a job whose step a live run is still computing.
    """
    hard = settings.step_time_limit_seconds + LEASE_MARGIN_SECONDS
    return math.ceil(hard / (lease_seconds(settings) * 2 / 3)) + LEASE_RETRIES_SPARE


def job_error(step: str, exc: BaseException) -> JobError:
    """The stored error for a step that failed for good."""
    details = {"step": step}
    if isinstance(exc, GhostEngineError):
        return JobError(exc.message, exc.code, {**details, **exc.details})
    if isinstance(exc, FaultDrill):
        return JobError(str(exc), "FAULT_DRILL", details)
    if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        # The hard limit too: its process was killed before the soft limit's handler could say so.
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


def fail_revoked(current: Services, step: str, args: Any, kwargs: dict | None, *, terminated: bool) -> bool:
    """Fail the job of a step whose task an operator revoked (celery control revoke; Flower's Revoke
    and Terminate): the worker acks such a message and never runs it, so nothing would move the job
    on, and it would show running until the stall sweeper (STALL_AFTER_SECONDS). Failed REVOKED, it
    can be retried. Nothing changes for a copy of a step already recorded, of an attempt an
    operator moved past, or of an ended job. True if the job was failed."""
    kwargs = kwargs or {}
    job_id = str(args[0] if args else kwargs.get("job_id"))
    attempt = kwargs.get("attempt", 1)
    try:
        job = current.jobs.get(job_id)
        if job.terminal or job.attempt != attempt or step_id(job_id, step, attempt) in job.step_ids:
            log.info("step.revoked", jobId=job_id, step=step, terminated=terminated, jobFailed=False)
            return False
        how = "stopped (revoke --terminate)" if terminated else "revoked"
        error = JobError(f"{step} was {how} by an operator", "REVOKED", {"step": step})
        fail_job(current, job_id, step, error, attempt)
    except GhostEngineError as exc:
        log.error("step.revoke_unrecorded", jobId=job_id, step=step, error=exc.message)
        return False
    log.warning("step.revoked", jobId=job_id, step=step, terminated=terminated, jobFailed=True)
    return True


def hand_on(task: Task, handover: dict | None = None, leased: Leased | None = None) -> None:
    """Send the chain's next step, with this step's ``handover`` (its checkpoint, when small enough
    for a message: tasks/checkpoints.py) and the lease this step's record ``leased`` it (as the
    message's task id, with the job as the step needs it); if it cannot be sent, reject this
    message for redelivery."""
    # The rest of the chain, last step first, as signature dicts (celery's stubs call it a str).
    chain = cast("list[dict[str, Any]]", task.request.chain)
    if not chain:
        return
    following = chain[-1]
    options: dict[str, Any] = {}
    kwargs = dict(following.get("kwargs") or {})
    if handover is not None:
        kwargs["handover"] = handover
    if leased is not None:
        kwargs["leased"] = leased.job
        options["task_id"] = leased.delivery
    if handover is not None or leased is not None:
        following = {**following, "kwargs": kwargs}
        options["kwargsrepr"] = shown_kwargs(kwargs)
    next_step = signature(following, app=task.app)
    try:
        _send_in_time(task, next_step, chain[:-1], options)
    except SoftTimeLimitExceeded as exc:
        # The step's time ran out while it handed on: it is recorded, so leave it to the redelivery.
        log.warning("step.hand_on_failed", next=next_step.name, error="the step's time limit")
        raise Reject(exc, requeue=True) from exc
    task.request.chain = None  # sent: Celery's trace must not send it again


def _send_in_time(task: Task, next_step, rest: list, options: dict) -> None:
    """Send ``next_step``, trying again for HAND_ON_SECONDS; then raise Reject (requeue)."""
    deadline = time.monotonic() + HAND_ON_SECONDS
    failures = 0
    while True:
        try:
            # As Celery's trace would send it (its args are immutable: no result is passed on;
            # the handover is this step's own addition to the kwargs).
            next_step.apply_async(
                chain=rest,
                parent_id=task.request.id,
                root_id=task.request.root_id or task.request.id,
                **options,
            )
            return
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            failures += 1
            wait = backoff.wait(failures, HAND_ON_BACKOFF_SECONDS, HAND_ON_BACKOFF_MAX_SECONDS)
            error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + wait > deadline:
                log.warning("step.hand_on_failed", next=next_step.name, error=error, tries=failures)
                # Not acked: SQS delivers this message again, and its run hands on.
                raise Reject(exc, requeue=True) from exc
            log.warning("step.hand_on_retry", next=next_step.name, error=error, retryIn=round(wait, 2))
            time.sleep(wait)


def _make_step_task(step: str) -> StepTask:
    def run(
        self: StepTask,
        job_id: str,
        request_id: str | None = None,
        attempt: int = 1,
        handover: dict | None = None,
        leased: dict | None = None,
    ) -> None:
        try:
            # A step that continues the chain hands on from inside run_step, beside its own
            # checkpoint upload, which ends before this returns (and so before the ack).
            result = run_step(
                services(),
                job_id,
                step,
                attempt,
                delivery=self.request.id,
                run=self.request.retries or 0,
                handover=handover,
                leased=leased,
                redelivered=bool((self.request.delivery_info or {}).get("redelivered")),
                hand_on=lambda passed, lease: hand_on(self, passed, lease),
            )
        except DependencyUnavailable as exc:
            # Transient (throttled, unreachable): run again later, as a new message; after
            # max_retries the error reaches on_failure and fails the job. The waits add up to
            # a known least time (tasks/backoff.py; the sums are in docs/reliability.md).
            # retry_backoff(_max) come from step_retry_policy (celeryconfig.py) through app.task's options.
            base, cap = self.retry_backoff, self.retry_backoff_max  # type: ignore[attr-defined]  # set by app.task(**policy); not in celery's stubs
            wait = backoff.wait(self.request.retries + 1, base, cap)
            raise self.retry(exc=exc, countdown=wait) from exc
        if result.next is Next.RETRY:
            # A new message with the same chain; this one is acked.
            raise self.retry(countdown=result.retry_in, max_retries=lease_retries(services().settings))
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
    task.step: task for task in (parse_prompt, layout_rooms, connect_doors, populate, validate_level, render_minimap)
}
if tuple(STEP_TASKS) != pipeline.STEPS:  # an import-time check that `python -O` must not strip
    raise RuntimeError("one task per pipeline step, in pipeline order")

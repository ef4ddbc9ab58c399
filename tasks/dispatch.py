"""Submitting a job: write its item, then send its chain of step messages."""

from __future__ import annotations

import dataclasses
import enum
import functools
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from celery import chain

import pipeline
from storage.errors import (
    DependencyError,
    EnqueueFailed,
    GhostEngineError,
    IdempotencyKeyReused,
    InvalidTransition,
    JobExists,
    JobNotFound,
)
from storage.model import (
    Job,
    JobError,
    JobState,
    StepLease,
    handed_owner,
    is_handed,
    job_id_for_key,
    new_job_id,
    request_fingerprint,
    retry_record,
    step_id,
    utc_now,
)
from storage.ports import JobStore
from tasks import app, metrics
from tasks.logs import get_logger
from tasks.runner import Leased, job_context, shown_kwargs

log = get_logger(__name__)

# enqueue(job_id, request_id, *, steps=..., attempt=..., leased=...): sends the job's chain.
Enqueue = Callable[..., None]

# How long a submission answered 503 keeps finding out whether its put was applied (~1 min).
SETTLE_PAUSES = (0.5, 1, 2, 4, 8, 15, 30)
# A replay under an Idempotency-Key sends a job again when it is still queued with nothing
# started this long after it was written: its first send may never have happened.
RESEND_AFTER_SECONDS = 10


class Settled(enum.Enum):
    """What a look at a write answered with an error found (_settle)."""

    SENT = "written after all, and sent now"
    UNDER_WAY = "written after all, and sent already, or ended"
    NOT_APPLIED = "the write was not applied"
    SEND_FAILED = "written after all, but its messages could not be sent: the job is failed again"
    UNKNOWN = "the store did not answer for a minute"


@dataclasses.dataclass
class Look:
    """A look in the background at a write answered with an error (_settle_in_background)."""

    job_id: str
    # True for a look at a write that was applied, whose job could be neither sent nor failed
    # (_enqueue_or_fail): it only sends, or fails the job at its last look.
    written: bool = False
    outcome: Settled | None = None
    ended: threading.Event = dataclasses.field(default_factory=threading.Event)

    def wait(self, timeout: float) -> Settled | None:
        """What the look found, once it ended within ``timeout`` seconds; None if it had not."""
        self.ended.wait(timeout)
        return self.outcome


def send_chain(
    job_id: str,
    request_id: str | None,
    *,
    steps: Sequence[str] = pipeline.STEPS,
    attempt: int = 1,
    leased: Leased | None = None,
) -> None:
    """Send the job's chain: one immutable signature per step, carrying only ids.

    With ``leased`` (the lease the job's item hands the first step: submit_job), the first
    message goes as that lease's Celery task id and carries the job as the step needs it, as a
    step's record hands on (tasks/steps.py: hand_on). Signatures by name keep the API process
    from importing the step tasks.
    """
    kwargs: dict = {"request_id": request_id}
    if attempt > 1:
        kwargs["attempt"] = attempt
    signatures = [app.signature(f"tasks.steps.{step}", args=(job_id,), kwargs=kwargs, immutable=True) for step in steps]
    if leased is not None:
        first = signatures[0]
        first.kwargs = {**kwargs, "leased": leased.job}
        first.set(task_id=leased.delivery, kwargsrepr=shown_kwargs(first.kwargs))
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
    lease_seconds: float | None = None,
) -> tuple[Job, bool]:
    """Create a queued job and enqueue it; (job, replayed).

    On a send failure the job ends failed, never stuck queued. With an
    idempotency key, a repeat of the same request returns the original job
    (replayed=True) and sends nothing — unless the original's send failed, and
    then it is sent now, as the job's next attempt; another request under the
    key raises IdempotencyKeyReused.

    With ``lease_seconds`` (the API's: tasks/runner.py, lease_seconds), the item hands the first
    step's lease to the message about to carry it, as a step's record hands the next step's: that
    message's first try computes at once, with no claim, and its record moves the job to running.
    One conditional write and one round trip fewer a job. Without it, the first step claims.
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
    leased = None
    if lease_seconds is not None:
        job, leased = _hand_first_lease(job, lease_seconds)
    options = {"leased": leased} if leased is not None else {}
    try:
        # The item exists before any message: a worker never sees a job it cannot load.
        _create(jobs, job, lambda: enqueue(job.job_id, request_id, **options))
    except JobExists:
        if idempotency_key is None:
            raise
        original = jobs.get(job.job_id)
        if original.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request", details={"jobId": original.job_id}
            ) from None
        if _never_sent(original):
            return _send_again(jobs, original, request_id=request_id, enqueue=enqueue), True
        if _maybe_unsent(original, now=time.time()):
            return _resend(jobs, original, request_id=request_id, enqueue=enqueue), True
        log.info("job.replayed", jobId=original.job_id)
        return original, True
    _enqueue_or_fail(jobs, job.job_id, lambda: enqueue(job.job_id, request_id, **options))
    log.info("job.queued", jobId=job.job_id)
    return job, False


def _hand_first_lease(job: Job, lease_seconds: float) -> tuple[Job, Leased | None]:
    """``job`` holding its first step's lease for the message about to carry it, and what that
    message carries; ``job`` as it is and None when the job is too big for a message to carry
    (its first step then claims, as a retried job's does)."""
    context = job_context(job)
    if context is None:
        return job, None
    delivery = uuid.uuid4().hex
    expires_ms = int(time.time() * 1000) + int(lease_seconds * 1000)
    lease = StepLease(step_id(job.job_id, pipeline.STEPS[0]), handed_owner(delivery), expires_ms)
    return dataclasses.replace(job, leases=(lease,)), Leased(delivery, context)


def retry_job(
    jobs: JobStore,
    job_id: str,
    *,
    reason: str,
    by: str,
    request_id: str | None = None,
    enqueue: Enqueue = send_chain,
    looks: list[Look] | None = None,
) -> Job:
    """Re-run a failed job from its first incomplete step, as a new attempt; the one exit from failed
    but a resend of a job whose send failed (_send_again).

    Steps that completed keep their records and their checkpoints, so they are
    not run again; the steps of the new attempt get stepIds of their own.

    A retry answered with an error may have been written all the same: a thread looks, and sends
    it if it was (_settle). So does a retry written whose job could be neither sent nor failed
    (_enqueue_or_fail). ``looks`` gets that look, for a caller that would otherwise exit before it
    ends (the celery CLI's retry-job).
    """
    job = jobs.get(job_id)
    if _maybe_unsent(job, now=time.time()):
        # The retry asked again of a retry whose write was applied but answered with an error.
        return _resend(jobs, job, request_id=request_id, enqueue=enqueue)
    first = first_incomplete_step(job)
    steps = pipeline.STEPS[pipeline.STEPS.index(first) :]
    attempt = job.attempt + 1
    entry = retry_record(job_id, attempt=attempt, at=utc_now(), reason=reason, by=by, from_step=first)

    def send() -> None:
        enqueue(job_id, request_id, steps=steps, attempt=attempt)

    try:
        jobs.mark_retry(job_id, attempt=entry)
    except DependencyError:
        # Applied, maybe, but answered with an error: as for a submission's put (_create), look in
        # the background, so a retry applied after all is sent even if nobody asks again.
        look = _settle_in_background(jobs, job_id, lambda stored: _retried_by(stored, entry), send)
        if looks is not None:
            looks.append(look)
        raise
    _enqueue_or_fail(jobs, job_id, send, looks=looks)
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


def _create(jobs: JobStore, job: Job, send: Callable[[], None]) -> None:
    """Write the job item; if the answer is an error, find out in the background whether it was written.

    botocore's retry of a put that was applied but answered with an error is recognised by the
    store (JobStore.create). An error that outlasts those retries goes to the client at once (a
    503 within seconds), and a thread keeps looking (_settle), so that an item
    written after all is sent, never left queued with no message.
    """
    try:
        jobs.create(job)
    except DependencyError:

        def written(stored: Job) -> bool:
            return stored.created_at == job.created_at  # not another submission's item (same key)

        _settle_in_background(jobs, job.job_id, written, send)
        raise


def _retried_by(stored: Job, entry: Mapping) -> bool:
    """True when ``stored`` holds the retry ``entry`` (retry_record) as its current attempt."""
    return stored.attempt == entry["attempt"] and bool(stored.attempts) and stored.attempts[-1].get("at") == entry["at"]


def _settle_in_background(
    jobs: JobStore, job_id: str, applied: Callable[[Job], bool] | None, send: Callable[[], None]
) -> Look:
    """Find out in a thread whether a write answered with an error was applied; if so, send (_settle).

    ``applied`` None: the write is known to be applied, only its send is left (_enqueue_or_fail).
    """
    look = Look(job_id, written=applied is None)

    def run() -> None:
        try:
            look.outcome = _settle(jobs, job_id, applied, send)
        finally:
            look.ended.set()

    threading.Thread(target=run, name=f"settle-{job_id}", daemon=True).start()
    return look


def _settle(jobs: JobStore, job_id: str, applied: Callable[[Job], bool] | None, send: Callable[[], None]) -> Settled:
    """Send the job if the write that queued it, answered with an error, was applied after all
    (``applied`` to the stored item) and nothing sent it since; give up after SETTLE_PAUSES.

    A send that fails is tried again at the next look, and only the last look's failure fails the
    job (ENQUEUE_FAILED): meanwhile its client, retrying under its Idempotency-Key, may have been
    told the job is queued (a replay), and will not ask again. Failed at the first send, such a job
    ended failed on one SQS error: seen in the 20 % faults run, during the SQS outage.
    """
    for look, pause in enumerate(SETTLE_PAUSES, start=1):
        time.sleep(pause)
        try:
            stored = jobs.get(job_id)
        except JobNotFound:
            return Settled.NOT_APPLIED  # not written: the 503 was the whole truth
        except GhostEngineError:
            continue  # the store is still down: look again
        if applied is not None and not applied(stored):
            return Settled.NOT_APPLIED  # or someone else's write (the same key)
        if stored.state is not JobState.QUEUED or _started(stored):
            return Settled.UNDER_WAY  # sent by another's hand (a client's resend), or ended
        last = look == len(SETTLE_PAUSES)
        try:
            _enqueue_or_fail(jobs, job_id, send, fail_job=last, look_later=False)
        except GhostEngineError:
            if last:
                return Settled.SEND_FAILED  # _enqueue_or_fail failed the job (ENQUEUE_FAILED), or tried to
            continue  # still queued: the next look sends it, unless its message got through after all
        log.info("job.queued_after_error", jobId=job_id, attempt=stored.attempt)
        return Settled.SENT
    log.error("job.write_unsettled", jobId=job_id)
    return Settled.UNKNOWN


def _started(job: Job) -> bool:
    """True once ``job``'s current attempt is on its way: a step of it claimed or recorded."""
    return _claimed(job) or any(step.attempt == job.attempt for step in job.steps)


def _claimed(job: Job) -> bool:
    """True when a run has claimed a step of ``job``: its message was sent and received. The lease
    the job's item hands its first message (submit_job) says nothing of whether it was sent."""
    return any(not is_handed(lease.owner) for lease in job.leases)


def _maybe_unsent(job: Job, *, now: float) -> bool:
    """True for a job still queued, its attempt not started, RESEND_AFTER_SECONDS after it was queued.

    The write that queued it (the submission's put, an operator's retry, a resend of a job whose
    send failed) may have been answered with an error, so nothing was sent (and _settle gave up).
    Sooner than that, its message is most likely on its way. A queued job's item is written only
    by what queues it until a step starts, so its updatedAt is when it was queued.
    """
    if job.state is not JobState.QUEUED or _started(job):
        return False
    return now - datetime.fromisoformat(job.updated_at.replace("Z", "+00:00")).timestamp() > RESEND_AFTER_SECONDS


def _resend(jobs: JobStore, job: Job, *, request_id: str | None, enqueue: Enqueue) -> Job:
    """Send the chain of a queued job's current attempt again. A second chain of one job is harmless
    (each step is claimed and recorded once); a job queued with no message is not."""
    send = _attempt_chain(job, request_id=request_id, enqueue=enqueue)
    # A failed resend leaves the job queued: its first message may well be waiting in the queue (a
    # busy fleet, an SQS outage), and failing the job would strand that message's run. The client
    # gets the 503 and asks again; the stall sweep ends a job that truly has no message.
    _enqueue_or_fail(jobs, job.job_id, send, fail_job=False)
    log.info("job.resent", jobId=job.job_id, attempt=job.attempt)
    return job


def _attempt_chain(job: Job, *, request_id: str | None, enqueue: Enqueue) -> Callable[[], None]:
    """What sends the chain of ``job``'s current attempt again, from its first step, with no lease."""
    first = job.attempts[-1]["fromStep"] if job.attempt > 1 and job.attempts else pipeline.STEPS[0]
    steps = pipeline.STEPS[pipeline.STEPS.index(first) :]
    if job.attempt > 1:
        return functools.partial(enqueue, job.job_id, request_id, steps=steps, attempt=job.attempt)
    return functools.partial(enqueue, job.job_id, request_id)


def _never_sent(job: Job) -> bool:
    """True for a job whose first message could not be sent (its submission was answered 503)."""
    return (
        job.state is JobState.FAILED
        and job.error is not None
        and job.error.code == EnqueueFailed.code
        and not job.steps
    )


def _send_again(jobs: JobStore, job: Job, *, request_id: str | None, enqueue: Enqueue) -> Job:
    """The client's retry of a submission answered 503 (nothing sent): send the job again, as the
    same attempt (mark_resent), since a send that never happened is not an attempt.

    The key names the job, so the retry cannot make a second one; it makes the first one run.
    Two such retries at once send once: the loser finds the job queued. (Each retry used to make a
    new attempt: a client retrying through a 20 s SQS outage used all ten, and its job ended
    failed, seen in the 20 % faults run.) A resend answered with an error is looked at in the
    background, as a submission's put is (_settle).
    """
    at = utc_now()
    send = _attempt_chain(job, request_id=request_id, enqueue=enqueue)
    try:
        resent = jobs.mark_resent(job.job_id, attempt=job.attempt, at=at)
    except InvalidTransition:
        resent = False  # it moved on meanwhile (another retry sent it, and it ran)
    except DependencyError:
        _settle_in_background(jobs, job.job_id, lambda stored: stored.updated_at == at, send)
        raise
    if not resent:
        return jobs.get(job.job_id)  # another retry of the submission sent it
    _enqueue_or_fail(jobs, job.job_id, send)
    log.info("job.resubmitted", jobId=job.job_id, attempt=job.attempt)
    # As mark_resent left it: no read that could fail after the job was sent.
    return dataclasses.replace(job, state=JobState.QUEUED, error=None, updated_at=at, leases=())


def _enqueue_or_fail(
    jobs: JobStore,
    job_id: str,
    send: Callable[[], None],
    *,
    fail_job: bool = True,
    look_later: bool = True,
    looks: list[Look] | None = None,
) -> None:
    """Send; if that fails, fail the job with ENQUEUE_FAILED (never leave it queued) and raise.

    A send answered with an error may have been applied all the same (SQS answered a 500, or the
    connection dropped, after it took the message): the failure is written only while the job is
    still queued, and a job a run of that message has moved on is left to run, and nothing raised
    (seen in the 20 % faults run: a job failed ENQUEUE_FAILED a few seconds after its first step
    was recorded, and its client was told it had failed). A job failed meanwhile, its message
    still to come, stays failed: its record is refused, and the client's retry sends it again.

    ``fail_job=False`` (a second chain of a job already sent once) only raises. When the store
    refuses the failure too, the job is queued with no message, and a replay under its key within
    RESEND_AFTER_SECONDS would say it is on its way (seen in the 20 % faults run: a job left
    queued): a look in the background keeps trying to send it, and fails it at the last
    (_settle; ``look_later=False`` for that look's own sends). ``looks`` gets that look (retry_job).
    """
    try:
        try:
            send()
        except EnqueueFailed:
            raise
        except Exception as exc:  # whatever the transport raised, the job was not sent
            raise EnqueueFailed(f"could not send the job ({type(exc).__name__})", details={"jobId": job_id}) from exc
    except EnqueueFailed as exc:
        if not fail_job:
            log.warning("job.resend_failed", jobId=job_id, error=exc.message)
            raise
        failed: bool | None = None
        try:
            failed = jobs.mark_failed(job_id, JobError(exc.message, exc.code, exc.details), if_queued=True)
        except GhostEngineError:
            log.exception("job.enqueue_failed_unrecorded", jobId=job_id, error=exc.message)
            if look_later:
                look = _settle_in_background(jobs, job_id, None, send)
                if looks is not None:
                    looks.append(look)
        if failed is False and _sent_after_all(jobs, job_id):
            log.warning("job.sent_after_all", jobId=job_id, error=exc.message)
            return
        log.error("job.enqueue_failed", jobId=job_id, error=exc.message, recorded=bool(failed))
        if failed:
            metrics.job_failed(exc.code, job_id)
        raise


def _sent_after_all(jobs: JobStore, job_id: str) -> bool:
    """True when a job whose send was answered with an error is on its way all the same: a run of
    its current attempt's message claimed or recorded a step. False when that cannot be read: the
    error stands, and the client's retry under its key finds the job as it is."""
    try:
        return _started(jobs.get(job_id))
    except GhostEngineError:
        return False

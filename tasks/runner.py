"""Runs one pipeline step of one job: claim, load input, compute, checkpoint, record, hand on.

Everything here is written for at-least-once delivery: a step may run twice,
concurrently, or be killed half way, and the job item still ends correct,
because each write is conditional and keyed by the step's deterministic id.

A step costs the job item one write and no read: its record (which, for the last
step, also marks the job done), which also takes the next step's lease for the
message about to carry it (a handed lease, model.handed_owner). That message's
first try computes at once: its lease is its own already, and the message carries
the job as the step needs it (job_context); the first step's message is handed
its lease the same way by the job's item as the API writes it (tasks/dispatch.py:
submit_job), and its record moves the job to running. A delivery without one — an
operator's retry, a later try of a message, a redelivery that hands on again, a
job too big for a message — claims the step first (which returns the item as it
stood, and moves a queued job to running): a second write. A step that computes for longer than a
third of its lease also renews the lease that often (_LeaseKeeper). Its input is the previous step's
checkpoint (see _checkpointed for the two steps that have none), handed over in
its message when small (tasks/checkpoints.py), else read from the job's item (as the claim
returned it) or from S3; its own is kept by its record in the job's item when small, else
uploaded to S3 beside its record, and sent on in the next message. A step looks
for its own checkpoint only in a run that takes over a lapsed lease, which may
find its predecessor's work already written. A step recorded
without a checkpoint (a step event from outside the pipeline, see
api/internal.py) has its checkpoint recomputed when a later step needs it: the
pipeline is deterministic, so the recomputed bytes are the ones a run would
have written.
"""

from __future__ import annotations

import contextvars
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

import pipeline
from storage.bootstrap import Services
from storage.errors import ArtifactNotFound, DependencyError, InvalidTransition, JobNotFound
from storage.model import (
    CHECKPOINT_CONTENT_TYPE,
    ClaimOutcome,
    Completion,
    HandedLease,
    Job,
    JobError,
    JobState,
    RecordOutcome,
    StepEvent,
    StepStatus,
    handed_owner,
    lease_owner,
    step_id,
    utc_now,
)
from storage.settings import Settings
from tasks import metrics
from tasks.artifacts import Written, write_artifacts
from tasks.checkpoints import (
    RESULT,
    artifact_key,
    checkpoint_key,
    compress,
    decode_checkpoint,
    encode_checkpoint,
    for_record,
    from_handover,
    from_record,
    handover,
)
from tasks.logs import get_logger

log = get_logger(__name__)


class Next(Enum):
    """What the chain should do after a step."""

    CONTINUE = "continue"
    STOP = "stop"
    RETRY = "retry"  # another run holds the step's lease: deliver this message again later


# The longest job context (its JSON) a message carries with a handed lease: a prompt of a few
# thousand characters. It comes out of the handover's room, so the message keeps its size bound
# (tasks/checkpoints.py); a longer one is not carried, and the next step claims instead.
JOB_CONTEXT_MAX_BYTES = 8 * 1024


# A lease outlives the step's hard time limit by this much, so a run hung in its step
# cannot keep it past the moment Celery kills it.
LEASE_MARGIN_SECONDS = 5


def lease_seconds(settings: Settings) -> float:
    """How long a step's lease runs unless the run holding it renews it (_LeaseKeeper).

    The SQS visibility timeout: a killed run's message comes back that long after its worker's
    last extension of it (tasks/sqs_visibility.py), and its lease lapses that long after its last
    renewal, so the redelivery can take the step over about when it arrives — not after the
    step's whole time limit. Never longer than the hard time limit and its margin.
    """
    return min(settings.visibility_timeout_seconds, settings.step_time_limit_seconds + LEASE_MARGIN_SECONDS)


class FaultDrill(Exception):
    """A failure injected on purpose (X-Fault-Drill), to rehearse failure handling."""


@dataclass(frozen=True)
class Leased:
    """What a step's record handed the next step's message: that step's lease, taken for the
    message's Celery task id (``delivery``), and the job as the step needs it (job_context)."""

    delivery: str
    job: dict


@dataclass(frozen=True)
class StepRun:
    next: Next
    outcome: str  # recorded | duplicate | terminal | held | missing | stale
    retry_in: float = 0.0  # with RETRY: seconds until the other run's lease lapses


def run_step(
    services: Services,
    job_id: str,
    step: str,
    attempt: int = 1,
    *,
    delivery: str | None = None,
    run: int = 0,
    handover: object = None,
    leased: object = None,
    redelivered: bool = False,
    hand_on: HandOn | None = None,
) -> StepRun:
    """Run ``step`` of ``attempt`` of ``job_id`` once in effect, however often it is delivered.

    ``delivery`` names the message (the Celery task id, kept by Celery's retries) and ``run`` its
    try (Celery's retry count): a claim that was applied but answered with an error is then
    recognised as this message's own by the retry of the write (botocore's, same owner) and by
    the message's next try (Celery's), instead of being waited out as another run's lease.

    ``handover`` is the previous step's checkpoint as the message carries it, if it does
    (tasks/checkpoints.py); ``leased`` the job context a message carries with the lease the step
    before handed it: then its first try makes no claim, unless SQS handed the message out before
    (``redelivered``: its first delivery's run may still be computing); ``hand_on`` sends the next step, given
    this step's handover and the lease handed on (or None), once this step is recorded — called
    for every outcome that continues the chain. The record keeps this step's checkpoint in the
    job's item; one too big for that goes to S3 beside the record, and one too big for a message
    is read beside the computation's start. So a step's critical path is receive, record, send;
    the delete overlaps the next step's receive.
    """
    sid = step_id(job_id, step, attempt)
    previous = _handed_over(handover, step)
    prefetch = None
    if leased is not None and redelivered:
        log.info("step.redelivered", step=step)  # its first delivery's run may still compute: claim
    handed = leased is not None and delivery is not None and run == 0 and not redelivered
    job = _leased_job(job_id, attempt, leased) if handed else None
    if job is not None:
        # The step before took this step's lease for this very message: compute at once. The
        # record checks the job's state and attempt; a twin delivery of this message would
        # compute too, and its record find the step recorded.
        lease, resumed = _LeaseKeeper(services, job_id, sid, owner=handed_owner(delivery or ""), step=step), False
        if previous is None:
            # No handover: the previous checkpoint was too big for a message, so it is in S3
            # (or this message was sent again by a redelivery, and it is in the item).
            prefetch = _prefetch(services, job_id, step)
    else:
        # A message whose lease was handed to it, but whose job does not read, claims it as its own.
        owner = (
            handed_owner(delivery or "") if handed else lease_owner(delivery or uuid.uuid4().hex, run, uuid.uuid4().hex)
        )
        lease = _LeaseKeeper(services, job_id, sid, owner=owner, step=step)
        claim = services.jobs.claim_step(job_id, sid, attempt=attempt, owner=owner, lease_seconds=lease.seconds)
        if claim.outcome is ClaimOutcome.MISSING or claim.job is None:
            # A message for a job that does not exist can never succeed: drop it.
            log.error("step.job_missing", step=step)
            return StepRun(Next.STOP, "missing")
        if claim.outcome is ClaimOutcome.TERMINAL:
            log.info("step.skipped_terminal", step=step, state=str(claim.job.state))
            return StepRun(Next.STOP, "terminal")
        if claim.outcome is ClaimOutcome.STALE:
            # A message of an earlier attempt, delivered after an operator's retry.
            log.info("step.stale_attempt", step=step, attempt=attempt, current=claim.job.attempt)
            return StepRun(Next.STOP, "stale")
        if claim.outcome is ClaimOutcome.DUPLICATE:
            return _already_recorded(services, claim.job, step, hand_on, previous=previous, delivery=delivery, run=run)
        if claim.outcome is ClaimOutcome.HELD:
            # SQS handed this message out again while a run still computes the step
            # (visibility timeout ran out). Don't run it beside that run; look again
            # once its lease lapses — by then it is recorded, or its run is dead.
            retry_in = max(1.0, claim.expires_at_ms / 1000 - time.time() + 0.5)
            log.info("step.lease_held", step=step, retryIn=round(retry_in, 1))
            return StepRun(Next.RETRY, "held", retry_in)
        job, resumed = claim.job, claim.resumed
    with lease:
        return _run_claimed(
            services,
            job,
            step,
            sid,
            resumed=resumed,
            previous=previous,
            prefetch=prefetch,
            hand_on=hand_on,
            delivery=delivery,
            run=run,
        )


def _run_claimed(
    services: Services,
    job: Job,
    step: str,
    sid: str,
    *,
    resumed: bool,
    previous: pipeline.StepOutput | None,
    prefetch: Future | None,
    hand_on: HandOn | None,
    delivery: str | None = None,
    run: int = 0,
) -> StepRun:
    """Compute a step whose lease this run holds, record it, and hand on."""
    job_id = job.job_id
    started_at, started = utc_now(), time.monotonic()
    output, stored = _compute(services, job, step, resumed=resumed, previous=previous, prefetch=prefetch)
    computed_ms = int((time.monotonic() - started) * 1000)  # the duration, below, also holds the last step's artifacts
    last = step == pipeline.STEPS[-1]
    completion = _publish(services, job, output) if last else None
    event = StepEvent(
        step_id=sid,
        name=step,
        started_at=started_at,
        ended_at=utc_now(),
        duration_ms=int((time.monotonic() - started) * 1000),
        summary=completion.summary if completion else output.summary,
        status=StepStatus.OK,
    )
    handing = _handing(services, job, step, delivery, run) if hand_on is not None and not last else None
    reserved = handing.size if handing else 0
    kept = _Kept(services, job.job_id, step, output, stored=stored, reserved=reserved) if _checkpointed(step) else None
    if kept is not None:
        # Kept by the record, or uploaded beside it and stored before the next step is sent: a
        # step sent is a step whose checkpoint a retry finds, handed over or not.
        kept.start()
    failing = False
    try:
        outcome = services.jobs.record_step(
            job_id,
            event,
            total_steps=len(pipeline.STEPS),
            done=completion,
            attempt=job.attempt,
            next_lease=handing.lease if handing else None,
            checkpoint=kept.recorded if kept else None,
            drop_checkpoint=kept is not None and kept.recorded is None,
        )
        log.info("step.recorded", step=step, outcome=str(outcome), durationMs=event.duration_ms, computeMs=computed_ms)
        if outcome is RecordOutcome.RECORDED:
            metrics.step_succeeded(step, event.duration_ms, job_id)
            if completion is not None:
                log.info("job.done", summary=completion.summary)
                metrics.job_succeeded(job.created_at, job_id)
        if outcome in (RecordOutcome.TERMINAL, RecordOutcome.STALE):
            # Ended, or retried by an operator since (only a run without a claim gets this far).
            return StepRun(Next.STOP, str(outcome))
        if completion is not None and outcome is RecordOutcome.DUPLICATE:
            # Recorded meanwhile by a step event, which does not finish the job: finish it here.
            _mark_done(services, job, completion)
        if hand_on is not None and not last:
            # Recorded by another run (a twin of this message, or a step event), whose record
            # handed the lease on if any did: this message goes without one, and claims.
            leased = handing.leased if handing and outcome is RecordOutcome.RECORDED else None
            try:
                hand_on(kept.carried() if kept else None, leased)
            except BaseException:
                if handing is not None and leased is not None:
                    _release(services, job_id, handing.lease)
                raise
        return StepRun(Next.CONTINUE, str(outcome))
    except BaseException:
        # Failing already (a store down, the step's soft time limit): an upload's outcome
        # changes nothing, and waiting out its retries against a store that is down could take
        # the run past its hard time limit, which kills it and fails the job.
        failing = True
        raise
    finally:
        if kept is not None and not failing:
            kept.finish()


HandOn = Callable[[dict | None, Leased | None], None]


@dataclass(frozen=True)
class _Handing:
    """The lease a step's record takes for the next step's message, and what that message carries."""

    lease: HandedLease
    leased: Leased
    size: int  # of the job context, in the message


def _handing(services: Services, job: Job, step: str, delivery: str | None, run: int) -> _Handing | None:
    """The next step's lease to take in this step's record (None when the job is too big to carry)."""
    context = job_context(job)
    if context is None:
        return None
    following = pipeline.STEPS[pipeline.STEPS.index(step) + 1]
    handed = _next_delivery(delivery, run, step)
    lease = HandedLease(
        step_id(job.job_id, following, job.attempt), handed_owner(handed), lease_seconds(services.settings)
    )
    return _Handing(lease, Leased(handed, context), len(json.dumps(context)))


def _next_delivery(delivery: str | None, run: int, step: str) -> str:
    """The Celery task id of the message a try of a step's message sends on: derived from that
    try, so a later try of the same message knows the lease an earlier try's record handed on."""
    if not delivery:
        return uuid.uuid4().hex
    return uuid.uuid5(uuid.NAMESPACE_OID, f"{delivery}/{run}/{step}").hex


def _release(services: Services, job_id: str, lease: HandedLease) -> None:
    """Let go of a lease handed on with a message that was not sent, so the message that will be
    sent instead (the redelivery's, which claims) need not wait it out. Best effort: it lapses
    by itself a lease later."""
    try:
        # Lapsed a second ago: a claim made in the same millisecond takes it too.
        services.jobs.renew_lease(job_id, lease.step_id, owner=lease.owner, lease_seconds=-1)
    except DependencyError as exc:
        log.warning("step.lease_release_failed", error=exc.message)


def job_context(job: Job) -> dict | None:
    """The job as a step needs it, for a message that carries a handed lease (None: too big)."""
    context: dict = {"request": job.request, "createdAt": job.created_at}
    if job.fault_drill:
        context["faultDrill"] = job.fault_drill
    return context if len(json.dumps(context)) <= JOB_CONTEXT_MAX_BYTES else None


def shown_kwargs(kwargs: dict) -> str:
    """A step message's kwargs as its headers and task events (Flower) show them (``kwargsrepr``):
    the checkpoint it hands over and the job it carries as placeholders, not their bytes."""
    shown = dict(kwargs)
    if isinstance(kwargs.get("handover"), dict):
        shown["handover"] = f"<{kwargs['handover'].get('step')} checkpoint>"
    if "leased" in kwargs:
        shown["leased"] = "<job>"
    return repr(shown)


def _leased_job(job_id: str, attempt: int, value: object) -> Job | None:
    """The job a message's context describes (None if it is not one: the step claims instead)."""
    fields = value if isinstance(value, dict) else {}
    request, created_at, drill = fields.get("request"), fields.get("createdAt"), fields.get("faultDrill")
    if not isinstance(request, dict) or not isinstance(created_at, str) or not isinstance(drill, str | None):
        log.warning("step.context_unreadable")
        return None
    return Job(
        job_id=job_id,
        state=JobState.RUNNING,
        created_at=created_at,
        updated_at=created_at,
        request=request,
        total_steps=len(pipeline.STEPS),
        ttl=0,
        fault_drill=drill,
        attempt=attempt,
    )


def _lease_handed_on(job: Job, step: str, delivery: str | None, run: int) -> Leased | None:
    """The lease an earlier try of this message handed on in its record of ``step``, if it stands.

    That try raised after its record was applied (its answer lost), so it sent nothing: this try
    sends the message the lease was taken for. A redelivery of the same try (SQS's, after its
    visibility timeout) finds none: the try it repeats may have sent its message already.
    """
    following = step_id(job.job_id, pipeline.STEPS[pipeline.STEPS.index(step) + 1], job.attempt)
    context = job_context(job)
    if not delivery or context is None or following in job.step_ids or job.terminal:
        return None
    earlier = {handed_owner(_next_delivery(delivery, before, step)): before for before in range(run)}
    for lease in job.leases:
        if lease.step_id == following and lease.owner in earlier and lease.expires_at_ms > time.time() * 1000:
            return Leased(_next_delivery(delivery, earlier[lease.owner], step), context)
    return None


class _LeaseKeeper:
    """Renews the lease this run holds on a step, every third of its length, while it computes.

    A run that lives keeps its step however long it takes, up to its hard time limit (made before
    the claim, so the limit is counted from before the lease began); a run that dies (SIGKILL, its
    container gone) stops renewing, and its lease lapses at most a lease later. A renewal that
    fails is logged and tried again at the next beat: a lease lost costs at worst a second run of
    a deterministic step, whose record the stepId guard refuses. No thread is started for a step
    whose time limit fits in one lease, and a step shorter than a third of a lease renews nothing.
    """

    def __init__(self, services: Services, job_id: str, sid: str, *, owner: str, step: str) -> None:
        self._jobs, self._job_id, self._sid, self._owner, self._step = services.jobs, job_id, sid, owner, step
        self.seconds = lease_seconds(services.settings)
        # Never past the hard time limit: a run still alive then is being killed by Celery.
        self._until = time.monotonic() + services.settings.step_time_limit_seconds + LEASE_MARGIN_SECONDS
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._join_seconds = services.settings.aws_timeout_seconds  # one attempt of a renewal

    def __enter__(self) -> _LeaseKeeper:
        if self._until - time.monotonic() > self.seconds:
            context = contextvars.copy_context()
            self._thread = threading.Thread(target=context.run, args=(self._keep,), name="lease-keeper", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        if self._thread is not None:
            # A renewal begun just before the run ended ends before the run does (it finds the
            # lease gone, after the record). The wait is at most one attempt's timeout, and none
            # when the keeper was waiting for its next beat; a renewal retried under AWS faults
            # may outlast it and land after the run, where it too finds the lease gone.
            self._thread.join(self._join_seconds)

    def _keep(self) -> None:
        while not self._stopped.wait(self.seconds / 3):
            left = self._until - time.monotonic()
            if left <= 0:
                return
            try:
                kept = self._jobs.renew_lease(
                    self._job_id, self._sid, owner=self._owner, lease_seconds=min(self.seconds, left)
                )
            except DependencyError as exc:
                log.warning("step.lease_renew_failed", step=self._step, error=exc.message)
                continue
            if not kept:
                # Recorded meanwhile (the record removes the lease), or lapsed and taken over.
                log.info("step.lease_not_renewed", step=self._step)
                return


def _already_recorded(
    services: Services,
    job: Job,
    step: str,
    hand_on: HandOn | None,
    *,
    previous: pipeline.StepOutput | None = None,
    delivery: str | None = None,
    run: int = 0,
) -> StepRun:
    """A delivery of a step that is recorded: finish what its first run may have left undone."""
    log.info("step.already_recorded", step=step)
    if step == pipeline.STEPS[-1]:
        # Done already, unless the last step was recorded by a step event (no artifacts) or
        # by a run that died before its record could finish the job: publish and finish.
        _mark_done(services, job, _publish(services, job, _recompute(services, job, step)))
        return StepRun(Next.STOP, "duplicate")
    # Hand on, even when later steps are recorded too: they may have been recorded by step
    # events, and then this message is the only one carrying the chain. A redelivery whose
    # first run did hand on makes a tail of duplicates, each a refused claim.
    if _may_lack_checkpoint(job, step) and not services.artifacts.exists(checkpoint_key(job.job_id, step)):
        # Its first run was recorded but its checkpoint is neither in the item nor in the
        # store (an upload beside the record failed, or the run died before it ended; or the
        # step was recorded by a step event): a retry would need it.
        log.info("step.checkpoint_restored", step=step)
        output = pipeline.run_step(step, _load_input(services, job, step, previous=previous))
        _save_checkpoint(services, job.job_id, step, encode_checkpoint(step, output))
    # Nothing is handed over: the next step reads the checkpoint from the item or S3. The lease
    # its first run's record handed on is handed on again, if that message may never have been sent.
    if hand_on is not None:
        hand_on(None, _lease_handed_on(job, step, delivery, run))
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
        outcome = services.jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS), error=error)
        # The step was recorded (ok) before something after its record failed: the job still fails.
        moved = outcome is RecordOutcome.RECORDED or (
            outcome is RecordOutcome.DUPLICATE and services.jobs.mark_failed(job_id, error)
        )
    except JobNotFound:
        return
    log.error("job.failed", step=step, code=error.code, moved=moved, error=error.message)
    metrics.step_failed(step, error.code, job_id)
    if moved:
        metrics.job_failed(error.code, job_id)


def _may_lack_checkpoint(job: Job, step: str) -> bool:
    """Whether a recorded ``step``'s checkpoint may be missing where a retry would look: not when
    the item keeps it (its record did), nor when the next step is recorded too (a retry starts
    after it, and needs a later checkpoint)."""
    if not _checkpointed(step) or (job.checkpoint is not None and job.checkpoint.step == step):
        return False
    following = pipeline.STEPS[pipeline.STEPS.index(step) + 1]
    return step_id(job.job_id, following, job.attempt) not in job.step_ids


def _checkpointed(step: str) -> bool:
    """Whether a step's output is kept as a checkpoint for the next step.

    Not the first step's: it is a function of the request alone and takes microseconds, so the
    second step recomputes it from the request (which its claim returned) — a PutObject and a
    GetObject fewer per job. Not the last step's: its output is published as the artifacts.
    """
    return step not in (pipeline.STEPS[0], pipeline.STEPS[-1])


def _compute(
    services: Services,
    job: Job,
    step: str,
    *,
    resumed: bool,
    previous: pipeline.StepOutput | None,
    prefetch: Future | None,
) -> tuple[pipeline.StepOutput, bool]:
    """The step's output, and whether its checkpoint is in the store already."""
    if resumed and _checkpointed(step):
        # A run that lost its lease (killed, or hung past its limit) may have written its
        # checkpoint before it died: the pipeline is deterministic, so reuse it.
        try:
            return _from_s3(services, job.job_id, step), True
        except ArtifactNotFound:
            pass
    _apply_drill(job, step, slow_seconds=services.settings.fault_drill_slow_seconds)
    return pipeline.run_step(step, _load_input(services, job, step, previous=previous, prefetch=prefetch)), False


def _load_input(
    services: Services,
    job: Job,
    step: str,
    *,
    previous: pipeline.StepOutput | None = None,
    prefetch: Future | None = None,
) -> dict:
    """What ``step`` takes: the request, or the previous step's output — handed over in the
    message, kept in the job's item (as a claim returned it), fetched beside the start of a
    computation that claimed nothing (``prefetch``), or read from S3 now."""
    index = pipeline.STEPS.index(step)
    if index == 0:
        return dict(job.request)
    before = pipeline.STEPS[index - 1]
    if not _checkpointed(before):
        return _round_trip(_recompute(services, job, before).data)
    if previous is not None:
        return previous.data
    kept = from_record(job.checkpoint, before)
    if kept is not None:
        return kept.data
    try:
        stored = prefetch.result() if prefetch is not None else _from_s3(services, job.job_id, before)
        return stored.data
    except ArtifactNotFound:
        pass
    # The previous step was recorded by a step event, not run by the pipeline (or its upload
    # failed and the job failed before a redelivery could store it). Stored, as any repair,
    # in S3: the step's record is made already.
    log.info("step.checkpoint_recomputed", step=before)
    output = _recompute(services, job, before)
    _save_checkpoint(services, job.job_id, before, encode_checkpoint(before, output))
    return _round_trip(output.data)


def _handed_over(handover: object, step: str) -> pipeline.StepOutput | None:
    """The previous step's output as the message hands it over, if it does (and it decodes)."""
    index = pipeline.STEPS.index(step)
    if handover is None or index == 0:
        return None
    output = from_handover(handover, pipeline.STEPS[index - 1])
    if output is None:
        log.warning("step.handover_unreadable", step=step)
    return output


def _prefetch(services: Services, job_id: str, step: str) -> Future | None:
    """The previous step's checkpoint, read beside the start of a computation that claimed
    nothing (None where none is read)."""
    index = pipeline.STEPS.index(step)
    if index == 0 or not _checkpointed(pipeline.STEPS[index - 1]):
        return None
    return _submit(_stored_checkpoint, services, job_id, pipeline.STEPS[index - 1])


def _stored_checkpoint(services: Services, job_id: str, step: str) -> pipeline.StepOutput:
    """A step's stored output, from S3 or else from the job's item (for a run that has not read
    the item: a redelivery that hands on again sends the next step no handover, whichever store
    keeps it). ArtifactNotFound when neither has it."""
    try:
        return _from_s3(services, job_id, step)
    except ArtifactNotFound:
        kept = from_record(services.jobs.get(job_id).checkpoint, step)
        if kept is None:
            raise
        return kept


def _from_s3(services: Services, job_id: str, step: str) -> pipeline.StepOutput:
    return decode_checkpoint(services.artifacts.get(checkpoint_key(job_id, step)))


class _Kept:
    """A step's checkpoint: kept by its record when small (``recorded``), else a PutObject beside
    the record, ended before its hand-on."""

    def __init__(
        self, services: Services, job_id: str, step: str, output: pipeline.StepOutput, *, stored: bool, reserved: int
    ):
        self._services, self._job_id, self._step = services, job_id, step
        self._body = encode_checkpoint(step, output)
        compressed = compress(self._body)
        self.recorded = None if stored else for_record(step, compressed)  # what the record keeps
        self._stored = stored or self.recorded is not None  # nothing to upload
        if not self._stored:
            # Before the record it runs beside: a checkpoint no store could take fails its own
            # step (demo mode's inline limit), not the step after it.
            services.artifacts.admit(checkpoint_key(job_id, step), len(self._body))
        # None when too big for a message
        self.handover = handover(step, self._body, reserved, compressed=compressed)
        self._future: Future | None = None

    def start(self) -> None:
        """Issue the upload, once (nothing to do for a checkpoint the record keeps, or found in
        the store)."""
        if not self._stored and self._future is None:
            self._future = _submit(_save_checkpoint, self._services, self._job_id, self._step, self._body)

    def carried(self) -> dict | None:
        """What the next message carries (None: the next step reads the store), once the
        checkpoint is stored."""
        if self._future is not None:
            self._future.result()
        return self.handover

    def finish(self) -> None:
        """Wait for the upload (a step that does not hand on); its failure is the step's.

        A transient failure retries the step (tasks/steps.py), whose next delivery finds it
        recorded and stores the checkpoint then (_already_recorded).
        """
        if self._future is not None:
            self._future.result()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    # Made on first use, in the process that runs steps (never before the worker's fork).
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="step-io")


def _submit(fn: Callable, *args, **kwargs) -> Future:
    """Run ``fn(*args, **kwargs)`` beside the caller, with the caller's log context."""
    return _pool().submit(contextvars.copy_context().run, functools.partial(fn, *args, **kwargs))


def _round_trip(data: dict) -> dict:
    """Data as the next step would read it from a checkpoint: through JSON."""
    return json.loads(pipeline.encode_json(data))


def _recompute(services: Services, job: Job, step: str) -> pipeline.StepOutput:
    """Run ``step`` again from its input (no drill: this is a repair, not the step's own run)."""
    return pipeline.run_step(step, _load_input(services, job, step))


def _save_checkpoint(services: Services, job_id: str, step: str, body: bytes) -> None:
    services.artifacts.put(checkpoint_key(job_id, step), body, CHECKPOINT_CONTENT_TYPE)


def _apply_drill(job: Job, step: str, *, slow_seconds: float) -> None:
    # Drills act in the first attempt only, so a retry shows the recovery.
    if not job.fault_drill or job.attempt > 1:
        return
    kind, _, target = job.fault_drill.partition(":")
    if target != step:
        return
    if kind == "fail":
        raise FaultDrill(f"fault drill: {step} failed on purpose")
    if kind == "slow":
        time.sleep(slow_seconds)


def _publish(services: Services, job: Job, output: pipeline.StepOutput) -> Completion:
    """Write the final artifacts and result.json (idempotent: the same bytes to the same keys).

    The completion's summary is the last step's, with a word on any artifact left out.
    """

    def index(written: Written) -> bytes:
        return pipeline.encode_json(
            {
                "jobId": job.job_id,
                "request": job.request,
                "summary": written.summary(output.summary),
                "artifacts": written.keys,
                "metrics": output.data["sceneGraph"].get("metrics", {}),
            }
        )

    written = write_artifacts(services.artifacts, job.job_id, output.data, index=index)
    keys = {**written.keys, "result": artifact_key(job.job_id, RESULT)}
    summary = written.summary(output.summary)
    return Completion(result_keys=keys, summary=summary)


def _mark_done(services: Services, job: Job, completion: Completion) -> None:
    """Mark the job done after its last step was recorded (idempotent)."""
    try:
        if services.jobs.mark_done(job.job_id, result_keys=completion.result_keys, summary=completion.summary):
            log.info("job.done", summary=completion.summary)
            metrics.job_succeeded(job.created_at, job.job_id)
    except InvalidTransition as exc:
        # Cancelled or failed while the last step ran: the terminal state stands.
        log.info("job.not_done", reason=exc.message)

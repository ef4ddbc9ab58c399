"""A step's record hands the next step its lease, so only the first step of a chain claims.

The record of a step takes the next step's lease for the message about to carry it (its Celery
task id), and that message carries the job as the step needs it: its first try computes at once,
with no claim — one conditional write a step instead of two (tasks/runner.py). What the claim
checked, the record checks: the job's state and the attempt. The job's item, as the API writes
it, hands the first step its lease the same way (tasks/dispatch.py: submit_job), so no step of a
job claims. A message that carries no lease (an operator's retry, a redelivery that hands on
again, a job too big for a message) claims, as before.
"""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

import pipeline
from storage.errors import DependencyUnavailable
from storage.model import JobError, JobState, RecordOutcome, handed_owner, step_id
from tasks import dispatch, runner
from tasks.dispatch import cancel_job, retry_job, submit_job
from tasks.runner import Leased, Next, fail_job, run_step

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
FIRST, SECOND, THIRD = pipeline.STEPS[:3]


class Worker:
    """Delivers steps as the worker does: each next message with the task id and the job its
    step before handed on, or (``leased=None``) as a message that carries none."""

    def __init__(self, services) -> None:
        self.services = services
        self.sent: dict[str, Leased | None] = {}  # by the step that sent it
        self.claims: list[str] = []
        claim = services.jobs.claim_step

        def counted(job_id, sid, **kwargs):
            self.claims.append(sid)
            return claim(job_id, sid, **kwargs)

        services.jobs.claim_step = counted

    def deliver(self, job_id: str, step: str, *, attempt: int = 1, run: int = 0, leased=..., redelivered=False):
        if leased is ...:
            index = pipeline.STEPS.index(step)
            leased = self.sent.get(pipeline.STEPS[index - 1]) if index else None

        def hand_on(handover, lease):
            self.sent[step] = lease

        return run_step(
            self.services,
            job_id,
            step,
            attempt,
            delivery=leased.delivery if leased else f"api-{step}",
            run=run,
            leased=leased.job if leased else None,
            redelivered=redelivered,
            hand_on=hand_on,
        )


@pytest.fixture
def job_id(services) -> str:
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a: None)
    return job.job_id


def test_only_the_first_step_claims_and_each_record_hands_the_next_its_lease(services, job_id):
    worker = Worker(services)
    for step in pipeline.STEPS:
        worker.deliver(job_id, step)
        if step != pipeline.STEPS[-1]:
            following = pipeline.STEPS[pipeline.STEPS.index(step) + 1]
            sent = worker.sent[step]
            assert sent is not None and sent.job["request"] == services.jobs.get(job_id).request
            # The next step's lease, held for that very message until its record.
            leases = {lease.step_id: lease.owner for lease in services.jobs.get(job_id).leases}
            assert leases == {step_id(job_id, following): handed_owner(sent.delivery)}
    assert worker.claims == [step_id(job_id, FIRST)]
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and [s.name for s in job.steps] == list(pipeline.STEPS)
    assert job.leases == ()


def submitted_by_the_api(services, request=REQUEST) -> tuple[str, Leased | None]:
    """A job submitted as the API submits it (with the first step's lease), and what its first
    message carries (None: it carries no lease)."""
    sent: list[dict] = []
    job, _ = submit_job(
        services.jobs, request, ttl_days=1, enqueue=lambda job_id, request_id, **kw: sent.append(kw), lease_seconds=15
    )
    [options] = sent
    return job.job_id, options.get("leased")


def test_the_api_s_item_hands_the_first_step_its_lease_so_no_step_of_a_job_claims(services):
    job_id, leased = submitted_by_the_api(services)
    queued = services.jobs.get(job_id)
    assert leased is not None and leased.job == runner.job_context(queued)
    assert queued.state is JobState.QUEUED
    assert [(lease.step_id, lease.owner) for lease in queued.leases] == [
        (step_id(job_id, FIRST), handed_owner(leased.delivery))
    ]
    worker = Worker(services)
    assert worker.deliver(job_id, FIRST, leased=leased).outcome == "recorded"
    assert services.jobs.get(job_id).state is JobState.RUNNING  # its record moved the job, as a claim did
    for step in pipeline.STEPS[1:]:
        worker.deliver(job_id, step)
    assert worker.claims == []
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and [s.name for s in job.steps] == list(pipeline.STEPS)
    assert job.leases == ()


def test_the_api_s_first_message_handed_out_again_waits_for_its_first_delivery(services):
    job_id, leased = submitted_by_the_api(services)
    worker = Worker(services)
    assert worker.deliver(job_id, FIRST, leased=leased, redelivered=True).outcome == "held"
    assert worker.claims == [step_id(job_id, FIRST)]
    assert worker.deliver(job_id, FIRST, leased=leased).outcome == "recorded"


def test_a_job_cancelled_before_its_first_step_records_nothing(services):
    job_id, leased = submitted_by_the_api(services)
    cancel_job(services.jobs, job_id, reason="wrong style", by="op")
    worker = Worker(services)
    run = worker.deliver(job_id, FIRST, leased=leased)
    assert (run.next, run.outcome) == (Next.STOP, str(RecordOutcome.TERMINAL))
    job = services.jobs.get(job_id)
    assert job.state is JobState.CANCELLED and job.steps == ()


def test_a_job_too_big_for_a_message_is_sent_without_a_lease_and_its_first_step_claims(services):
    big = {**REQUEST, "prompt": "\U0001f47b" * 2000}  # 12 bytes a ghost in JSON: 24 KB
    job_id, leased = submitted_by_the_api(services, big)
    assert leased is None and services.jobs.get(job_id).leases == ()
    worker = Worker(services)
    assert worker.deliver(job_id, FIRST).outcome == "recorded"
    assert worker.claims == [step_id(job_id, FIRST)]


def test_the_first_message_goes_as_its_lease_s_task_id_with_the_job_shown_as_a_placeholder(monkeypatch):
    signatures: list = []

    class Chain:
        def __init__(self, *steps):
            signatures.extend(steps)

        def apply_async(self):
            pass

    monkeypatch.setattr(dispatch, "chain", Chain)
    leased = Leased("d" * 32, {"request": REQUEST, "createdAt": "2026-12-07T05:00:00.000Z"})
    dispatch.send_chain("job-1", "req-1", leased=leased)
    first, second = signatures[:2]
    assert first.options["task_id"] == leased.delivery
    assert first.kwargs == {"request_id": "req-1", "leased": leased.job}
    # Flower and the message's headers show a placeholder, not the prompt.
    assert "<job>" in first.options["kwargsrepr"] and "spooky" not in first.options["kwargsrepr"]
    assert second.kwargs == {"request_id": "req-1"} and "task_id" not in second.options
    signatures.clear()
    dispatch.send_chain("job-1", "req-1")
    assert signatures[0].kwargs == {"request_id": "req-1"} and "task_id" not in signatures[0].options


def test_a_message_without_the_lease_waits_for_the_one_it_was_handed_to(services, job_id):
    """A second message for the step (a redelivery of the step before that handed on again) claims
    and finds the lease held: it does not compute beside the message the lease was handed to."""
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    assert worker.deliver(job_id, SECOND, leased=None).outcome == "held"
    assert worker.deliver(job_id, SECOND).outcome == "recorded"
    assert worker.deliver(job_id, SECOND, leased=None).outcome == "duplicate"


def test_a_message_sqs_hands_out_again_claims_and_waits_for_its_first_delivery(services, job_id, monkeypatch):
    """The same message delivered again (its visibility timeout ran out while its first delivery
    still computes): it does not compute beside that run, but claims, finds the lease held, and
    takes the step over only once the lease lapses (the first run died)."""
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    again = worker.deliver(job_id, SECOND, redelivered=True)
    assert again.outcome == "held" and worker.claims[-1] == step_id(job_id, SECOND)
    [(key, (owner, _))] = services.jobs.leases.items()
    services.jobs.leases[key] = (owner, 0)  # lapsed: the first delivery's run is dead
    assert worker.deliver(job_id, SECOND, redelivered=True).outcome == "recorded"


def test_a_leased_message_of_an_attempt_retried_since_records_nothing_and_stops(services, job_id):
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    late = worker.sent[FIRST]  # delivered only after the job failed and an operator retried it
    fail_job(services, job_id, THIRD, JobError("stalled", "STALLED"))  # the retry starts at SECOND
    retry_job(services.jobs, job_id, reason="lost", by="op", enqueue=lambda *a, **k: None)
    run = worker.deliver(job_id, SECOND, leased=late)
    assert (run.next, run.outcome) == (Next.STOP, str(RecordOutcome.STALE))
    job = services.jobs.get(job_id)
    assert job.attempt == 2 and job.state is JobState.QUEUED
    assert [s.name for s in job.steps if s.attempt == 2] == []


def test_a_leased_message_of_a_cancelled_job_records_nothing_and_sends_nothing(services, job_id):
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    cancel_job(services.jobs, job_id, by="op", reason="no longer wanted")
    worker.sent.pop(SECOND, None)
    run = worker.deliver(job_id, SECOND)
    assert (run.next, run.outcome) == (Next.STOP, "terminal")
    assert SECOND not in worker.sent
    assert [s.name for s in services.jobs.get(job_id).steps] == [FIRST]


def test_a_later_try_of_a_message_whose_record_applied_hands_on_the_lease_that_record_took(services, job_id):
    """The record was applied but its answer lost (the store raised): the try sent nothing. Celery's
    retry of the message finds the step recorded and sends the message the lease was taken for,
    so the next step computes at once instead of waiting the lease out."""
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    record = services.jobs.record_step

    def applied_then_lost(*args, **kwargs):
        record(*args, **kwargs)
        raise DependencyUnavailable("the answer was lost")

    services.jobs.record_step = applied_then_lost
    leased = worker.sent[FIRST]
    with pytest.raises(DependencyUnavailable):
        worker.deliver(job_id, SECOND, leased=leased)
    assert SECOND not in worker.sent
    services.jobs.record_step = record
    again = worker.deliver(job_id, SECOND, leased=leased, run=1)  # Celery's retry: it claims
    assert again.outcome == "duplicate"
    handed = worker.sent[SECOND]
    assert handed is not None
    [lease] = services.jobs.get(job_id).leases
    assert lease.owner == handed_owner(handed.delivery)  # the lease the first try's record took
    assert worker.deliver(job_id, THIRD).outcome == "recorded"


def test_a_redelivery_of_a_recorded_step_hands_on_without_a_lease(services, job_id):
    """SQS delivers a message again whose first run may have sent on already: a lease handed on
    again would let two messages compute the next step side by side. It sends one that claims."""
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    first = worker.sent[FIRST]
    worker.deliver(job_id, FIRST, leased=None)  # the API's message, delivered again
    assert worker.sent[FIRST] is None
    assert worker.deliver(job_id, SECOND, leased=first).outcome == "recorded"


def test_a_job_too_big_to_carry_hands_on_no_lease_and_the_next_step_claims(services):
    big = {**REQUEST, "prompt": "\U0001f47b" * 2000}  # 12 bytes a ghost in JSON: 24 KB
    job, _ = submit_job(services.jobs, big, ttl_days=1, enqueue=lambda *a: None)
    worker = Worker(services)
    worker.deliver(job.job_id, FIRST)
    assert worker.sent[FIRST] is None
    assert services.jobs.get(job.job_id).leases == ()
    assert worker.deliver(job.job_id, SECOND).outcome == "recorded"
    assert worker.claims == [step_id(job.job_id, FIRST), step_id(job.job_id, SECOND)]


@pytest.mark.parametrize("context", ["a string", {"request": "not a dict", "createdAt": "x"}, {"request": {}}])
def test_a_context_that_does_not_read_as_a_job_makes_the_step_claim(services, job_id, context):
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    delivery = worker.sent[FIRST].delivery
    with capture_logs() as logs:
        run = worker.deliver(job_id, SECOND, leased=Leased(delivery, context))
    # The lease is this message's all the same: its claim owns it.
    assert run.outcome == "recorded" and worker.claims[-1] == step_id(job_id, SECOND)
    assert "step.context_unreadable" in [entry["event"] for entry in logs]


def test_a_handover_leaves_room_for_the_job_in_the_message(services, job_id, monkeypatch):
    """The job's context comes out of the handover's bound, so a message keeps its size."""
    worker = Worker(services)
    worker.deliver(job_id, FIRST)
    context = runner.job_context(services.jobs.get(job_id))
    assert context is not None
    sizes = []
    real = runner.handover
    monkeypatch.setattr(
        runner,
        "handover",
        lambda step, body, reserved=0, **kw: sizes.append(reserved) or real(step, body, reserved, **kw),
    )
    worker.deliver(job_id, SECOND)
    assert sizes == [len(json.dumps(context))]

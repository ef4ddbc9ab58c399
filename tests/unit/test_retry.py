"""Operator retry: the one exit from failed, as a new attempt that reuses completed steps."""

from __future__ import annotations

import pytest

import pipeline
from storage.errors import AttemptsExhausted, InvalidTransition
from storage.model import MAX_ATTEMPTS, JobError, JobState
from tasks.dispatch import retry_job, submit_job
from tasks.runner import FaultDrill, Next, StepRun, fail_job, run_step
from tasks.steps import job_error

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}


@pytest.fixture
def failed_at_connect_doors(services) -> str:
    """A job whose drilled connect_doors failed after two steps completed."""
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, fault_drill="fail:connect_doors", enqueue=lambda *a: None)
    for step in pipeline.STEPS[:2]:
        assert run_step(services, job.job_id, step).next is Next.CONTINUE
    with pytest.raises(FaultDrill) as drill:
        run_step(services, job.job_id, "connect_doors")
    fail_job(services, job.job_id, "connect_doors", job_error("connect_doors", drill.value))
    assert services.jobs.get(job.job_id).state is JobState.FAILED
    return job.job_id


def test_retry_requeues_from_the_first_incomplete_step_as_a_new_attempt(services, failed_at_connect_doors):
    sent = []
    job = retry_job(
        services.jobs,
        failed_at_connect_doors,
        reason="drill over",
        by="test",
        enqueue=lambda job_id, request_id, **kw: sent.append((job_id, kw)),
    )

    assert job.state is JobState.QUEUED and job.attempt == 2 and job.error is None
    assert job.attempts[-1]["fromStep"] == "connect_doors" and job.attempts[-1]["by"] == "test"
    assert sent == [(failed_at_connect_doors, {"steps": pipeline.STEPS[2:], "attempt": 2})]


def test_the_new_attempt_finishes_without_recomputing_completed_steps(services, failed_at_connect_doors, monkeypatch):
    retry_job(services.jobs, failed_at_connect_doors, reason="r", by="t", enqueue=lambda *a, **k: None)
    computed = []
    real = pipeline.run_step
    monkeypatch.setattr(pipeline, "run_step", lambda name, data: computed.append(name) or real(name, data))

    for step in pipeline.STEPS[2:]:
        assert (
            run_step(services, failed_at_connect_doors, step, attempt=2).next is Next.CONTINUE
            or step == "render_minimap"
        )

    job = services.jobs.get(failed_at_connect_doors)
    assert job.state is JobState.DONE
    assert computed == list(pipeline.STEPS[2:])  # the fault drill acts in the first attempt only
    ids = [step.step_id for step in job.steps]
    jid = failed_at_connect_doors
    assert ids == [
        f"{jid}:parse_prompt",
        f"{jid}:layout_rooms",
        f"{jid}:connect_doors",
        f"{jid}:connect_doors#2",
        f"{jid}:populate#2",
        f"{jid}:validate_level#2",
        f"{jid}:render_minimap#2",
    ]
    assert [s.status.value for s in job.steps] == ["ok", "ok", "error", "ok", "ok", "ok", "ok"]
    assert job.progress == 1.0


def test_a_message_of_the_earlier_attempt_changes_nothing(services, failed_at_connect_doors):
    retry_job(services.jobs, failed_at_connect_doors, reason="r", by="t", enqueue=lambda *a, **k: None)
    before = services.jobs.get(failed_at_connect_doors)
    assert run_step(services, failed_at_connect_doors, "populate", attempt=1) == StepRun(Next.STOP, "stale")
    assert services.jobs.get(failed_at_connect_doors) == before


@pytest.mark.parametrize("state", ["queued", "done", "cancelled"])
def test_only_a_failed_job_can_be_retried(services, state):
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a: None)
    if state == "done":
        for step in pipeline.STEPS:
            run_step(services, job.job_id, step)
    elif state == "cancelled":
        services.jobs.mark_cancelled(job.job_id, by="t", reason="r")
    with pytest.raises(InvalidTransition):
        retry_job(services.jobs, job.job_id, reason="r", by="t", enqueue=lambda *a, **k: None)
    assert services.jobs.get(job.job_id).attempt == 1


def test_retry_through_the_api_needs_the_token(client, failed_at_connect_doors, services):
    assert client.post(f"/jobs/{failed_at_connect_doors}/retry").status_code == 401
    assert services.jobs.get(failed_at_connect_doors).state is JobState.FAILED


def test_a_job_is_retried_at_most_up_to_max_attempts(services, failed_at_connect_doors):
    """The cap that bounds the job item: after MAX_ATTEMPTS attempts the retry is refused, nothing changes."""
    for _ in range(MAX_ATTEMPTS - 1):
        retry_job(services.jobs, failed_at_connect_doors, reason="again", by="t", enqueue=lambda *a, **k: None)
        services.jobs.mark_failed(failed_at_connect_doors, JobError("still broken", "STEP_FAILED"))
    before = services.jobs.get(failed_at_connect_doors)
    assert before.attempt == MAX_ATTEMPTS
    with pytest.raises(AttemptsExhausted):
        retry_job(services.jobs, failed_at_connect_doors, reason="once more", by="t", enqueue=lambda *a, **k: None)
    assert services.jobs.get(failed_at_connect_doors) == before
    assert [entry["attemptId"] for entry in before.attempts] == [
        f"{failed_at_connect_doors}:attempt:{n}" for n in range(2, MAX_ATTEMPTS + 1)
    ]

"""A step's task revoked by an operator (celery control revoke; Flower's Revoke and Terminate):
the worker acks its message and never runs it, so its job fails REVOKED, ready for retry-job.

Left alone, such a job showed running, its console page "updates live", until the stall sweeper
failed it (STALL_AFTER_SECONDS, 30 minutes by default), and retry-job refused it meanwhile.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from structlog.testing import capture_logs

import pipeline
from storage.model import JobState
from tasks import celery_app, steps
from tasks.dispatch import retry_job, submit_job
from tasks.runner import run_step

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}


def running_job(services, done: int = 2) -> str:
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a, **k: None)
    for step in pipeline.STEPS[:done]:
        run_step(services, job.job_id, step)
    return job.job_id


def test_a_revoked_step_fails_its_job_revoked_and_an_operator_can_retry_it(services):
    job_id = running_job(services)
    step = pipeline.STEPS[2]
    assert steps.fail_revoked(services, step, [job_id], {"attempt": 1}, terminated=True)
    job = services.jobs.get(job_id)
    assert job.state is JobState.FAILED and job.error.code == "REVOKED" and job.error.details == {"step": step}
    assert "by an operator" in job.error.message
    retried = retry_job(services.jobs, job_id, reason="after a revoke", by="t", enqueue=lambda *a, **k: None)
    assert retried.state is JobState.QUEUED and retried.attempt == 2


def test_a_revoked_copy_of_a_recorded_step_an_old_attempt_or_an_ended_job_changes_nothing(services):
    job_id = running_job(services)
    before = services.jobs.get(job_id)
    # A copy of a step already recorded: the job goes on.
    assert not steps.fail_revoked(services, pipeline.STEPS[1], [job_id], {}, terminated=False)
    # A message of an attempt an operator has moved past.
    assert not steps.fail_revoked(services, pipeline.STEPS[2], [job_id], {"attempt": 2}, terminated=False)
    assert services.jobs.get(job_id) == before
    # An ended job.
    services.jobs.mark_cancelled(job_id, by="t", reason="r")
    cancelled = services.jobs.get(job_id)
    assert not steps.fail_revoked(services, pipeline.STEPS[2], [job_id], {}, terminated=True)
    assert services.jobs.get(job_id) == cancelled


def test_a_store_that_fails_the_write_is_logged_not_raised(services):
    job_id = running_job(services)
    services.jobs.down = True
    with capture_logs() as logs:
        assert not steps.fail_revoked(services, pipeline.STEPS[2], [job_id], {}, terminated=True)
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["step.revoke_unrecorded"]


def test_the_apps_worker_fails_a_revoked_steps_job_off_the_consumers_loop(monkeypatch, services):
    """Connected by this app's worker (task_revoked comes in its main process): a step task's
    revocation fails its job, in a thread, on stores of the main process's own; another task's
    revocation is not ours."""
    assert celery_app.RevokedStepsStep in celery_app.create_app().steps["worker"]
    connected: list = []
    monkeypatch.setattr(celery_app.signals.task_revoked, "connect", lambda receiver, **kw: connected.append(receiver))
    monkeypatch.setattr("storage.bootstrap.build_services", lambda: services)
    revoked, calls = threading.Event(), []
    monkeypatch.setattr(steps, "fail_revoked", lambda *args, **kwargs: calls.append((args, kwargs)) or revoked.set())
    celery_app.RevokedStepsStep(SimpleNamespace())
    [receiver] = connected
    job_id = running_job(services)
    request = SimpleNamespace(args=[job_id], kwargs={"attempt": 1})
    receiver(sender=SimpleNamespace(name="other.task"), request=request, terminated=True, signum=15, expired=False)
    assert not revoked.wait(0.2)
    receiver(sender=steps.populate, request=request, terminated=True, signum=15, expired=False)
    assert revoked.wait(5)
    assert calls == [((services, "populate", [job_id], {"attempt": 1}), {"terminated": True})]

"""A step hands its chain on itself (tasks/steps.py): a send that fails never fails the job or loses it.

Celery 5.7 sends a chain's next message after the task body (``celery/app/trace.py``); a send
that fails there is the task's failure: ``on_failure`` fails the job, and the message is acked.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from celery.exceptions import Reject
from structlog.testing import capture_logs

import pipeline
from storage.model import JobState
from tasks import backoff, steps
from tasks.dispatch import submit_job

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "InternalError", "Message": "fault"}}, "SendMessage")


class FakeBroker:
    """The next step's sends: each fails while ``failing`` is above 0."""

    def __init__(self, failing: int = 0) -> None:
        self.failing = failing
        self.sent: list[tuple[str, dict]] = []
        self.kwargs: list[dict] = []  # of each message sent

    def signature(self, sig, app=None):
        broker = self

        class Sent:
            name = sig["task"]

            def apply_async(self, **options):
                if broker.failing:
                    broker.failing -= 1
                    raise throttled()
                broker.sent.append((sig["task"], options))
                broker.kwargs.append(sig.get("kwargs") or {})

        return Sent()


@pytest.fixture
def broker(monkeypatch, services) -> FakeBroker:
    fake = FakeBroker()
    monkeypatch.setattr(steps, "signature", fake.signature)
    monkeypatch.setattr(steps, "services", lambda: services)
    monkeypatch.setattr(steps.time, "sleep", lambda seconds: None)
    return fake


def chain_after(step: str, job_id: str) -> list[dict]:
    """The request's chain as Celery keeps it: the later steps' signatures, next one last."""
    later = pipeline.STEPS[pipeline.STEPS.index(step) + 1 :]
    return [{"task": f"tasks.steps.{name}", "args": [job_id], "kwargs": {}} for name in reversed(later)]


def deliver(step: str, job_id: str, broker: FakeBroker | None = None) -> list | None:
    """Run the step's task body as the worker would for one delivery; the chain left for Celery.

    With ``broker``, the delivery of the last message it sent (its task id, and the lease and
    handover it carries); else a message as the API sends the first step."""
    task = steps.STEP_TASKS[step]
    options, kwargs = (broker.sent[-1][1], broker.kwargs[-1]) if broker else ({}, {})
    task.push_request(id=options.get("task_id", f"{job_id}-{step}"), chain=chain_after(step, job_id), retries=0)
    try:
        task.run(job_id, **kwargs)
        return task.request.chain
    finally:
        task.pop_request()


@pytest.fixture
def job_id(services) -> str:
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a: None)
    return job.job_id


def test_a_step_sends_its_next_step_itself_and_leaves_celery_nothing_to_send(broker, job_id):
    assert deliver(pipeline.STEPS[0], job_id) is None
    [(name, options)] = broker.sent
    assert name == f"tasks.steps.{pipeline.STEPS[1]}"
    assert options["chain"] == chain_after(pipeline.STEPS[1], job_id)  # the rest of the chain rides along
    assert options["parent_id"] == options["root_id"] == f"{job_id}-{pipeline.STEPS[0]}"


def test_a_send_that_fails_a_few_times_is_tried_again(broker, job_id):
    broker.failing = 3
    with capture_logs() as logs:
        deliver(pipeline.STEPS[0], job_id)
    assert len(broker.sent) == 1
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["step.hand_on_retry"] * 3


def test_a_lost_hand_on_leaves_the_message_for_redelivery_and_the_redelivery_hands_on(
    broker, job_id, services, monkeypatch
):
    """The exact path: recorded, then the next message cannot be sent; not failed, not acked."""
    broker.failing = 10**6
    clock = iter(range(0, 10**6, 10))  # each look at the clock: 10 s later
    monkeypatch.setattr(steps.time, "monotonic", lambda: next(clock))
    first = pipeline.STEPS[0]
    with capture_logs() as logs, pytest.raises(Reject) as rejected:
        deliver(first, job_id)
    assert rejected.value.requeue is True  # Celery: message.reject(requeue=True) — never acked
    assert "step.hand_on_failed" in [entry["event"] for entry in logs]
    job = services.jobs.get(job_id)
    assert job.state is JobState.RUNNING and [s.name for s in job.steps] == [first]  # recorded, not failed

    # SQS delivers the same message again: the step is recorded, so it only hands on.
    broker.failing = 0
    deliver(first, job_id)
    assert [name for name, _ in broker.sent] == [f"tasks.steps.{pipeline.STEPS[1]}"]
    for step in pipeline.STEPS[1:]:
        deliver(step, job_id, broker)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and [s.name for s in job.steps] == list(pipeline.STEPS)


def test_a_hand_on_outlasts_a_20_second_outage():
    """The tries span HAND_ON_SECONDS: a send failing for 20 s is still sent by the same run."""
    assert steps.HAND_ON_SECONDS >= 20 + steps.HAND_ON_BACKOFF_MAX_SECONDS


def test_the_step_retries_outlast_a_20_second_outage():
    """DependencyUnavailable: max_retries waits of the step's back-off add up to more than 20 s, however drawn."""
    policy = steps.app.conf.step_retry_policy
    least = backoff.least_total(policy["max_retries"], policy["retry_backoff"], policy["retry_backoff_max"])
    assert least > 20


def test_a_step_whose_time_runs_out_while_it_hands_on_is_left_to_the_redelivery(broker, job_id, services, monkeypatch):
    """Not failed as timed out: the step is recorded, only its hand-on is missing."""
    from celery.exceptions import SoftTimeLimitExceeded

    def out_of_time(seconds):
        raise SoftTimeLimitExceeded()

    broker.failing = 1
    monkeypatch.setattr(steps.time, "sleep", out_of_time)
    with pytest.raises(Reject) as rejected:
        deliver(pipeline.STEPS[0], job_id)
    assert rejected.value.requeue is True
    assert services.jobs.get(job_id).state is JobState.RUNNING


@pytest.mark.parametrize("retries", range(8))
def test_a_transient_error_is_retried_after_a_wait_from_the_upper_half_of_its_ceiling(retries, monkeypatch, services):
    from storage.errors import DependencyUnavailable

    def unavailable(*args, **kwargs):
        raise DependencyUnavailable("dynamodb is unavailable (InternalServerError)")

    asked = []
    task = steps.STEP_TASKS[pipeline.STEPS[2]]
    monkeypatch.setattr(steps, "run_step", unavailable)
    monkeypatch.setattr(steps, "services", lambda: services)
    monkeypatch.setattr(task, "retry", lambda **options: asked.append(options) or RuntimeError("retry"))
    task.push_request(id="t", retries=retries, chain=[])
    try:
        with pytest.raises(RuntimeError):
            task.run("job")
    finally:
        task.pop_request()
    ceiling = backoff.ceiling(retries + 1, 1, 10)
    assert ceiling / 2 <= asked[0]["countdown"] <= ceiling
    assert isinstance(asked[0]["exc"], DependencyUnavailable)

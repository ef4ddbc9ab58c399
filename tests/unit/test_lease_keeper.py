"""A running step renews its lease, so a live run keeps its step and a dead one's lapses soon.

The lease (the visibility timeout in production) is shrunk to a fraction of a second here; the
renewals run on the real clock.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from structlog.testing import capture_logs

import pipeline
from storage.model import ClaimOutcome, step_id
from storage.settings import Settings
from tasks import runner
from tasks.dispatch import submit_job
from tasks.runner import Next, run_step
from tasks.steps import lease_retries

LEASE = 0.3  # seconds: a renewal every 0.1 s
REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
FIRST = pipeline.STEPS[0]


@pytest.fixture(autouse=True)
def short_lease(monkeypatch):
    monkeypatch.setattr(runner, "lease_seconds", lambda settings: LEASE)


@pytest.fixture
def job_id(services) -> str:
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a: None)
    return job.job_id


def slow_first_step(monkeypatch, seconds: float) -> threading.Event:
    """Make the first step take ``seconds``; the event is set once it has started computing."""
    started = threading.Event()
    real = pipeline.run_step

    def slow(name, previous):
        if name == FIRST:
            started.set()
            time.sleep(seconds)
        return real(name, previous)

    monkeypatch.setattr(pipeline, "run_step", slow)
    return started


def run_in_thread(services, job_id: str) -> tuple[threading.Thread, list]:
    results: list = []
    thread = threading.Thread(target=lambda: results.append(run_step(services, job_id, FIRST, delivery="m1")))
    thread.start()
    return thread, results


def test_a_step_longer_than_its_lease_keeps_it_while_it_runs(services, job_id, monkeypatch):
    """Without renewals, the lease lapses 0.3 s after the claim and a second run takes the step over."""
    started = slow_first_step(monkeypatch, 1.0)
    thread, results = run_in_thread(services, job_id)
    assert started.wait(5)
    time.sleep(3 * LEASE)  # three leases past the claim, the step still computing

    rival = services.jobs.claim_step(job_id, step_id(job_id, FIRST), attempt=1, owner="m2/0000/x", lease_seconds=1)

    assert rival.outcome is ClaimOutcome.HELD
    thread.join(5)
    assert results[0].next is Next.CONTINUE and results[0].outcome == "recorded"
    assert services.jobs.calls["renew_lease"] >= 5


def test_renewals_stop_when_the_run_ends(services, job_id, monkeypatch):
    slow_first_step(monkeypatch, 0.5)
    run_step(services, job_id, FIRST)
    renewals = services.jobs.calls["renew_lease"]
    assert renewals >= 2

    time.sleep(3 * LEASE)

    assert services.jobs.calls["renew_lease"] == renewals
    assert services.jobs.get(job_id).leases == ()  # the record removed it


def test_a_step_shorter_than_a_third_of_its_lease_makes_no_renewal(services, job_id, monkeypatch):
    monkeypatch.setattr(runner, "lease_seconds", lambda settings: 15.0)
    run_step(services, job_id, FIRST)
    time.sleep(0.2)
    assert services.jobs.calls["renew_lease"] == 0


def test_no_renewal_past_the_steps_hard_time_limit(services, job_id, monkeypatch):
    """A run hung in its step must not keep the step for ever: renewals end at its time limit."""
    monkeypatch.setattr(runner, "LEASE_MARGIN_SECONDS", 0)
    services = dataclasses.replace(services, settings=dataclasses.replace(services.settings, step_time_limit_seconds=1))
    sid = step_id(job_id, FIRST)
    services.jobs.claim_step(job_id, sid, attempt=1, owner="m1/0000/a", lease_seconds=LEASE)
    with runner._LeaseKeeper(services, job_id, sid, owner="m1/0000/a", step=FIRST):
        time.sleep(2.0)  # hung well past its 1 s limit
        renewals = services.jobs.calls["renew_lease"]
        assert 5 <= renewals <= 10
        rival = services.jobs.claim_step(job_id, sid, attempt=1, owner="m2/0000/b", lease_seconds=LEASE)
    assert rival.outcome is ClaimOutcome.CLAIMED and rival.resumed is True


def test_a_failed_renewal_is_logged_and_the_next_one_keeps_the_lease(services, job_id, monkeypatch):
    """A store that is down for less than a lease costs the run nothing; the failure is a WARNING."""
    started = slow_first_step(monkeypatch, 1.0)
    with capture_logs() as logs:
        thread, results = run_in_thread(services, job_id)
        assert started.wait(5)
        services.jobs.down = True
        time.sleep(0.15)  # one renewal fails
        services.jobs.down = False
        thread.join(5)
    assert results[0].outcome == "recorded"
    failed = [entry for entry in logs if entry["event"] == "step.lease_renew_failed"]
    assert failed and all(entry["log_level"] == "warning" and entry["step"] == FIRST for entry in failed)
    assert "dynamodb is unreachable" in failed[0]["error"]


def test_a_lease_taken_over_is_not_renewed_again(services, job_id, monkeypatch):
    """Once another run holds the step (this one's lease lapsed), this run stops renewing."""
    sid = step_id(job_id, FIRST)
    services.jobs.claim_step(job_id, sid, attempt=1, owner="m1/0000/a", lease_seconds=LEASE)
    services.jobs.leases[(job_id, sid)] = ("m2/0000/b", int(time.time() * 1000) + 60_000)
    with capture_logs() as logs, runner._LeaseKeeper(services, job_id, sid, owner="m1/0000/a", step=FIRST):
        time.sleep(0.5)
    assert services.jobs.calls["renew_lease"] == 1
    assert services.jobs.leases[(job_id, sid)][0] == "m2/0000/b"
    assert [entry["event"] for entry in logs] == ["step.lease_not_renewed"]


@pytest.mark.parametrize(("visibility", "step_limit"), [(15, 120), (5, 3), (300, 120), (15, 290)])
def test_a_delivery_waits_out_a_live_runs_renewals_before_giving_up(monkeypatch, visibility, step_limit):
    """Giving up on a held step fails the job: the waits allowed must outlast a live run's renewals."""
    monkeypatch.undo()  # the real lease, from the settings
    settings = Settings.from_env(
        {"ENV": "local", "VISIBILITY_TIMEOUT_SECONDS": str(visibility), "STEP_TIME_LIMIT_SECONDS": str(step_limit)}
    )
    lease = runner.lease_seconds(settings)
    assert lease == min(visibility, step_limit + runner.LEASE_MARGIN_SECONDS)
    shortest_wait = lease * 2 / 3  # a held lease was renewed at most a third of a lease ago
    assert lease_retries(settings) * shortest_wait >= step_limit + runner.LEASE_MARGIN_SECONDS + 2 * shortest_wait

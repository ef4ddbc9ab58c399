"""`celery -A tasks cancel-job` and `retry-job`: what the operator's terminal shows, with fakes of our stores."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import textwrap

import pytest

import pipeline
from storage import bootstrap
from storage.errors import DependencyUnavailable
from storage.model import JobError, JobState
from tasks import cli as operator_cli
from tasks import dispatch, metrics
from tasks.dispatch import submit_job
from tests.fakes import AppliedThenFails


@pytest.fixture
def cancel_one(services, monkeypatch, capfd):
    """Run cancel-job on a queued job of the fake store; (exit code, everything the terminal got)."""
    monkeypatch.setattr(bootstrap, "build_services", lambda *a, **k: services)
    job, _ = submit_job(
        services.jobs, {"prompt": "a hall", "seed": 1, "style": "doom"}, ttl_days=1, enqueue=lambda *a, **k: None
    )
    capfd.readouterr()

    def run() -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            operator_cli.cancel_job.main([job.job_id, "--reason", "wrong style"], standalone_mode=True)
        captured = capfd.readouterr()
        return exited.value.code, captured.out + captured.err

    yield job.job_id, run
    metrics.configure("GhostEngine")  # the services' default again, for the tests that follow


def test_cancel_job_prints_one_line_and_no_emf_json(cancel_one, services, monkeypatch):
    monkeypatch.delenv("AWS_EMF_ENVIRONMENT", raising=False)
    job_id, run = cancel_one
    code, terminal = run()
    assert code == 0
    assert terminal.strip().splitlines()[-1] == f"{job_id}: cancelled", terminal
    assert "_aws" not in terminal and "CloudWatchMetrics" not in terminal
    assert services.jobs.get(job_id).state.value == "cancelled"


def test_an_operator_who_sets_aws_emf_environment_still_gets_the_metric(cancel_one, monkeypatch):
    monkeypatch.setenv("AWS_EMF_ENVIRONMENT", "Local")
    _job_id, run = cancel_one
    code, terminal = run()
    assert code == 0
    (line,) = [json.loads(text) for text in terminal.splitlines() if text.startswith("{")]
    assert line["JobCancelled"] == 1


def test_the_services_still_emit_metrics_on_stdout(capfd):
    """configure() without operator=True (the API, the worker) prints EMF lines as before."""
    code = textwrap.dedent("""
        from tasks import metrics
        metrics.configure("GhostEngineTest", operator=True)
        metrics.configure("GhostEngineTest")
        metrics.job_cancelled("j")
    """)
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(out.splitlines()[-1])["JobCancelled"] == 1


# --- retry-job, when the store answers the retry's write with an error -----------------------


@pytest.fixture
def retry_one(services, monkeypatch, capfd):
    """Run retry-job on a failed job of the fake store; (job id, run, what was sent)."""
    monkeypatch.setattr(bootstrap, "build_services", lambda *a, **k: services)
    sent: list = []
    enqueue = lambda job_id, request_id, **kw: sent.append(kw)  # noqa: E731 - a one-line fake enqueue
    monkeypatch.setattr(dispatch, "retry_job", functools.partial(dispatch.retry_job, enqueue=enqueue))
    # The look lasts longer than the command would without waiting for it.
    monkeypatch.setattr(dispatch, "SETTLE_PAUSES", (0.3, 0.3))
    job, _ = submit_job(
        services.jobs, {"prompt": "a hall", "seed": 1, "style": "doom"}, ttl_days=1, enqueue=lambda *a, **k: None
    )
    services.jobs.mark_failed(job.job_id, JobError("boom", "X"))
    capfd.readouterr()

    def run() -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            operator_cli.retry_job.main([job.job_id], standalone_mode=True)
        captured = capfd.readouterr()
        return exited.value.code, captured.out + captured.err

    yield job.job_id, run, sent
    metrics.configure("GhostEngine")


def test_a_retry_written_but_answered_with_an_error_is_sent_before_the_command_exits(retry_one, services):
    # Without waiting, the command's exit ended the look that sends it: the job stayed queued with
    # no message until an operator asked again.
    job_id, run, sent = retry_one
    AppliedThenFails(services.jobs, "mark_retry")
    code, terminal = run()
    assert sent == [{"steps": pipeline.STEPS, "attempt": 2}], terminal
    assert code == 0
    lines = terminal.strip().splitlines()
    assert f"{job_id}: dynamodb is unavailable (InternalError): finding out whether the retry was written..." in lines
    assert f"{job_id}: queued as attempt 2 from {pipeline.STEPS[0]} (the retry was written after all)" in lines
    assert services.jobs.get(job_id).state is JobState.QUEUED


def test_a_retry_written_after_all_and_already_under_way_is_not_sent_again(retry_one, services, monkeypatch):
    job_id, run, sent = retry_one
    real = AppliedThenFails(services.jobs, "mark_retry").real

    def applied_and_picked_up(*args, **kwargs):
        real(*args, **kwargs)  # written; then another's resend started it, before the look
        services.jobs.jobs[job_id] = dataclasses.replace(services.jobs.jobs[job_id], state=JobState.RUNNING)
        raise DependencyUnavailable("dynamodb is unavailable (InternalError)")

    monkeypatch.setattr(services.jobs, "mark_retry", applied_and_picked_up)
    code, terminal = run()
    assert code == 0 and sent == []  # its chain is on its way already: a second one would be waste
    first = pipeline.STEPS[0]
    assert f"{job_id}: queued as attempt 2 from {first} (written after all, sent already), now running" in terminal


def test_a_retry_written_after_all_whose_send_fails_fails_the_command(retry_one, services, monkeypatch):
    job_id, run, sent = retry_one
    AppliedThenFails(services.jobs, "mark_retry")

    def refused(job_id, request_id, **kw):
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(dispatch, "retry_job", functools.partial(dispatch.retry_job.func, enqueue=refused))
    code, terminal = run()
    assert code == 1
    assert terminal.strip().splitlines()[-1] == (
        f"{job_id}: not retried: written after all, but its messages could not be sent: the job is failed again"
    )
    assert services.jobs.get(job_id).state is JobState.FAILED


def test_a_retry_answered_with_an_error_and_not_written_fails_the_command(retry_one, services, monkeypatch):
    job_id, run, sent = retry_one

    def refused(job_id, *, attempt):
        raise DependencyUnavailable("dynamodb is unavailable (InternalError)")

    monkeypatch.setattr(services.jobs, "mark_retry", refused)
    code, terminal = run()
    assert code == 1 and sent == []
    assert terminal.strip().splitlines()[-1] == f"{job_id}: not retried: the write was not applied"
    assert services.jobs.get(job_id).state is JobState.FAILED


def test_a_retry_whose_store_stays_down_says_so_and_fails_the_command(retry_one, services, monkeypatch):
    job_id, run, sent = retry_one
    AppliedThenFails(services.jobs, "mark_retry")
    real = services.jobs.mark_retry

    def then_down(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            services.jobs.down = True  # for the whole look

    monkeypatch.setattr(services.jobs, "mark_retry", then_down)
    code, terminal = run()
    services.jobs.down = False
    assert code == 1 and sent == []
    assert terminal.strip().splitlines()[-1] == (
        f"{job_id}: not known whether retried: run retry-job again once the store answers"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give the JOB_ID... of the jobs to retry, or --all-failed"),
        (["--all-failed", "c69ec1dc-eac6-4aea-8a49-310854dc2908"], "give JOB_ID... or --all-failed, not both"),
        (["c69ec1dc-eac6-4aea-8a49-310854dc2908", "--since", "2h"], "--since goes with --all-failed"),
    ],
    ids=["neither", "both", "since-alone"],
)
def test_retry_job_says_which_usage_it_was_given_wrong(args, says, capfd):
    with pytest.raises(SystemExit) as exited:
        operator_cli.retry_job.main(args, standalone_mode=True)
    assert exited.value.code == 2  # a usage error, before any store is built
    assert f"Error: {says}" in capfd.readouterr().err

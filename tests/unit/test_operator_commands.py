"""`celery -A tasks cancel-job` and `retry-job`: what the operator's terminal shows, with fakes of our stores."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import textwrap

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import pipeline
from storage import bootstrap
from storage.aws_errors import translated
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


def _send_fails_and_so_does_the_failure(services, monkeypatch, sends_that_fail: int) -> list:
    """The retry is written; its first ``sends_that_fail`` sends fail, and the write that would
    fail the job is refused once: the job is queued with no message (tasks/dispatch.py: _enqueue_or_fail)."""
    sent: list = []

    def flaky(job_id, request_id, **kw):
        if len(sent) < sends_that_fail:
            sent.append(None)
            raise RuntimeError("SQS is down")
        sent.append(kw)

    monkeypatch.setattr(dispatch, "retry_job", functools.partial(dispatch.retry_job.func, enqueue=flaky))
    refused = services.jobs.mark_failed

    def refused_once(*args, **kwargs):
        monkeypatch.setattr(services.jobs, "mark_failed", refused)
        raise DependencyUnavailable("dynamodb is unavailable (InternalError)")

    monkeypatch.setattr(services.jobs, "mark_failed", refused_once)
    return sent


def test_a_retry_neither_sent_nor_failed_is_sent_before_the_command_exits(retry_one, services, monkeypatch):
    # Without waiting for that look too, the command said "not retried" and exited, and its exit
    # ended the look: the job stayed queued with no message until the stall sweep failed it.
    job_id, run, _ = retry_one
    sent = _send_fails_and_so_does_the_failure(services, monkeypatch, sends_that_fail=1)
    code, terminal = run()
    assert sent == [None, {"steps": pipeline.STEPS, "attempt": 2}], terminal
    assert code == 0
    lines = terminal.strip().splitlines()
    assert (
        f"{job_id}: could not send the job (RuntimeError), nor could the job be failed: sending it again..."
    ) in lines, terminal
    assert f"{job_id}: queued as attempt 2 from {pipeline.STEPS[0]} (sent at a later try)" in lines
    assert services.jobs.get(job_id).state is JobState.QUEUED


def test_a_retry_neither_sent_nor_failed_whose_sends_keep_failing_fails_the_command(retry_one, services, monkeypatch):
    job_id, run, _ = retry_one
    sent = _send_fails_and_so_does_the_failure(services, monkeypatch, sends_that_fail=99)
    code, terminal = run()
    assert code == 1 and len(sent) == 1 + len(dispatch.SETTLE_PAUSES)  # the command's, then one a look
    assert terminal.strip().splitlines()[-1] == (
        f"{job_id}: not retried: its messages could not be sent: the job is failed again"
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


# --- what an operator sees when the command cannot act at all ---------------------------------

UNKNOWN_ID = "c69ec1dc-eac6-4aea-8a49-310854dc2908"


def run_command(capfd, command, args: list[str]) -> tuple[int, list[str]]:
    """Run a celery operator command as its shell would: its exit code and the terminal's lines."""
    with pytest.raises(SystemExit) as exited:
        command.main(args, standalone_mode=True)
    captured = capfd.readouterr()
    return exited.value.code, (captured.out + captured.err).strip().splitlines()


def unreachable(*args, **kwargs):
    """A store call that gets no answer, translated as the DynamoDB adapter translates it."""
    with translated("dynamodb", "GetItem"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")


def no_table(*args, **kwargs):
    with translated("dynamodb", "UpdateItem"):
        raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "UpdateItem")


@pytest.fixture
def store(services, monkeypatch):
    """The commands' services are the fake's; a failed job in it. (services, that job's id)"""
    monkeypatch.setattr(bootstrap, "build_services", lambda *a, **k: services)
    job, _ = submit_job(
        services.jobs, {"prompt": "a hall", "seed": 1, "style": "doom"}, ttl_days=1, enqueue=lambda *a, **k: None
    )
    services.jobs.mark_failed(job.job_id, JobError("boom", "X"))
    yield services, job.job_id
    metrics.configure("GhostEngine")


@pytest.mark.parametrize("command", [operator_cli.cancel_job, operator_cli.retry_job], ids=["cancel", "retry"])
@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"ENV": "prod"}, "ARTIFACTS_BUCKET must be set outside ENV=local"),
        ({"AWS_MAX_ATTEMPTS": "abc"}, "AWS_MAX_ATTEMPTS is not valid"),
        ({"VISIBILITY_TIMEOUT_SECONDS": "1"}, "VISIBILITY_TIMEOUT_SECONDS must be between 5 and 43200, got 1"),
        ({"AWS_ENDPOINT_URL": "notaurl"}, "AWS_ENDPOINT_URL is not valid: notaurl"),
        ({"JOBS_TABLE_NAME": "a b"}, "JOBS_TABLE_NAME is not valid: 'a b'"),
    ],
    ids=["prod-without-bucket", "not-a-number", "out-of-range", "endpoint-not-a-url", "table-name"],
)
def test_a_bad_setting_is_one_line_naming_it_and_a_usage_error(command, environ, says, monkeypatch, capfd):
    monkeypatch.delenv("ARTIFACTS_BUCKET", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    code, lines = run_command(capfd, command, [UNKNOWN_ID])
    assert code == 2  # nothing was tried: the command line (its environment) must change
    assert len(lines) == 1 and lines[0].startswith(f"Error: {says}"), lines


def test_retry_all_failed_against_an_unreachable_store_says_so_in_one_line_naming_the_endpoint(
    store, monkeypatch, capfd
):
    services, _ = store
    elsewhere = dataclasses.replace(services.settings, aws_endpoint_url="http://127.0.0.1:1")
    monkeypatch.setattr(bootstrap, "build_services", lambda *a, **k: dataclasses.replace(services, settings=elsewhere))
    monkeypatch.setattr(services.jobs, "list_jobs", unreachable)
    code, lines = run_command(capfd, operator_cli.retry_job, ["--all-failed", "--dry-run"])
    assert code == 1
    assert lines == ["failed jobs not listed: dynamodb is unreachable at http://127.0.0.1:1"]


@pytest.mark.parametrize(
    ("endpoint", "says", "hint"),
    [
        ("http://127.0.0.1:4566", "at http://127.0.0.1:4566", True),  # the local default: the stack may be down
        ("http://127.0.0.1:4700", "at http://127.0.0.1:4700", False),  # make run's exports pasted
        (None, "at AWS (us-east-1)", False),
    ],
    ids=["local-default", "pasted", "aws"],
)
def test_an_unreachable_store_is_named_with_its_endpoint(store, monkeypatch, capfd, endpoint, says, hint):
    services, job_id = store
    settings = dataclasses.replace(services.settings, aws_endpoint_url=endpoint, region="us-east-1")
    monkeypatch.setattr(bootstrap, "build_services", lambda *a, **k: dataclasses.replace(services, settings=settings))
    monkeypatch.setattr(services.jobs, "mark_cancelled", unreachable)
    code, lines = run_command(capfd, operator_cli.cancel_job, [job_id, job_id])
    assert code == 1
    assert lines[:2] == [f"{job_id}: not cancelled: dynamodb is unreachable {says}"] * 2
    if hint:  # once, after every job's line
        assert len(lines) == 3 and lines[2].startswith("hint: http://127.0.0.1:4566 is the default endpoint")
        assert "make run" in lines[2]
    else:
        assert len(lines) == 2


def test_a_table_that_does_not_exist_is_named(store, monkeypatch, capfd):
    services, job_id = store
    monkeypatch.setattr(services.jobs, "mark_cancelled", no_table)
    code, lines = run_command(capfd, operator_cli.cancel_job, [job_id])
    assert code == 1
    assert lines == [f"{job_id}: not cancelled: table {services.settings.jobs_table_name} does not exist"]


@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("", "'': use a number and a unit"),  # an unset $WINDOW in a script: never "every failed job"
        ("  ", "'  ': use a number and a unit"),
        ("0h", "0h: a window of nothing"),
        ("366d", "366d: at most 365d"),
        ("99999999999d", "99999999999d: at most 365d"),
        ("9" * 5000 + "s", "at most 365d"),
    ],
    ids=["empty", "blank", "zero", "past-ttl", "overflow", "thousands-of-digits"],
)
def test_a_since_that_is_empty_or_out_of_range_is_a_usage_error(store, since, says, capfd):
    services, job_id = store
    code, lines = run_command(capfd, operator_cli.retry_job, ["--all-failed", "--since", since])
    assert code == 2
    assert lines[-1].startswith("Error: Invalid value for --since: ") and says in lines[-1], lines
    assert services.jobs.get(job_id).state is JobState.FAILED  # nothing retried


def test_since_at_the_bound_is_taken(store, capfd):
    _services, job_id = store
    code, lines = run_command(capfd, operator_cli.retry_job, ["--all-failed", "--since", "365d", "--dry-run"])
    assert code == 0 and lines == [f"{job_id}: would retry from {pipeline.STEPS[0]} as attempt 2 (failed)"]


@pytest.mark.parametrize("command", [operator_cli.cancel_job, operator_cli.retry_job], ids=["cancel", "retry"])
def test_a_malformed_job_id_is_a_usage_error_and_nothing_is_done(store, command, capfd):
    services, job_id = store
    code, lines = run_command(capfd, command, [job_id, "notanid"])
    assert code == 2
    assert lines[-1] == "Error: Invalid value for JOB_ID: not a job id: notanid; nothing was done"
    assert services.jobs.get(job_id).state is JobState.FAILED and services.jobs.get(job_id).attempt == 1


@pytest.mark.parametrize("command", [operator_cli.cancel_job, operator_cli.retry_job], ids=["cancel", "retry"])
def test_a_well_formed_unknown_job_id_is_a_refusal(store, command, capfd):
    code, lines = run_command(capfd, command, [UNKNOWN_ID])
    assert code == 1 and len(lines) == 1 and lines[0].endswith(f": no job {UNKNOWN_ID}"), lines

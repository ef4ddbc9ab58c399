"""`celery -A tasks cancel-job`: what the operator's terminal shows, with fakes of our stores."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from storage import bootstrap
from tasks import cli as operator_cli
from tasks import metrics
from tasks.dispatch import submit_job


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

"""The EMF lines CloudWatch will extract metrics from: names, units, dimensions, namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tasks import metrics


@pytest.fixture
def emitted(capsys):
    metrics.configure("GhostEngineTest")

    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    return lines


def definitions(line: dict) -> dict:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    return directive


def test_step_duration_has_the_step_dimension(emitted):
    metrics.step_succeeded("layout_rooms", 42, "job-1")
    (line,) = emitted()
    directive = definitions(line)
    assert directive["Namespace"] == "GhostEngineTest"
    assert directive["Dimensions"] == [["Service", "Step"]]
    assert directive["Metrics"] == [{"Name": "StepDurationMs", "Unit": "Milliseconds"}]
    assert line["StepDurationMs"] == 42 and line["Step"] == "layout_rooms" and line["jobId"] == "job-1"


def test_job_outcomes_are_counts(emitted):
    metrics.job_succeeded("2020-01-01T00:00:00.000Z", "j")
    metrics.job_failed("FAULT_DRILL", "j")
    metrics.job_cancelled("j")
    metrics.step_failed("populate", "FAULT_DRILL", "j")
    succeeded, failed, cancelled, step_error = emitted()
    assert succeeded["JobSucceeded"] == 1 and succeeded["JobDurationMs"] > 0
    assert {m["Name"]: m["Unit"] for m in definitions(succeeded)["Metrics"]} == {
        "JobSucceeded": "Count",
        "JobDurationMs": "Milliseconds",
    }
    assert failed["JobFailed"] == 1 and failed["code"] == "FAULT_DRILL"
    assert cancelled["JobCancelled"] == 1
    assert step_error["StepErrors"] == 1 and definitions(step_error)["Dimensions"] == [["Service", "Step"]]


def test_a_metric_emitted_before_configure_goes_to_stdout_and_configure_still_applies():
    """In a fresh process, a metric emitted before configure() (as the runner's unit tests do) goes to
    stdout, and configure() still applies after it. The library caches the first environment it
    resolves; left to itself that is a probe of EC2's metadata endpoint, then its agent's TCP sink,
    which every later metric of the process (and test) would inherit."""
    code = textwrap.dedent("""
        from tasks import metrics
        metrics.step_failed("populate", "X", "j")
        metrics.configure("GhostEngineTest")
        metrics.job_cancelled("j")
    """)
    env = {key: value for key, value in os.environ.items() if key != "AWS_EMF_ENVIRONMENT"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line.get("StepErrors", line.get("JobCancelled")) for line in lines] == [1, 1], done.stderr
    assert definitions(lines[1])["Namespace"] == "GhostEngineTest"
    assert "socket" not in done.stderr

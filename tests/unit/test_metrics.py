"""The EMF lines CloudWatch will extract metrics from: names, units, dimensions, namespace."""

from __future__ import annotations

import json

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

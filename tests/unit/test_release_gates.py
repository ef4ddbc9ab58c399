"""The deploy workflow's gates (deploy/release_gates.py) on the shapes ECS and ECR return."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "release_gates", Path(__file__).parents[2] / "deploy" / "release_gates.py"
)
gates = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gates)

OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ghost-engine-prod-api:41"
NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ghost-engine-prod-api:42"
WORKER = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ghost-engine-prod-worker:42"


def service(name: str, *deployments: dict) -> dict:
    return {"serviceName": name, "status": "ACTIVE", "deployments": list(deployments)}


def deployment(status: str, arn: str, state: str, reason: str = "") -> dict:
    return {
        "id": f"ecs-svc/{abs(hash((status, arn)))}",
        "status": status,
        "taskDefinition": arn,
        "rolloutState": state,
        "rolloutStateReason": reason,
        "runningCount": 2,
        "desiredCount": 2,
    }


def test_completed_rollouts_of_the_new_task_definitions_pass():
    described = {
        "services": [
            service("api", deployment("PRIMARY", NEW, "COMPLETED", "ECS deployment ecs-svc/1 completed.")),
            service("worker", deployment("PRIMARY", WORKER, "COMPLETED")),
        ],
        "failures": [],
    }
    assert gates.rollout_problems(described, {"api": NEW, "worker": WORKER}) == []


def test_a_circuit_breaker_rollback_fails_although_the_service_is_stable():
    # After a rollback ECS makes the old task definition PRIMARY again, COMPLETED and stable:
    # `aws ecs wait services-stable` succeeds, so only the ARN tells.
    described = {
        "services": [
            service(
                "api",
                deployment("PRIMARY", OLD, "COMPLETED", "rolled back to ghost-engine-prod-api:41"),
                deployment("ACTIVE", NEW, "FAILED", "tasks failed to start"),
            ),
        ]
    }
    (problem,) = gates.rollout_problems(described, {"api": NEW})
    assert problem.startswith("api: rolled back") and OLD in problem and NEW in problem


def test_a_rollout_still_in_progress_fails():
    described = {
        "services": [service("api", deployment("PRIMARY", NEW, "IN_PROGRESS"), deployment("ACTIVE", OLD, "COMPLETED"))]
    }
    (problem,) = gates.rollout_problems(described, {"api": NEW})
    assert "IN_PROGRESS" in problem


def test_a_failed_rollout_a_missing_service_and_api_failures_all_fail():
    described = {
        "services": [service("api", deployment("PRIMARY", NEW, "FAILED", "circuit breaker"))],
        "failures": [
            {"arn": "arn:aws:ecs:eu-west-1:123456789012:service/ghost-engine-prod/flower", "reason": "MISSING"}
        ],
    }
    problems = gates.rollout_problems(described, {"api": NEW, "worker": WORKER})
    assert len(problems) == 3
    assert any("MISSING" in p for p in problems) and any("worker: not found" in p for p in problems)
    assert any("FAILED" in p for p in problems)


def scan(status: str = "COMPLETE", **counts: int) -> dict:
    findings = [
        {"name": f"CVE-2026-{n}", "severity": severity} for severity, count in counts.items() for n in range(count)
    ]
    return {
        "imageScanStatus": {"status": status, "description": "The scan was completed successfully."},
        "imageScanFindings": {"findingSeverityCounts": counts, "findings": findings},
    }


def test_high_findings_pass_and_critical_ones_stop_the_deploy():
    assert gates.scan_problems(scan(HIGH=3, MEDIUM=9)) == []
    (problem,) = gates.scan_problems(scan(CRITICAL=2, HIGH=1))
    assert "2 CRITICAL" in problem and "CVE-2026-0" in problem


@pytest.mark.parametrize("status", ["FAILED", "IN_PROGRESS", "UNSUPPORTED_IMAGE"])
def test_a_scan_that_did_not_complete_stops_the_deploy(status):
    assert gates.scan_problems(scan(status))


def test_the_command_line_exits_non_zero_with_a_github_error_line(tmp_path, capsys):
    (tmp_path / "services.json").write_text(
        json.dumps({"services": [service("api", deployment("PRIMARY", OLD, "COMPLETED"))]})
    )
    (tmp_path / "expected.json").write_text(json.dumps({"api": NEW}))
    assert gates.main(["rollout", str(tmp_path / "services.json"), str(tmp_path / "expected.json")]) == 1
    assert capsys.readouterr().err.startswith("::error::api: rolled back")
    (tmp_path / "findings.json").write_text(json.dumps(scan(HIGH=1)))
    assert gates.main(["scan", str(tmp_path / "findings.json")]) == 0
    assert gates.main(["bogus"]) == 2

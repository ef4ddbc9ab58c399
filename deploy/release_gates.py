"""The deploy workflow's gates: a critical image finding, or a rollout that did not land, fails the run.

    python3 deploy/release_gates.py scan FINDINGS_JSON
        FINDINGS_JSON: `aws ecr describe-image-scan-findings` output. Fails on any CRITICAL finding
        (or a scan that did not complete).
    python3 deploy/release_gates.py rollout SERVICES_JSON EXPECTED_JSON
        SERVICES_JSON: `aws ecs describe-services` output; EXPECTED_JSON: `terraform output -json
        ecs_task_definition_arns` (service name -> the task definition ARN this apply registered).
        `aws ecs wait services-stable` also succeeds after the deployment circuit breaker rolled a
        service back to its previous task definition; this fails unless each service's PRIMARY
        deployment runs the new ARN with rolloutState COMPLETED.

Standard library only: it runs on a bare CI runner. Exit status 0 when the gate passes, 1 (with
one line per problem on stderr) when it does not, 2 on bad arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def scan_problems(findings: dict) -> list[str]:
    """Why an image must not be deployed: an incomplete scan, or CRITICAL findings."""
    status = findings.get("imageScanStatus", {}).get("status")
    if status != "COMPLETE":
        reason = findings.get("imageScanStatus", {}).get("description", "")
        return [f"image scan is {status or 'missing'}, not COMPLETE {reason}".rstrip()]
    result = findings.get("imageScanFindings", {})
    critical = result.get("findingSeverityCounts", {}).get("CRITICAL", 0)
    if not critical:
        return []
    names = sorted({f.get("name", "?") for f in result.get("findings", []) if f.get("severity") == "CRITICAL"})
    return [f"{critical} CRITICAL finding(s) in the image: {', '.join(names) or 'see the ECR console'}"]


def rollout_problems(described: dict, expected: dict[str, str]) -> list[str]:
    """Why the rollout did not land: a service rolled back, still rolling, failed, or missing."""
    problems = [f"{f.get('arn', '?')}: {f.get('reason', 'failure')}" for f in described.get("failures", [])]
    services = {service["serviceName"]: service for service in described.get("services", [])}
    for name, arn in sorted(expected.items()):
        service = services.get(name)
        if service is None:
            problems.append(f"{name}: not found in describe-services")
            continue
        primary = [d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"]
        if len(primary) != 1:
            problems.append(f"{name}: {len(primary)} PRIMARY deployments")
            continue
        (deployment,) = primary
        state = deployment.get("rolloutState")
        reason = deployment.get("rolloutStateReason", "")
        if deployment.get("taskDefinition") != arn:
            problems.append(
                f"{name}: rolled back: PRIMARY runs {deployment.get('taskDefinition')}, not {arn}"
                f" (rolloutState {state}: {reason})"
            )
        elif state != "COMPLETED":
            problems.append(f"{name}: rollout of {arn} is {state}, not COMPLETED: {reason}")
    return problems


def main(argv: list[str]) -> int:
    """Run one gate; print what failed."""
    if len(argv) == 2 and argv[0] == "scan":
        problems = scan_problems(json.loads(Path(argv[1]).read_text()))
    elif len(argv) == 3 and argv[0] == "rollout":
        problems = rollout_problems(json.loads(Path(argv[1]).read_text()), json.loads(Path(argv[2]).read_text()))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"::error::{problem}", file=sys.stderr)
    if not problems:
        print(f"{argv[0]}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

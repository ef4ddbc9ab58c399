"""docs/schema.md names everything the code writes: every attribute of every item written through the
real code paths (submission, the runner, failures, retries, cancels, leases, the sweeper, demo-mode
artifacts, an import), and every entity type and field of an export.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pipeline
from storage.bootstrap import Services, aws_client, build_services
from storage.model import JobError, step_id
from tasks import dispatch
from tasks.runner import FaultDrill, fail_job, run_step
from tasks.steps import job_error
from tasks.sweeper import sweep_stalled
from tests.integration.dynamo_backends import create_jobs_table
from tests.integration.execution_state import export_to, import_file, raw_items

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
# Maps whose keys are data, not names: written in the document as <stepId> and <name>.
DATA_KEYS = {"leases": "<stepId>", "resultKeys": "<name>"}
OPAQUE = {"error.details"}  # free-form by design


def documented() -> tuple[dict[str, set[str]], set[str]]:
    """({entity type: export fields}, DynamoDB attribute paths), from the tables under each ### `type` heading."""
    fields: dict[str, set[str]] = {}
    attributes: set[str] = set()
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = re.fullmatch(r"### .* — `([a-z_]+)`", line)
            current = heading[1] if heading else None
            if current:
                fields[current] = {"type"}
        elif current and line.startswith("|") and not set(line) <= set("|- "):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            fields[current] |= set(re.findall(r"`([^`]+)`", cells[0]))
            attributes |= set(re.findall(r"`([^`]+)`", cells[1]))
    return fields, attributes


def paths(item: dict, prefix: str = "") -> set[str]:
    """Every attribute path of a DynamoDB item: ``steps[].summary``, ``leases.<stepId>.owner``, ..."""
    found = set()
    for name, value in item.items():
        path = f"{prefix}{DATA_KEYS.get(prefix.rstrip('.'), name)}"
        found.add(path)
        if path in OPAQUE:
            continue
        ((kind, inner),) = value.items()
        if kind == "M":
            found |= paths(inner, f"{path}.")
        elif kind == "L":
            for element in inner:
                if "M" in element:
                    found |= paths(element["M"], f"{path}[].")
    return found


@pytest.fixture(scope="module")
def written(emulator) -> Services:
    """A demo-mode table holding what every write path of the code writes."""
    settings = dataclasses.replace(
        emulator.settings, jobs_table_name=f"jobs-{uuid.uuid4().hex[:8]}", artifacts_bucket=None, fault_drills=True
    )
    create_jobs_table(aws_client(settings, "dynamodb"), settings.jobs_table_name)
    services = build_services(settings)
    jobs, noop = services.jobs, (lambda *args, **kwargs: None)
    request = {"prompt": "a hall", "seed": 5, "style": "doom"}

    drilled, _ = dispatch.submit_job(
        jobs, request, ttl_days=1, idempotency_key="schema-doc", fault_drill="fail:populate", enqueue=noop
    )
    for step in pipeline.STEPS:
        try:
            run_step(services, drilled.job_id, step)
        except FaultDrill as exc:
            fail_job(services, drilled.job_id, step, job_error(step, exc))
            break
    dispatch.retry_job(jobs, drilled.job_id, reason="drill over", by="test", enqueue=noop)
    for step in pipeline.STEPS[pipeline.STEPS.index("populate") :]:
        run_step(services, drilled.job_id, step, attempt=2)

    leased, _ = dispatch.submit_job(jobs, request, ttl_days=1, enqueue=noop)
    run_step(services, leased.job_id, pipeline.STEPS[0])
    jobs.claim_step(leased.job_id, step_id(leased.job_id, pipeline.STEPS[1]), attempt=1, owner="o", lease_seconds=60)
    dispatch.cancel_job(jobs, leased.job_id, by="test", reason="not needed")

    running, _ = dispatch.submit_job(jobs, request, ttl_days=1, enqueue=noop)
    for step in pipeline.STEPS[:2]:  # the second step's record keeps its checkpoint in the item
        run_step(services, running.job_id, step)

    dispatch.submit_job(jobs, request, ttl_days=1, enqueue=noop)
    sweep_stalled(services, stall_after_seconds=60, now=datetime.now(UTC) + timedelta(hours=1))
    failed, _ = dispatch.submit_job(jobs, request, ttl_days=1, enqueue=noop)
    jobs.mark_failed(failed.job_id, JobError("x", "STEP_FAILED", {"step": "parse_prompt"}))

    import_file(services)
    return services


def test_every_attribute_the_code_writes_is_in_the_schema_document(written):
    _, attributes = documented()
    items = raw_items(written)
    assert {item["entityType"]["S"] for item in items} == {"job", "artifact"}
    found = set().union(*(paths(item) for item in items))
    assert found - attributes == set(), "written but not in docs/schema.md"
    # The document names nothing the code no longer writes (legacy-only attributes aside).
    assert attributes - found == set()


def test_every_entity_type_and_field_of_an_export_is_in_the_schema_document(written, tmp_path):
    fields, _ = documented()
    exported = export_to(written, tmp_path / "export.jsonl")
    seen: dict[str, set[str]] = {}
    for entity in exported:
        assert entity["type"] in fields, f"entity type {entity['type']} is not in docs/schema.md"
        seen.setdefault(entity["type"], set()).update(entity)
    for kind, names in seen.items():
        assert names - fields[kind] == set(), f"{kind}: fields not in docs/schema.md"
    assert set(fields) == set(seen), "the document names entity types the export never writes"

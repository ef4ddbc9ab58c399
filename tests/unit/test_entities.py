"""The execution state's identities, bounds and portable form, offline: storage.model, storage.dynamo_items,
storage.entities and storage.importer on fakes of our own ports.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

import pipeline
from storage import entities
from storage.dynamo_items import entity_type, item_from_job, job_from_item
from storage.errors import InvalidExport
from storage.export import ExportSource, export_entities
from storage.importer import import_entities
from storage.model import (
    MAX_DETAILS_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_NOTE_CHARS,
    MAX_STEPS_PER_ATTEMPT,
    MAX_SUMMARY_CHARS,
    Job,
    JobError,
    JobState,
    RecordedCheckpoint,
    StepEvent,
    StepLease,
    StepStatus,
    cancel_record,
    parse_step_id,
    retry_record,
    step_id,
)
from tests.fakes import FakeArtifactStore, FakeJobStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "export-v1.jsonl"
FIXTURE_ARTIFACTS = FIXTURES / "export-v1-artifacts"
JOB_ID = "3f0c8a2e-1b4d-4c6e-9f00-123456789abc"
T0, T1, T2 = "2026-11-30T10:00:00.000Z", "2026-11-30T10:05:00.000Z", "2026-11-30T10:09:00.000Z"


def step(name: str, attempt: int = 1, status: StepStatus = StepStatus.OK) -> StepEvent:
    return StepEvent(step_id(JOB_ID, name, attempt), name, T0, T1, 12, f"did {name}", status)


def rich_job() -> Job:
    """A job with every kind of record: steps in two attempts, a retry, a cancel, a lease, a key, an error."""
    steps = (step("parse_prompt"), step("layout_rooms", status=StepStatus.ERROR), step("layout_rooms", 2))
    return Job(
        job_id=JOB_ID,
        state=JobState.CANCELLED,
        created_at=T0,
        updated_at=T2,
        request={"prompt": "a hall 👻", "seed": 7, "style": "doom"},
        total_steps=5,
        ttl=1_800_000_000,
        progress=0.4,
        steps=steps,
        step_ids=frozenset(s.step_id for s in steps),
        error=JobError("layout_rooms failed", "STEP_FAILED", {"step": "layout_rooms"}),
        fault_drill="fail:layout_rooms",
        idempotency_key="key-1",
        request_fingerprint="ab" * 32,
        attempt=2,
        attempts=(retry_record(JOB_ID, attempt=2, at=T1, reason="fixed", by="ops", from_step="layout_rooms"),),
        cancellation=cancel_record(JOB_ID, at=T2, by="api:10.0.0.1", reason="enough"),
        leases=(StepLease(step_id(JOB_ID, "connect_doors", 2), "owner-1", 1_800_000_123_456),),
    )


def through_dynamodb(item: dict) -> dict:
    """An item as DynamoDB gives it back: serialised and deserialised (numbers become Decimal)."""
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    return {key: deserializer.deserialize(serializer.serialize(value)) for key, value in item.items()}


def test_a_job_survives_the_item_layout_with_every_record():
    job = rich_job()
    item = item_from_job(job)
    assert item["entityType"] == "job" and entity_type(item) == "job"
    assert item["cancellation"]["actionId"] == f"{JOB_ID}:cancel"
    assert (item["steps"][2]["jobId"], item["steps"][2]["attempt"]) == (JOB_ID, 2)
    assert job_from_item(through_dynamodb(item)) == job


def test_a_job_survives_its_entities_and_each_names_its_job():
    job = rich_job()
    lines = list(entities.job_entities(job))
    assert [line["type"] for line in lines] == [
        "job",
        "step_record",
        "step_record",
        "step_record",
        "attempt",
        "attempt",
        "operator_action",
        "operator_action",
        "step_lease",
        "idempotency_key",
    ]
    for number, line in enumerate(lines, start=2):
        assert entities.check_entity(line, number) == line["type"]
        assert line["jobId"] == JOB_ID
    assert [line["sequence"] for line in lines if line["type"] == "step_record"] == [1, 2, 3]
    assert lines[0]["expiresAt"] == "2027-01-15T08:00:00.000Z"
    assert lines[-2]["expiresAt"] == "2027-01-15T08:02:03.456Z"  # milliseconds kept
    attempts = [line for line in lines if line["type"] == "attempt"]
    assert attempts[0] == {
        "type": "attempt",
        "attemptId": f"{JOB_ID}:attempt:1",
        "jobId": JOB_ID,
        "attempt": 1,
        "startedAt": T0,
        "fromStep": None,
        "actionId": None,
    }
    actions = {line["kind"]: line for line in lines if line["type"] == "operator_action"}
    assert actions["retry"]["attempt"] == 2 and actions["retry"]["reason"] == "fixed"
    assert actions["cancel"]["attempt"] == 2 and actions["cancel"]["by"] == "api:10.0.0.1"
    assert entities.job_from_entities(lines[0], lines[1:]) == job


def test_ids_and_relationships_are_derived_from_the_step_id():
    assert parse_step_id(f"{JOB_ID}:populate") == (JOB_ID, "populate", 1)
    assert parse_step_id(f"{JOB_ID}:populate#3") == (JOB_ID, "populate", 3)
    assert (step("populate", 3).job_id, step("populate", 3).attempt) == (JOB_ID, 3)


def test_items_of_the_layout_before_schema_2_read_with_their_ids():
    legacy = json.loads((FIXTURES / "legacy-items.json").read_text(encoding="utf-8"))
    deserializer = TypeDeserializer()
    for raw in legacy["items"]:
        if "body" in raw:
            raw["body"] = {"B": base64.b64decode(raw["body"]["B"])}
        item = {key: deserializer.deserialize(value) for key, value in raw.items()}
        assert "entityType" not in item
        if entity_type(item) == "artifact":
            assert item["jobId"].startswith("artifact#")
            continue
        job = job_from_item(item)
        for entry in job.attempts:
            assert entry["attemptId"] == f"{job.job_id}:attempt:{entry['attempt']}"
            assert entry["actionId"] == f"{job.job_id}:retry:{entry['attempt']}"
        assert all(s.to_dict()["jobId"] == job.job_id for s in job.steps)
        assert job.cancellation is None


def test_texts_are_bounded_so_no_record_can_grow_an_item_without_limit():
    assert len(StepEvent("s", "n", T0, T0, 0, "x" * 10_000).summary) == MAX_SUMMARY_CHARS
    error = JobError("m" * 10_000, "CODE", {"blob": "x" * 10_000})
    assert len(error.message) == MAX_MESSAGE_CHARS and error.message.endswith("…")
    assert error.details == {"truncated": True, "bytes": 10_012}
    assert JobError("m", "C", {"small": "x" * (MAX_DETAILS_BYTES // 2)}).details["small"]  # kept when small
    record = retry_record(JOB_ID, attempt=2, at=T0, reason="r" * 999, by="b" * 999, from_step="x")
    assert len(record["reason"]) == len(record["by"]) == MAX_NOTE_CHARS
    assert len(cancel_record(JOB_ID, at=T0, by="b" * 999, reason="r")["by"]) == MAX_NOTE_CHARS


def test_the_pipeline_fits_the_steps_the_item_bound_assumes():
    """docs/schema.md's 250 KB bound assumes at most MAX_STEPS_PER_ATTEMPT steps: revisit it before adding more."""
    assert len(pipeline.STEPS) <= MAX_STEPS_PER_ATTEMPT


# --- import, on fakes ---------------------------------------------------------------------------


def lines_of(path: Path = FIXTURE) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_the_fixture_imports_once_and_a_second_import_writes_nothing():
    jobs, artifacts = FakeJobStore(), FakeArtifactStore(presign=False)
    report = import_entities(lines_of(), jobs, artifacts, artifact_dir=FIXTURE_ARTIFACTS)
    assert report.written == {
        "job": 6,
        "step_record": 17,
        "attempt": 8,
        "operator_action": 3,
        "step_lease": 1,
        "idempotency_key": 1,
        "artifact": 20,
    }
    assert {job.state for job in jobs.jobs.values()} == set(JobState)
    before = (dict(jobs.jobs), dict(artifacts.blobs))
    again = import_entities(lines_of(), jobs, artifacts, artifact_dir=FIXTURE_ARTIFACTS)
    assert not again.written and again.present == report.written
    assert (jobs.jobs, artifacts.blobs) == before


def test_without_the_bytes_artifacts_are_counted_not_written():
    artifacts = FakeArtifactStore()
    report = import_entities(lines_of(), FakeJobStore(), artifacts)
    assert report.without_bytes == 20 and artifacts.blobs == {}


def _edited(edit) -> list[str]:
    lines = [json.loads(line) for line in lines_of()]
    return [json.dumps(line) + "\n" for line in edit(lines)]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ls: [ls[0] | {"formatVersion": 2}, *ls[1:]], "unsupported export format version 2"),
        (lambda ls: [ls[0] | {"schemaVersion": 1}, *ls[1:]], "unsupported schema version 1"),
        (lambda ls: [{"type": "job"}, *ls[1:]], "not a ghost-engine-export file"),
        (lambda ls: ls[:-1], "the file is incomplete"),
        (lambda ls: [*ls[:-1], ls[-1] | {"counts": {"job": 1}}], "end line does not match"),
        (lambda ls: [*ls, ls[1]], "nothing may follow the end line"),
        (lambda ls: [ls[0], ls[2], *ls[1:]], "a step_record before any job"),
        (lambda ls: [ls[0], {**ls[1], "type": "ghost"}, *ls[2:]], "unknown entity type 'ghost'"),
        (lambda ls: [ls[0], {k: v for k, v in ls[1].items() if k != "state"}, *ls[2:]], "job lacks state"),
        (
            lambda ls: [
                ls[0],
                ls[1],
                *[e for e in ls if e.get("jobId") == ls[-4]["jobId"] and e["type"] == "attempt"],
                *ls[2:],
            ],
            "must follow the job it belongs to",
        ),
        (
            lambda ls: [e for e in ls if e["type"] != "operator_action" or e["kind"] != "retry"],
            "names no operator action of its job",
        ),
    ],
)
def test_import_refuses_what_it_cannot_read_faithfully(edit, message):
    with pytest.raises(InvalidExport, match=message):
        import_entities(_edited(edit), FakeJobStore(), FakeArtifactStore(), artifact_dir=FIXTURE_ARTIFACTS)


def test_import_refuses_bytes_that_do_not_match_and_keys_outside_the_directory(tmp_path):
    artifact = next(json.loads(line) for line in lines_of() if '"type":"artifact"' in line)
    header, end = lines_of()[0], json.dumps({"type": "end", "counts": {"artifact": 1}}) + "\n"
    target = tmp_path / artifact["key"]
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the bytes")
    with pytest.raises(InvalidExport, match="does not match the size and SHA-256"):
        import_entities(
            [header, json.dumps(artifact) + "\n", end], FakeJobStore(), FakeArtifactStore(), artifact_dir=tmp_path
        )
    escape = artifact | {"key": f"jobs/{artifact['jobId']}/../../../etc/passwd"}
    with pytest.raises(InvalidExport, match="is not a job's key"):
        import_entities(
            [header, json.dumps(escape) + "\n", end], FakeJobStore(), FakeArtifactStore(), artifact_dir=tmp_path
        )
    with pytest.raises(InvalidExport, match="line 2: not JSON"):
        import_entities([header, "{oops\n", end], FakeJobStore(), FakeArtifactStore())


def test_the_checkpoint_a_record_kept_survives_the_item_layout_and_a_malformed_one_reads_as_none():
    job = replace(rich_job(), checkpoint=RecordedCheckpoint("layout_rooms", zlib.compress(b'{"x": 1}')))
    item = item_from_job(job)
    assert item["checkpoint"] == {"step": "layout_rooms", "zlib": zlib.compress(b'{"x": 1}')}
    assert job_from_item(through_dynamodb(item)) == job
    for broken in ({"step": 3, "zlib": b"x"}, {"step": "layout_rooms"}, {"step": "s", "zlib": "text"}, "text"):
        assert job_from_item(through_dynamodb(item | {"checkpoint": broken})).checkpoint is None
    assert "checkpoint" not in item_from_job(rich_job())


class OneItemTable:
    """A DynamoDB client whose table holds ``items`` (low-level form), all in Scan segment 0."""

    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def scan(self, **request):
        return {"Items": self.items if request["Segment"] == 0 else []}


def test_an_export_writes_the_checkpoint_an_item_keeps_as_its_artifact_and_leaves_out_one_that_does_not_inflate(
    tmp_path,
):
    body = b'{"step": "populate", "summary": "s", "data": {}}'
    kept = replace(rich_job(), checkpoint=RecordedCheckpoint("populate", zlib.compress(body)))
    other = replace(rich_job(), job_id=JOB_ID.replace("3f0c", "4f0c"), checkpoint=RecordedCheckpoint("x", b"not zlib"))
    serializer = TypeSerializer()
    table = OneItemTable(
        [{key: serializer.serialize(value) for key, value in item_from_job(job).items()} for job in (kept, other)]
    )
    exported = list(export_entities(ExportSource(table, "jobs"), artifact_dir=tmp_path, segments=2))
    artifacts = [entity for entity in exported if entity["type"] == "artifact"]
    key = f"jobs/{JOB_ID}/steps/populate.json"
    assert artifacts == [entities.artifact_entity(key, JOB_ID, "application/json", body, "table")]
    assert (tmp_path / key).read_bytes() == body
    assert exported[-1]["counts"]["artifact"] == 1

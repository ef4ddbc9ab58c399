"""The execution state taken out and put back: export -> import round trips, items of the old
layout, the bound on a job item — each on moto and on dynalite (ids ``[moto]``, ``[dynalite]``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import zlib
from decimal import Decimal

import pytest

import pipeline
from storage.bootstrap import Services, aws_client
from storage.errors import AttemptsExhausted, InvalidExport
from storage.export import ExportSource, export_entities
from storage.model import (
    MAX_ATTEMPTS,
    MAX_JOB_ITEM_BYTES,
    MAX_STEPS_PER_ATTEMPT,
    Job,
    JobError,
    JobState,
    RecordedCheckpoint,
    StepEvent,
    StepStatus,
    new_job_id,
    retry_record,
    step_id,
    utc_now,
)
from tasks import dispatch
from tasks.checkpoints import RECORD_CHECKPOINT_MAX_BYTES, checkpoint_key
from tasks.runner import run_step
from tests.integration.execution_state import (
    FIXTURE,
    FIXTURES,
    api_answers,
    comparable,
    export_to,
    import_file,
    raw_items,
)

pytestmark = pytest.mark.integration

ITEM_LIMIT = 400 * 1024  # DynamoDB's item size limit
REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}


@pytest.fixture(scope="module")
def round_trip(state_factory, tmp_path_factory):
    """The fixture imported into a table, exported, and the export imported into a second table."""
    work = tmp_path_factory.mktemp("round-trip")
    source, target = state_factory(), state_factory()
    import_file(source)
    exported = export_to(source, work / "export.jsonl", work / "artifacts")
    before = raw_items(target)
    report = import_file(target, work / "export.jsonl", work / "artifacts")
    return {
        "source": source,
        "target": target,
        "exported": exported,
        "work": work,
        "report": report,
        "empty_before": before,
    }


def test_every_status_and_every_listing_page_answers_the_same_after_the_round_trip(round_trip):
    source, target = api_answers(round_trip["source"]), api_answers(round_trip["target"])
    assert round_trip["empty_before"] == []
    assert len(source["status"]) == 6
    assert {
        page["jobs"][0]["state"] for state, pages in source["jobs"].items() if state != "all" for page in pages
    } == {state.value for state in JobState}  # every state is there
    assert target == source


def test_the_export_holds_every_entity_of_the_fixture_unchanged(round_trip):
    fixture = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    # A fixture's demo-mode artifacts land in S3 on moto: only where they are stored differs.
    assert comparable(round_trip["exported"], drop=("store",)) == comparable(fixture, drop=("store",))
    again = export_to(round_trip["target"], round_trip["work"] / "again.jsonl")
    assert comparable(again) == comparable(round_trip["exported"])
    header = round_trip["exported"][0]
    assert (header["formatVersion"], header["schemaVersion"]) == (1, 2) and header["exportedAt"].endswith("Z")


def test_a_second_import_changes_nothing(round_trip):
    target, work = round_trip["target"], round_trip["work"]
    first = round_trip["report"]
    assert first.written["job"] == 6 and first.written["artifact"] == 20 and not first.present
    before = raw_items(target)
    report = import_file(target, work / "export.jsonl", work / "artifacts")
    assert not report.written
    assert report.present == first.written
    assert raw_items(target) == before


def test_import_refuses_an_unknown_format_version_and_writes_nothing(state_factory, tmp_path):
    services = state_factory()
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0]) | {"formatVersion": 2}
    newer = tmp_path / "newer.jsonl"
    newer.write_text(json.dumps(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(InvalidExport, match="unsupported export format version 2: this ghost-engine reads version 1"):
        import_file(services, newer)
    assert raw_items(services) == []


class CountingClient:
    """A real DynamoDB client that counts the Scans made through it."""

    def __init__(self, client) -> None:
        self._client, self.scans = client, 0

    def scan(self, **request):
        self.scans += 1
        return self._client.scan(**request)


def test_the_export_streams_entities_as_the_scan_pages_arrive(state_factory):
    """Memory stays flat in the number of jobs: the first entity comes long before the last page is read."""
    services = state_factory(demo=True)
    for n in range(200):
        services.jobs.create(
            Job(
                job_id=new_job_id(),
                state=JobState.QUEUED,
                created_at=utc_now(),
                updated_at=utc_now(),
                request={"prompt": f"hall {n}", "seed": n, "style": "doom"},
                total_steps=5,
                ttl=2**31,
            )
        )
    client = CountingClient(aws_client(services.settings, "dynamodb"))
    stream = export_entities(ExportSource(client, services.settings.jobs_table_name), segments=2, page_size=10)
    assert next(stream)["type"] == "header" and next(stream)["type"] == "job"
    early = client.scans
    rest = list(stream)
    assert early <= 3 * 2 < client.scans  # at most a few pages ahead of the consumer, of more than 20
    assert rest[-1]["counts"]["job"] == 200 and sum(e["type"] == "job" for e in rest) == 199


# --- items written before schema version 2 ----------------------------------------------------


def _put_legacy_items(services: Services) -> tuple[dict, int]:
    """The items of legacy-items.json, written raw; (the jobs' ids by role, how many artifact items)."""
    legacy = json.loads((FIXTURES / "legacy-items.json").read_text(encoding="utf-8"))
    client = aws_client(services.settings, "dynamodb")
    for item in legacy["items"]:
        if "body" in item:
            item["body"] = {"B": base64.b64decode(item["body"]["B"])}
        client.put_item(TableName=services.settings.jobs_table_name, Item=item)
    return legacy["jobs"], sum(item["jobId"]["S"].startswith("artifact#") for item in legacy["items"])


# What schema version 2 adds to the API's answers: ids on step records and retries, the cancellation.
ADDED_KEYS = {"jobId", "attempt", "attemptId", "actionId", "cancellation"}


def _answers_as_before(before, now, where="") -> None:
    if isinstance(before, dict):
        assert isinstance(now, dict), where
        assert set(now) - set(before) <= ADDED_KEYS, f"{where}: {set(now) - set(before)}"
        for key, value in before.items():
            assert key in now, f"{where}.{key} is gone"
            _answers_as_before(value, now[key], f"{where}.{key}")
    elif isinstance(before, list):
        assert isinstance(now, list) and len(now) == len(before), where
        for i, (old, new) in enumerate(zip(before, now, strict=True)):
            _answers_as_before(old, new, f"{where}[{i}]")
    else:
        assert now == before, where


def test_items_written_before_schema_2_give_the_same_answers_and_move_on(state_factory, tmp_path):
    services = state_factory(demo=True)
    ids, artifact_items = _put_legacy_items(services)
    expected = json.loads((FIXTURES / "legacy-answers.json").read_text(encoding="utf-8"))
    answers = api_answers(services)
    assert answers["jobs"] == expected["jobs"]
    _answers_as_before(expected["status"], answers["status"])
    steps = answers["status"][ids["retried"]]["steps"]
    assert [(s["jobId"], s["attempt"]) for s in steps] == [(ids["retried"], 1)] * 4 + [(ids["retried"], 2)] * 2
    assert answers["status"][ids["retried"]]["attempts"][0]["actionId"] == f"{ids['retried']}:retry:2"

    # Operators act on old items as on new ones.
    noop = lambda *args, **kwargs: None  # noqa: E731 - a one-line fake enqueue
    dispatch.retry_job(services.jobs, ids["failed"], reason="after the fix", by="ops", enqueue=noop)
    dispatch.cancel_job(services.jobs, ids["queued"], by="ops", reason="not needed")
    assert services.jobs.get(ids["failed"]).attempts[0]["attemptId"] == f"{ids['failed']}:attempt:2"
    assert services.jobs.get(ids["queued"]).cancellation["reason"] == "not needed"

    # ... and an export takes them to the new layout, answering the same.
    exported = export_to(services, tmp_path / "legacy.jsonl", tmp_path / "artifacts")
    counts = exported[-1]["counts"]
    assert counts["job"] == 6 and counts["artifact"] == artifact_items
    migrated = state_factory(demo=True)
    import_file(migrated, tmp_path / "legacy.jsonl", tmp_path / "artifacts")
    assert api_answers(migrated) == api_answers(services)
    assert all(item["entityType"]["S"] in {"job", "artifact"} for item in raw_items(migrated))


# --- the size of a job item -------------------------------------------------------------------


def _size(value: dict) -> int:
    """Bytes of one DynamoDB attribute value, by DynamoDB's published sizing rules."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(Decimal(inner).normalize().as_tuple().digits) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in {"SS", "NS", "BS"}:
        return sum(_size({kind[0]: element}) for element in inner)
    if kind == "L":
        return 3 + sum(1 + _size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _size(element) for name, element in inner.items())
    return 1  # BOOL, NULL


def item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it against the 400 KB limit: names plus values."""
    return sum(len(name.encode()) + _size(value) for name, value in item.items())


def test_a_job_at_every_bound_stays_far_below_the_item_limit(state_factory):
    """Longest prompt, most attempts, every step recorded in each with the longest summary, longest
    notes and errors, in 4-byte characters: the item stays under 400 KB, and an 11th attempt is refused."""
    services = state_factory(demo=True)
    store, job_id, now, wide = services.jobs, new_job_id(), utc_now(), "👻"
    job = Job(
        job_id=job_id,
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
        request={"prompt": wide * 2000, "seed": 2**31 - 1, "style": "haunted"},
        total_steps=MAX_STEPS_PER_ATTEMPT,
        ttl=2**31,
        fault_drill="fail:" + "s" * 20,
        idempotency_key="k" * 255,
        request_fingerprint=hashlib.sha256(b"x").hexdigest(),
    )
    store.create(job)
    names = [f"step_{i}".ljust(20, "x") for i in range(MAX_STEPS_PER_ATTEMPT)]
    # The first record of all is ok and keeps the largest checkpoint a record may (incompressible
    # bytes); the failures after it leave it in the item, for a retry.
    largest = RecordedCheckpoint(names[0], random.Random(5).randbytes(RECORD_CHECKPOINT_MAX_BYTES))
    first = StepEvent(step_id(job_id, names[0]), names[0], utc_now(), utc_now(), 1, wide * 499, StepStatus.OK)
    store.record_step(job_id, first, total_steps=MAX_STEPS_PER_ATTEMPT, checkpoint=largest)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            store.mark_retry(
                job_id,
                attempt=retry_record(
                    job_id, attempt=attempt, at=utc_now(), reason=wide * 999, by=wide * 999, from_step=names[0]
                ),
            )
        for name in names if attempt > 1 else names[1:]:
            event = StepEvent(
                step_id(job_id, name, attempt),
                name,
                utc_now(),
                utc_now(),
                7 * 86400 * 1000,
                wide * 9999,
                StepStatus.ERROR,
            )
            store.record_step(job_id, event, total_steps=MAX_STEPS_PER_ATTEMPT)
        store.mark_failed(job_id, JobError(wide * 9999, "STEP_FAILED", {"step": names[-1], "trace": "x" * 3900}))
    with pytest.raises(AttemptsExhausted, match=f"has used all {MAX_ATTEMPTS} attempts"):
        store.mark_retry(
            job_id,
            attempt=retry_record(
                job_id, attempt=MAX_ATTEMPTS + 1, at=utc_now(), reason="r", by="b", from_step=names[0]
            ),
        )
    (item,) = raw_items(services)
    final = store.get(job_id)
    assert final.attempt == MAX_ATTEMPTS and len(final.steps) == MAX_ATTEMPTS * MAX_STEPS_PER_ATTEMPT
    assert final.checkpoint == largest
    size = item_bytes(item)
    print(f"largest job item: {size} bytes")
    assert size <= MAX_JOB_ITEM_BYTES < ITEM_LIMIT, size


def test_a_checkpoint_kept_in_a_running_jobs_item_moves_with_an_export_as_the_object_it_stands_for(
    state_factory, tmp_path, monkeypatch
):
    """A job stopped after its third step (its item keeps that step's checkpoint) is exported, then
    imported elsewhere: the checkpoint is an artifact at its key in the file and in the new store,
    and the restored job goes on from it, computing nothing before its fourth step."""
    source, target = state_factory(), state_factory()
    noop = lambda *args, **kwargs: None  # noqa: E731 - nothing is sent here
    job, _ = dispatch.submit_job(source.jobs, REQUEST, ttl_days=1, enqueue=noop)
    for step in pipeline.STEPS[:3]:
        run_step(source, job.job_id, step)
    kept = source.jobs.get(job.job_id).checkpoint
    assert kept is not None and kept.step == pipeline.STEPS[2]
    body, key = zlib.decompress(kept.zlib), checkpoint_key(job.job_id, pipeline.STEPS[2])
    exported = export_to(source, tmp_path / "export.jsonl", tmp_path / "artifacts")
    [artifact] = [entity for entity in exported if entity["type"] == "artifact" and entity["jobId"] == job.job_id]
    assert artifact["key"] == key and artifact["store"] == "table"
    assert artifact["sha256"] == hashlib.sha256(body).hexdigest() and artifact["size"] == len(body)
    import_file(target, tmp_path / "export.jsonl", tmp_path / "artifacts")
    assert target.artifacts.get(key) == body
    computed: list[str] = []
    real = pipeline.run_step
    monkeypatch.setattr(pipeline, "run_step", lambda name, previous: computed.append(name) or real(name, previous))
    for step in pipeline.STEPS[3:]:
        run_step(target, job.job_id, step)
    assert computed == list(pipeline.STEPS[3:])
    assert target.jobs.get(job.job_id).state is JobState.DONE

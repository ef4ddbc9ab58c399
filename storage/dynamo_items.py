"""How a Job is laid out as a DynamoDB item, and the listing cursors over its indexes.

docs/schema.md describes every attribute written here; a test fails when an item holds one
it does not name.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import ROUND_FLOOR, Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from storage.errors import InvalidCursor
from storage.model import (
    MAX_SUMMARY_CHARS,
    Job,
    JobError,
    JobState,
    RecordedCheckpoint,
    StepEvent,
    StepLease,
    StepStatus,
    bounded,
    is_job_id,
    retry_record,
)

LIST_INDEX = "GSI1"  # GSI1PK = "JOB", GSI1SK = "{createdAt}#{jobId}": every job, newest first
STATE_INDEX = "GSI2"  # state, GSI1SK: the jobs in one state, newest first
LIST_PARTITION = "JOB"
# What both indexes copy beside the keys (an INCLUDE projection): what their readers read, and no
# more, since every write of an item is billed again in each index on its entry's size
# (docs/performance.md, "What a job costs"). GET /jobs: state, progress, createdAt, updatedAt and
# request (its prompt preview comes from the prompt); the console's list: request (its style too)
# and resultKeys (the thumbnail); demo mode's artifact listing (GSI1): artifactKey, contentType,
# size. The stall sweeper and retry-job --all-failed read state and updatedAt, and the sweeper
# reads a stalled job's item before it fails it. deploy/terraform/dynamodb.tf projects the same
# list (tests/unit/test_infra.py).
INDEXED_ATTRIBUTES = (
    "state",
    "progress",
    "createdAt",
    "updatedAt",
    "request",
    "resultKeys",
    "artifactKey",
    "contentType",
    "size",
)

# What an item is, told by its entityType attribute. Items written before schema version 2
# have none: a demo-mode artifact is then told by its partition key, which is
# ARTIFACT_KEY_PREFIX + the artifact's key in every version; anything else is a job.
ENTITY_JOB = "job"
ENTITY_ARTIFACT = "artifact"
ARTIFACT_KEY_PREFIX = "artifact#"
_SORT_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#(?P<job_id>[0-9a-f-]{36})$")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict[str, Any]:
    """A plain value as a DynamoDB attribute value."""
    return cast("dict[str, Any]", _serializer.serialize(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def progress_share(event: StepEvent, total_steps: int) -> Decimal:
    """What one recorded step adds to a job's progress.

    Progress is a running sum of shares: ADD commutes, so steps recorded in any
    order end at the same value, and the stepId guard means no share is added
    twice. Shares round down so the sum never passes 1; mark_done sets 1 exactly.
    """
    if event.status is not StepStatus.OK or total_steps <= 0:
        return Decimal(0)
    return (Decimal(1) / Decimal(total_steps)).quantize(Decimal("0.000001"), rounding=ROUND_FLOOR)


def list_sort_key(job: Job) -> str:
    """The listing indexes' sort key: creation time, then id to break ties."""
    return f"{job.created_at}#{job.job_id}"


def entity_type(item: dict[str, Any]) -> str:
    """The entity an item holds: ``job`` or ``artifact``, for items of any schema version."""
    if "entityType" in item:
        return str(item["entityType"])
    return ENTITY_ARTIFACT if item["jobId"].startswith(ARTIFACT_KEY_PREFIX) else ENTITY_JOB


def item_from_job(job: Job) -> dict[str, Any]:
    """The DynamoDB item (plain Python values) holding ``job``, with every record it carries."""
    item: dict[str, Any] = {
        "jobId": job.job_id,
        "entityType": ENTITY_JOB,
        "state": job.state.value,
        "progress": Decimal(str(job.progress)),
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "plugin": job.plugin,
        "promptPreview": job.prompt_preview,
        "request": job.request,
        "steps": [step.to_dict() for step in job.steps],
        "totalSteps": job.total_steps,
        # stepId -> {owner, expiresAt}: who computes a step right now
        "leases": {lease.step_id: {"owner": lease.owner, "expiresAt": lease.expires_at_ms} for lease in job.leases},
        "attempt": job.attempt,
        "ttl": job.ttl,
        "GSI1PK": LIST_PARTITION,
        "GSI1SK": list_sort_key(job),
    }
    optional = {
        "stepIds": set(job.step_ids),  # DynamoDB refuses an empty set
        "faultDrill": job.fault_drill,
        "idempotencyKey": job.idempotency_key,
        "requestFingerprint": job.request_fingerprint,
        "attempts": list(job.attempts),
        "cancellation": job.cancellation,
        "resultKeys": job.result_keys,
        "resultSummary": bounded(job.result_summary, MAX_SUMMARY_CHARS) if job.result_summary else None,
        "error": job.error.to_dict() if job.error else None,
        "checkpoint": checkpoint_attribute(job.checkpoint) if job.checkpoint else None,
    }
    item.update({name: value for name, value in optional.items() if value})
    return item


def job_from_item(item: dict[str, Any]) -> Job:
    """A Job from a deserialised DynamoDB item, of any schema version."""
    error = item.get("error")
    job_id = item["jobId"]
    return Job(
        job_id=job_id,
        state=JobState(item["state"]),
        created_at=item["createdAt"],
        updated_at=item["updatedAt"],
        request=_plain(item.get("request", {})),
        total_steps=int(item.get("totalSteps", 0)),
        ttl=int(item.get("ttl", 0)),
        plugin=item.get("plugin", ""),
        progress=min(1.0, float(item.get("progress", 0))),
        steps=tuple(StepEvent.from_dict(_plain(step)) for step in item.get("steps", [])),
        step_ids=frozenset(item.get("stepIds", ())),
        result_keys=_plain(item.get("resultKeys", {})),
        result_summary=item.get("resultSummary"),
        error=JobError.from_dict(_plain(error)) if error else None,
        fault_drill=item.get("faultDrill"),
        idempotency_key=item.get("idempotencyKey"),
        request_fingerprint=item.get("requestFingerprint"),
        attempt=int(item.get("attempt", 1)),
        attempts=tuple(_retry(job_id, _plain(entry)) for entry in item.get("attempts", [])),
        cancellation=_plain(item["cancellation"]) if "cancellation" in item else None,
        leases=tuple(
            StepLease(step_id, lease["owner"], int(lease["expiresAt"]))
            for step_id, lease in sorted(item.get("leases", {}).items())
        ),
        checkpoint=_checkpoint(item.get("checkpoint")),
    )


def checkpoint_attribute(checkpoint: RecordedCheckpoint) -> dict[str, Any]:
    """The item's ``checkpoint`` (plain values): the step it is of, and its compressed bytes."""
    return {"step": checkpoint.step, "zlib": checkpoint.zlib}


def _checkpoint(value: Any) -> RecordedCheckpoint | None:
    """The item's ``checkpoint``, or None; one that is not what a record writes counts as none (a
    step that needs it then reads the bucket, or recomputes it)."""
    if not isinstance(value, dict) or not isinstance(value.get("step"), str):
        return None
    body = getattr(value.get("zlib"), "value", value.get("zlib"))  # a boto3 Binary, or bytes
    return RecordedCheckpoint(value["step"], bytes(body)) if isinstance(body, bytes | bytearray) else None


def _retry(job_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """An ``attempts`` entry with its ids; entries written before schema version 2 had none."""
    return retry_record(
        job_id,
        attempt=int(entry["attempt"]),
        at=entry["at"],
        reason=entry.get("reason", ""),
        by=entry.get("by", ""),
        from_step=entry["fromStep"],
    )


def _plain(value: Any) -> Any:
    """Decimals back to int (or float); DynamoDB returns every number as Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


# --- cursors -----------------------------------------------------------------


def encode_cursor(sort_key: str, job_id: str) -> str:
    """An opaque cursor naming the last job of a page."""
    raw = json.dumps({"k": sort_key, "id": job_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(sort key, job id) from a cursor; InvalidCursor for anything we could not have issued."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        sort_key, job_id = data["k"], data["id"]
        match = _SORT_KEY.fullmatch(sort_key) if isinstance(sort_key, str) else None
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        match = None
    if not match or match["job_id"] != job_id or not is_job_id(job_id):
        raise InvalidCursor("cursor is malformed or was not issued by this API")
    return sort_key, job_id

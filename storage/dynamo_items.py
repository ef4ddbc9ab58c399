"""How a Job is laid out as a DynamoDB item, and the listing cursors over its indexes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from storage.errors import InvalidCursor
from storage.model import Job, JobError, JobState, StepEvent, StepStatus, is_job_id

LIST_INDEX = "GSI1"  # GSI1PK = "JOB", GSI1SK = "{createdAt}#{jobId}": every job, newest first
STATE_INDEX = "GSI2"  # state, GSI1SK: the jobs in one state, newest first
LIST_PARTITION = "JOB"
_SORT_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#(?P<job_id>[0-9a-f-]{36})$")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict:
    """A plain value as a DynamoDB attribute value."""
    return _serializer.serialize(value)


def from_item(item: dict) -> dict:
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


def item_from_job(job: Job) -> dict:
    """The DynamoDB item (plain Python values) for a new job."""
    item: dict[str, Any] = {
        "jobId": job.job_id,
        "state": job.state.value,
        "progress": Decimal(str(job.progress)),
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "plugin": job.plugin,
        "promptPreview": job.prompt_preview,
        "request": job.request,
        "steps": [step.to_dict() for step in job.steps],
        "totalSteps": job.total_steps,
        "leases": {},  # stepId -> {owner, expiresAt}: who computes a step right now
        "attempt": job.attempt,
        "ttl": job.ttl,
        "GSI1PK": LIST_PARTITION,
        "GSI1SK": list_sort_key(job),
    }
    if job.step_ids:  # DynamoDB refuses an empty set
        item["stepIds"] = set(job.step_ids)
    if job.fault_drill:
        item["faultDrill"] = job.fault_drill
    if job.idempotency_key:
        item["idempotencyKey"] = job.idempotency_key
        item["requestFingerprint"] = job.request_fingerprint
    return item


def job_from_item(item: dict) -> Job:
    """A Job from a deserialised DynamoDB item."""
    error = item.get("error")
    return Job(
        job_id=item["jobId"],
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
        attempts=tuple(_plain(entry) for entry in item.get("attempts", [])),
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

"""The portable form of the execution state: each entity as a plain JSON object (docs/schema.md).

An export is JSON Lines: a header, then a job followed by the records nested in its item
(step records, attempts, operator actions, step leases, its idempotency key), then artifacts,
then an end line with the counts. Every entity carries its ``type``, its own id and the ids of
what it belongs to; times are ISO 8601 UTC; nothing is in DynamoDB's type notation.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from storage.errors import InvalidExport
from storage.model import (
    SCHEMA_VERSION,
    ActionKind,
    Job,
    JobError,
    JobState,
    StepEvent,
    StepLease,
    attempt_id,
    cancel_record,
    retry_record,
)

FORMAT = "ghost-engine-export"
FORMAT_VERSION = 1

HEADER, END = "header", "end"
JOB, STEP, ATTEMPT, ACTION, LEASE, IDEMPOTENCY_KEY, ARTIFACT = (
    "job",
    "step_record",
    "attempt",
    "operator_action",
    "step_lease",
    "idempotency_key",
    "artifact",
)

# The fields each entity must have; ``type`` and the first field are its identity.
REQUIRED: dict[str, tuple[str, ...]] = {
    JOB: (
        "jobId",
        "state",
        "createdAt",
        "updatedAt",
        "request",
        "progress",
        "totalSteps",
        "plugin",
        "attempt",
        "expiresAt",
    ),
    STEP: ("stepId", "jobId", "attempt", "sequence", "name", "status", "startedAt", "endedAt", "durationMs", "summary"),
    ATTEMPT: ("attemptId", "jobId", "attempt", "startedAt"),
    ACTION: ("actionId", "jobId", "kind", "attempt", "at", "by", "reason"),
    LEASE: ("stepId", "jobId", "owner", "expiresAt"),
    IDEMPOTENCY_KEY: ("key", "jobId", "requestFingerprint"),
    ARTIFACT: ("key", "jobId", "contentType", "size", "sha256", "store"),
}
CHILDREN = (STEP, ATTEMPT, ACTION, LEASE, IDEMPOTENCY_KEY)


def iso_from_epoch(seconds: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms_from_iso(text: str) -> int:
    """ISO 8601 UTC back to epoch milliseconds."""
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def header(*, exported_at: str, source: dict[str, Any]) -> dict[str, Any]:
    """The first line of an export."""
    return {
        "type": HEADER,
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "schemaVersion": SCHEMA_VERSION,
        "exportedAt": exported_at,
        "source": source,
    }


def parse_line(number: int, line: str) -> dict[str, Any]:
    """One line of an export as a JSON object; InvalidExport naming the line otherwise."""
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise InvalidExport(f"line {number}: not JSON ({exc})", details={"line": number}) from None
    if not isinstance(value, dict):
        raise InvalidExport(f"line {number}: not a JSON object", details={"line": number})
    return value


def check_header(line: dict[str, Any]) -> None:
    """InvalidExport unless ``line`` is a header of a format and schema version this code reads."""
    if line.get("type") != HEADER or line.get("format") != FORMAT:
        raise InvalidExport(f"not a {FORMAT} file: its first line is not a {FORMAT} header")
    if line.get("formatVersion") != FORMAT_VERSION:
        raise InvalidExport(
            f"unsupported export format version {line.get('formatVersion')!r}: this ghost-engine reads version "
            f"{FORMAT_VERSION}; import it with the release that wrote it",
            details={"formatVersion": line.get("formatVersion"), "supported": [FORMAT_VERSION]},
        )
    if line.get("schemaVersion") != SCHEMA_VERSION:
        raise InvalidExport(
            f"unsupported schema version {line.get('schemaVersion')!r}: this ghost-engine reads version "
            f"{SCHEMA_VERSION}",
            details={"schemaVersion": line.get("schemaVersion"), "supported": [SCHEMA_VERSION]},
        )


def check_entity(entity: dict[str, Any], line_number: int) -> str:
    """The entity's type; InvalidExport when the type is unknown or a required field is missing."""
    kind = entity.get("type")
    if not isinstance(kind, str) or kind not in REQUIRED:
        raise InvalidExport(f"line {line_number}: unknown entity type {kind!r}", details={"line": line_number})
    missing = [name for name in REQUIRED[kind] if name not in entity]
    if missing:
        raise InvalidExport(
            f"line {line_number}: {kind} lacks {', '.join(missing)}", details={"line": line_number, "missing": missing}
        )
    return kind


def read_export(lines: Iterable[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Each entity of an export as (line number, type, entity), checked line by line.

    InvalidExport, naming the problem, for an empty file, a header this code does not read, a
    line that is not an entity, a line after the end line, and — once the last line is read, so a
    reader that writes as it goes learns it at the end — a missing end line or counts that do
    not match the entities.
    """
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise InvalidExport("the export is empty: no header line")
    check_header(parse_line(*first))
    counts: Counter[str] = Counter()
    end: dict[str, Any] | None = None
    for number, line in numbered:
        if end is not None:
            raise InvalidExport(f"line {number}: nothing may follow the end line", details={"line": number})
        entity = parse_line(number, line)
        if entity.get("type") == END:
            end = entity
            continue
        kind = check_entity(entity, number)
        counts[kind] += 1
        yield number, kind, entity
    if end is None:
        raise InvalidExport("the export stops before its end line: the file is incomplete")
    expected = {kind: n for kind, n in end.get("counts", {}).items() if n}
    if dict(counts) != expected:
        raise InvalidExport(
            "the export's end line does not match its content", details={"expected": expected, "found": dict(counts)}
        )


def job_entities(job: Job) -> Iterator[dict[str, Any]]:
    """The job, then every record its item holds, each as an entity of its own."""
    yield {
        "type": JOB,
        "jobId": job.job_id,
        "state": job.state.value,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "request": job.request,
        "progress": job.progress,
        "totalSteps": job.total_steps,
        "plugin": job.plugin,
        "attempt": job.attempt,
        "resultKeys": job.result_keys or None,
        "resultSummary": job.result_summary,
        "error": job.error.to_dict() if job.error else None,
        "faultDrill": job.fault_drill,
        "expiresAt": iso_from_epoch(job.ttl),
    }
    for sequence, step in enumerate(job.steps, start=1):
        record = step.to_dict()
        yield {"type": STEP, **record, "sequence": sequence}
    # Attempt 1 starts with the job and is not stored; each retry stores the attempt it starts.
    yield {
        "type": ATTEMPT,
        "attemptId": attempt_id(job.job_id, 1),
        "jobId": job.job_id,
        "attempt": 1,
        "startedAt": job.created_at,
        "fromStep": None,
        "actionId": None,
    }
    for entry in job.attempts:
        yield {
            "type": ATTEMPT,
            "attemptId": entry["attemptId"],
            "jobId": job.job_id,
            "attempt": entry["attempt"],
            "startedAt": entry["at"],
            "fromStep": entry["fromStep"],
            "actionId": entry["actionId"],
        }
    for entry in job.attempts:
        yield {
            "type": ACTION,
            "actionId": entry["actionId"],
            "jobId": job.job_id,
            "kind": ActionKind.RETRY.value,
            "attempt": entry["attempt"],
            "at": entry["at"],
            "by": entry["by"],
            "reason": entry["reason"],
        }
    if job.cancellation:
        # A cancelled job never runs again, so the cancel ended its last attempt.
        yield {"type": ACTION, **job.cancellation, "attempt": job.attempt}
    for lease in job.leases:
        yield {
            "type": LEASE,
            "stepId": lease.step_id,
            "jobId": job.job_id,
            "owner": lease.owner,
            "expiresAt": iso_from_epoch(lease.expires_at_ms / 1000),
        }
    if job.idempotency_key:
        yield {
            "type": IDEMPOTENCY_KEY,
            "key": job.idempotency_key,
            "jobId": job.job_id,
            "requestFingerprint": job.request_fingerprint,
        }


def job_from_entities(job: dict[str, Any], children: list[dict[str, Any]]) -> Job:
    """The Job that ``job_entities`` took apart."""
    job_id = job["jobId"]
    strays = [child for child in children if child["jobId"] != job_id]
    if strays:
        raise InvalidExport(
            f"a {strays[0]['type']} of job {strays[0]['jobId']} follows job {job_id}: "
            "an entity must follow the job it belongs to"
        )
    by_type: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CHILDREN}
    for child in children:
        by_type[child["type"]].append(child)
    steps = [StepEvent.from_dict(record) for record in sorted(by_type[STEP], key=lambda record: record["sequence"])]
    actions = {action["actionId"]: action for action in by_type[ACTION]}
    retries = sorted((entry for entry in by_type[ATTEMPT] if entry["attempt"] > 1), key=lambda entry: entry["attempt"])
    for entry in retries:
        if entry.get("actionId") not in actions:
            raise InvalidExport(f"attempt {entry['attemptId']} names no operator action of its job in the file")
    cancels = [action for action in actions.values() if action["kind"] == ActionKind.CANCEL]
    keys = by_type[IDEMPOTENCY_KEY]
    return Job(
        job_id=job_id,
        state=JobState(job["state"]),
        created_at=job["createdAt"],
        updated_at=job["updatedAt"],
        request=job["request"],
        total_steps=job["totalSteps"],
        ttl=epoch_ms_from_iso(job["expiresAt"]) // 1000,
        plugin=job["plugin"],
        progress=job["progress"],
        steps=tuple(steps),
        step_ids=frozenset(step.step_id for step in steps),
        result_keys=job.get("resultKeys") or {},
        result_summary=job.get("resultSummary"),
        error=JobError.from_dict(job["error"]) if job.get("error") else None,
        fault_drill=job.get("faultDrill"),
        idempotency_key=keys[0]["key"] if keys else None,
        request_fingerprint=keys[0]["requestFingerprint"] if keys else None,
        attempt=job["attempt"],
        attempts=tuple(
            retry_record(
                job_id,
                attempt=entry["attempt"],
                at=entry["startedAt"],
                from_step=entry["fromStep"],
                reason=actions[entry["actionId"]]["reason"],
                by=actions[entry["actionId"]]["by"],
            )
            for entry in retries
        ),
        cancellation=(
            cancel_record(job_id, at=cancels[0]["at"], by=cancels[0]["by"], reason=cancels[0]["reason"])
            if cancels
            else None
        ),
        leases=tuple(
            StepLease(lease["stepId"], lease["owner"], epoch_ms_from_iso(lease["expiresAt"]))
            for lease in by_type[LEASE]
        ),
    )


def artifact_entity(key: str, job_id: str, content_type: str, body: bytes, store: str) -> dict[str, Any]:
    """An artifact described by key, job, content type, size and SHA-256 of its bytes."""
    return {
        "type": ARTIFACT,
        "key": key,
        "jobId": job_id,
        "contentType": content_type,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "store": store,
    }


def end(counts: dict[str, int]) -> dict[str, Any]:
    """The last line: how many entities of each type came before it."""
    return {"type": END, "counts": dict(sorted(counts.items()))}

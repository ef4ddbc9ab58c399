"""DynamoJobStore: job items in one DynamoDB table, written with conditional updates."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated
from storage.errors import InvalidCursor, InvalidTransition, JobExists, JobNotFound, JobTerminal
from storage.model import (
    TERMINAL_STATES,
    Claim,
    ClaimOutcome,
    Job,
    JobError,
    JobPage,
    JobState,
    RecordOutcome,
    StepEvent,
    StepStatus,
    is_job_id,
    sources_of,
    utc_now,
)

LIST_INDEX = "GSI1"  # GSI1PK = "JOB", GSI1SK = "{createdAt}#{jobId}": every job, newest first
STATE_INDEX = "GSI2"  # state, GSI1SK: the jobs in one state, newest first
LIST_PARTITION = "JOB"
_SORT_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#(?P<job_id>[0-9a-f-]{36})$")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_attr(value: Any) -> dict:
    return _serializer.serialize(value)


def _from_item(item: dict) -> dict:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


class DynamoJobStore:
    """JobStore on a DynamoDB table; ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- reads -----------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
            )
        if "Item" not in response:
            raise JobNotFound(f"no job {job_id}", details={"jobId": job_id})
        return job_from_item(_from_item(response["Item"]))

    def list_jobs(
        self, *, limit: int, cursor: str | None = None, state: JobState | None = None
    ) -> JobPage:
        if state is None:
            index, key_condition = LIST_INDEX, "GSI1PK = :pk"
            values = {":pk": {"S": LIST_PARTITION}}
        else:
            index, key_condition = STATE_INDEX, "#state = :pk"
            values = {":pk": {"S": str(state)}}
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            # One more than asked tells whether a next page exists, so the last
            # page never hands out a cursor that leads to an empty page.
            "Limit": limit + 1,
        }
        if state is not None:
            query["ExpressionAttributeNames"] = {"#state": "state"}
        if cursor is not None:
            sort_key, job_id = decode_cursor(cursor)
            start = {"jobId": {"S": job_id}, "GSI1SK": {"S": sort_key}}
            start.update({"GSI1PK": values[":pk"]} if state is None else {"state": values[":pk"]})
            query["ExclusiveStartKey"] = start
        with translated("dynamodb", "Query"):
            response = self._client.query(**query)
        items = [job_from_item(_from_item(item)) for item in response.get("Items", [])]
        page, more = items[:limit], len(items) > limit
        next_cursor = encode_cursor(list_sort_key(page[-1]), page[-1].job_id) if more else None
        return JobPage(jobs=tuple(page), cursor=next_cursor)

    def check(self) -> None:
        with translated("dynamodb", "DescribeTable"):
            self._client.describe_table(TableName=self._table)

    # --- writes ----------------------------------------------------------------

    def create(self, job: Job) -> None:
        try:
            with self._condition_guard("PutItem"):
                self._client.put_item(
                    TableName=self._table,
                    Item={key: _to_attr(value) for key, value in item_from_job(job).items()},
                    ConditionExpression="attribute_not_exists(jobId)",
                )
        except _ConditionFailed:
            raise JobExists(f"job {job.job_id} already exists", details={"jobId": job.job_id}) from None

    def claim_step(self, job_id: str, step_id: str, *, owner: str, lease_seconds: float) -> Claim:
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + int(lease_seconds * 1000)
        try:
            # The lease is taken only if nobody holds one or the holder's ran
            # out (its worker died or hung past the step's time limit), so two
            # deliveries of one message never compute the step side by side.
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET leases.#lease = :lease",
                    ConditionExpression=(
                        "attribute_exists(jobId) AND #state IN (:queued, :running)"
                        " AND NOT contains(stepIds, :sid)"
                        " AND (attribute_not_exists(leases.#lease) OR leases.#lease.expiresAt < :now)"
                    ),
                    ExpressionAttributeNames={"#state": "state", "#lease": step_id},
                    ExpressionAttributeValues={
                        ":lease": {"M": {"owner": {"S": owner}, "expiresAt": {"N": str(expires_ms)}}},
                        ":queued": {"S": JobState.QUEUED.value},
                        ":running": {"S": JobState.RUNNING.value},
                        ":sid": {"S": step_id},
                        ":now": {"N": str(now_ms)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            if old is None:
                raise JobNotFound(f"no job {job_id}", details={"jobId": job_id}) from None
            if step_id in old.get("stepIds", set()):
                return Claim(ClaimOutcome.DUPLICATE)
            if JobState(old["state"]) in TERMINAL_STATES:
                return Claim(ClaimOutcome.TERMINAL)
            lease = old.get("leases", {}).get(step_id, {})
            return Claim(ClaimOutcome.HELD, expires_at_ms=int(lease.get("expiresAt", expires_ms)))
        return Claim(ClaimOutcome.CLAIMED, expires_at_ms=expires_ms)

    def record_step(self, job_id: str, event: StepEvent, *, total_steps: int) -> RecordOutcome:
        values = {
            ":sid": {"SS": [event.step_id]},
            ":sid_str": {"S": event.step_id},
            ":step": {"L": [_to_attr(event.to_dict())]},
            ":empty": {"L": []},
            ":share": {"N": str(progress_share(event, total_steps))},
            ":now": {"S": utc_now()},
            ":running": {"S": JobState.RUNNING.value},
            ":queued": {"S": JobState.QUEUED.value},
        }
        try:
            # One write: the stepId set is the guard, so a redelivered or
            # concurrent duplicate fails the condition and changes nothing.
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression=(
                        "SET steps = list_append(if_not_exists(steps, :empty), :step),"
                        " updatedAt = :now, #state = :running"
                        " ADD stepIds :sid, progress :share"
                        " REMOVE leases.#lease"
                    ),
                    ConditionExpression=(
                        "attribute_exists(jobId) AND #state IN (:queued, :running)"
                        " AND NOT contains(stepIds, :sid_str)"
                    ),
                    ExpressionAttributeNames={"#state": "state", "#lease": event.step_id},
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            if old is None:
                raise JobNotFound(f"no job {job_id}", details={"jobId": job_id}) from None
            if event.step_id in old.get("stepIds", set()):
                return RecordOutcome.DUPLICATE
            return RecordOutcome.TERMINAL
        return RecordOutcome.RECORDED

    def mark_running(self, job_id: str) -> bool:
        return self._transition(job_id, JobState.RUNNING, {})

    def mark_done(self, job_id: str, *, result_keys: dict, summary: str) -> bool:
        return self._transition(
            job_id,
            JobState.DONE,
            {"resultKeys": result_keys, "resultSummary": summary, "progress": Decimal(1)},
        )

    def mark_retry(self, job_id: str, *, attempt: dict) -> int:
        current = int(attempt["attempt"]) - 1
        try:
            # failed -> queued is the one way out of a terminal state, and only
            # from the attempt the operator saw fail: two retries racing make one.
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression=(
                        "SET #state = :queued, attempt = :next, updatedAt = :now,"
                        " attempts = list_append(if_not_exists(attempts, :empty), :entry)"
                        " REMOVE #error"
                    ),
                    ConditionExpression="#state = :failed AND (attempt = :current OR attribute_not_exists(attempt))",
                    ExpressionAttributeNames={"#state": "state", "#error": "error"},
                    ExpressionAttributeValues={
                        ":queued": {"S": JobState.QUEUED.value},
                        ":failed": {"S": JobState.FAILED.value},
                        ":next": {"N": str(current + 1)},
                        ":current": {"N": str(current)},
                        ":now": {"S": utc_now()},
                        ":empty": {"L": []},
                        ":entry": {"L": [_to_attr(attempt)]},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            if old is None:
                raise JobNotFound(f"no job {job_id}", details={"jobId": job_id}) from None
            state = old["state"]
            details = {"jobId": job_id, "state": state, "attempt": int(old.get("attempt", 1))}
            raise InvalidTransition(
                f"job {job_id} is {state} (attempt {details['attempt']}); only a failed job can be retried",
                details=details,
            ) from None
        return current + 1

    def mark_cancelled(self, job_id: str) -> bool:
        return self._transition(job_id, JobState.CANCELLED, {})

    def mark_failed(self, job_id: str, error: JobError, *, if_updated_at: str | None = None) -> bool:
        try:
            return self._transition(
                job_id, JobState.FAILED, {"error": error.to_dict()}, if_updated_at=if_updated_at
            )
        except JobTerminal:
            return False
        except InvalidTransition:
            if if_updated_at is None:
                raise
            return False  # it moved since ``if_updated_at``: not stalled after all

    # --- internals -------------------------------------------------------------

    def _transition(
        self, job_id: str, target: JobState, fields: dict, *, if_updated_at: str | None = None
    ) -> bool:
        sources = sorted(sources_of(target))
        names = {"#state": "state"}
        values = {":target": {"S": target.value}, ":now": {"S": utc_now()}}
        if if_updated_at:
            values[":seen"] = {"S": if_updated_at}
        values.update({f":src{i}": {"S": state.value} for i, state in enumerate(sources)})
        assignments = ["#state = :target", "updatedAt = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _to_attr(value)
            assignments.append(f"#f{i} = :f{i}")
        try:
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET " + ", ".join(assignments),
                    ConditionExpression=(
                        "attribute_exists(jobId) AND #state IN ("
                        + ", ".join(f":src{i}" for i in range(len(sources)))
                        + ")"
                        + (" AND updatedAt = :seen" if if_updated_at else "")
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            if old is None:
                raise JobNotFound(f"no job {job_id}", details={"jobId": job_id}) from None
            current = JobState(old["state"])
            if current is target:
                return False
            details = {"jobId": job_id, "state": current.value, "target": target.value}
            if current in TERMINAL_STATES:
                raise JobTerminal(f"job {job_id} is already {current}", details=details) from None
            raise InvalidTransition(f"job {job_id} cannot go {current} -> {target}", details=details) from None
        return True

    @contextmanager
    def _condition_guard(self, operation: str) -> Iterator[None]:
        """Translate errors, turning a failed condition into _ConditionFailed with the old item."""
        with translated("dynamodb", operation):
            try:
                yield
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = exc.response.get("Item")
                raise _ConditionFailed(_from_item(old) if old else None) from None

    def _item_after_failed_condition(self, job_id: str) -> dict | None:
        """The job's item read after a failed condition; None if there is no such job.

        For implementations that ignore ReturnValuesOnConditionCheckFailure (dynalite returns no
        item). A job's state and stepIds only move forward, so this later read classifies the
        refusal (duplicate, terminal) as the failed write's own old item would.
        """
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
            )
        return _from_item(response["Item"]) if "Item" in response else None


class _ConditionFailed(Exception):
    def __init__(self, old: dict | None) -> None:
        super().__init__("condition failed")
        self.old = old


# --- item mapping ------------------------------------------------------------


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

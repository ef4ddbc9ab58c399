"""DynamoJobStore: job items in one DynamoDB table, written with conditional updates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated
from storage.dynamo_items import (
    LIST_INDEX,
    LIST_PARTITION,
    STATE_INDEX,
    checkpoint_attribute,
    decode_cursor,
    encode_cursor,
    item_from_job,
    job_from_item,
    list_sort_key,
    progress_share,
)
from storage.dynamo_items import from_item as _from_item
from storage.dynamo_items import to_attr as _to_attr
from storage.errors import (
    AttemptsExhausted,
    EnqueueFailed,
    InvalidTransition,
    JobExists,
    JobNotFound,
    JobTerminal,
)
from storage.model import (
    MAX_ATTEMPTS,
    MAX_SUMMARY_CHARS,
    TERMINAL_STATES,
    Claim,
    ClaimOutcome,
    Completion,
    HandedLease,
    Job,
    JobError,
    JobPage,
    JobState,
    RecordedCheckpoint,
    RecordOutcome,
    StepEvent,
    bounded,
    cancel_record,
    earlier_tries_prefix,
    sources_of,
    utc_now,
)


class DynamoJobStore:
    """JobStore on a DynamoDB table; ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- reads -----------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(TableName=self._table, Key={"jobId": {"S": job_id}}, ConsistentRead=True)
        if "Item" not in response:
            raise JobNotFound(f"no job {job_id}", details={"jobId": job_id})
        return job_from_item(_from_item(response["Item"]))

    def list_jobs(self, *, limit: int, cursor: str | None = None, state: JobState | None = None) -> JobPage:
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
        item = {key: _to_attr(value) for key, value in item_from_job(job).items()}
        try:
            with self._condition_guard("PutItem"):
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(jobId)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            # A retry (botocore's) of a put that was applied but answered with an error finds
            # the item it wrote: the same item, to its creation time and its drawn seed, is ours.
            # Only after a retry: refused at the first try, an equal item is someone else's
            # (a second import of the same export).
            old = (failed.old or self._item_after_failed_condition(job.job_id)) if failed.retried else None
            if old is None or old != _from_item(item):
                raise JobExists(f"job {job.job_id} already exists", details={"jobId": job.job_id}) from None

    def claim_step(self, job_id: str, step_id: str, *, attempt: int, owner: str, lease_seconds: float) -> Claim:
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + int(lease_seconds * 1000)
        # The lease is taken only if nobody holds one or the holder's ran out
        # (its worker died or hung past the step's time limit), so two
        # deliveries of one message never compute the step side by side. The
        # same write moves a queued job to running, and the old item it returns
        # is the step's only read of the job.
        current_attempt = "attempt = :attempt" + (" OR attribute_not_exists(attempt)" if attempt == 1 else "")
        # The lease is this run's own when it holds it already (a retry of this very write, which
        # was applied but answered with an error) or an earlier try of the same message took it
        # (that try ended with an error after its claim applied): model.lease_owner.
        own = "leases.#lease.#owner = :owner"
        values: dict[str, dict[str, Any]] = {}
        prefixes = earlier_tries_prefix(owner)
        if prefixes is not None:
            own += " OR (begins_with(leases.#lease.#owner, :message) AND leases.#lease.#owner < :this_try)"
            values = {":message": {"S": prefixes[0]}, ":this_try": {"S": prefixes[1]}}
        try:
            with self._condition_guard("UpdateItem"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET leases.#lease = :lease, #state = :running, updatedAt = :now",
                    ConditionExpression=(
                        "attribute_exists(jobId) AND #state IN (:queued, :running)"
                        f" AND ({current_attempt})"
                        " AND NOT contains(stepIds, :sid)"
                        " AND (attribute_not_exists(leases.#lease) OR leases.#lease.expiresAt < :now_ms"
                        f" OR {own})"
                    ),
                    ExpressionAttributeNames={"#state": "state", "#lease": step_id, "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":lease": {"M": {"owner": {"S": owner}, "expiresAt": {"N": str(expires_ms)}}},
                        ":queued": {"S": JobState.QUEUED.value},
                        ":running": {"S": JobState.RUNNING.value},
                        ":attempt": {"N": str(attempt)},
                        ":sid": {"S": step_id},
                        ":now_ms": {"N": str(now_ms)},
                        ":now": {"S": utc_now()},
                        ":owner": {"S": owner},
                        **values,
                    },
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            return _refused_claim(old, step_id, attempt, expires_ms)
        old = _from_item(response["Attributes"])
        # Resumed: another run (not this one, retrying its own write) took the lease and never
        # recorded the step, so it may have left its checkpoint.
        held = old.get("leases", {}).get(step_id)
        resumed = held is not None and held.get("owner") != owner
        return Claim(ClaimOutcome.CLAIMED, expires_at_ms=expires_ms, job=job_from_item(old), resumed=resumed)

    def renew_lease(self, job_id: str, step_id: str, *, owner: str, lease_seconds: float) -> bool:
        expires_ms = int(time.time() * 1000) + int(lease_seconds * 1000)
        # Only the lease's expiry moves, not updatedAt: a step that keeps its lease is not
        # progress the stall sweep should count (the step's hard time limit bounds it anyway).
        try:
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET leases.#lease.expiresAt = :expires",
                    ConditionExpression="leases.#lease.#owner = :owner AND NOT contains(stepIds, :sid)",
                    ExpressionAttributeNames={"#lease": step_id, "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":expires": {"N": str(expires_ms)},
                        ":owner": {"S": owner},
                        ":sid": {"S": step_id},
                    },
                )
        except _ConditionFailed:
            return False
        return True

    def record_step(
        self,
        job_id: str,
        event: StepEvent,
        *,
        total_steps: int,
        done: Completion | None = None,
        error: JobError | None = None,
        attempt: int | None = None,
        next_lease: HandedLease | None = None,
        checkpoint: RecordedCheckpoint | None = None,
        drop_checkpoint: bool = False,
    ) -> RecordOutcome:
        # One write: the stepId set is the guard, so a redelivered or
        # concurrent duplicate fails the condition and changes nothing. The last
        # step's record also marks the job done, and a step's error fails it, in
        # that same write, so no crash can fall between the record and the state.
        # It also hands the next step's lease to the message about to carry it,
        # and keeps the step's checkpoint in place of the one before.
        names = {"#state": "state", "#lease": event.step_id}
        now = utc_now()
        values: dict[str, dict[str, Any]] = {
            ":sid": {"SS": [event.step_id]},
            ":sid_str": {"S": event.step_id},
            ":step": {"L": [_to_attr(event.to_dict())]},
            ":empty": {"L": []},
            ":now": {"S": now},
            ":running": {"S": JobState.RUNNING.value},
            ":queued": {"S": JobState.QUEUED.value},
        }
        assignments = ["steps = list_append(if_not_exists(steps, :empty), :step)", "updatedAt = :now"]
        additions = ["stepIds :sid"]
        removals = ["leases.#lease"]
        if done is not None or (drop_checkpoint and error is None):
            # No retry after the end; or the step's checkpoint went to S3, and the one kept here
            # is an earlier step's, which no retry needs any more.
            removals.append("#checkpoint")
            names["#checkpoint"] = "checkpoint"
        if done is not None:
            assignments += ["#state = :done", "progress = :one", "resultKeys = :keys", "resultSummary = :summary"]
            values.update(
                {
                    ":done": {"S": JobState.DONE.value},
                    ":one": {"N": "1"},
                    ":keys": _to_attr(done.result_keys),
                    ":summary": {"S": done.summary},
                }
            )
        elif error is not None:
            assignments += ["#state = :failed", "#error = :error"]
            names["#error"] = "error"
            values.update({":failed": {"S": JobState.FAILED.value}, ":error": _to_attr(error.to_dict())})
        else:
            assignments.append("#state = :running")
            additions.append("progress :share")
            values[":share"] = {"N": str(progress_share(event, total_steps))}
            if next_lease is not None:
                assignments.append("leases.#next = :next_lease")
                names["#next"] = next_lease.step_id
                expires_ms = int(time.time() * 1000) + int(next_lease.lease_seconds * 1000)
                values[":next_lease"] = {"M": {"owner": {"S": next_lease.owner}, "expiresAt": {"N": str(expires_ms)}}}
            if checkpoint is not None and not drop_checkpoint:
                assignments.append("#checkpoint = :checkpoint")
                names["#checkpoint"] = "checkpoint"
                values[":checkpoint"] = _to_attr(checkpoint_attribute(checkpoint))
        condition = "attribute_exists(jobId) AND #state IN (:queued, :running) AND NOT contains(stepIds, :sid_str)"
        if attempt is not None:
            # A run that made no claim (its lease was handed on) checks its attempt here.
            condition += " AND (attempt = :attempt" + (" OR attribute_not_exists(attempt))" if attempt == 1 else ")")
            values[":attempt"] = {"N": str(attempt)}
        old = self._update_job(
            job_id,
            UpdateExpression=(
                "SET " + ", ".join(assignments) + " ADD " + ", ".join(additions) + " REMOVE " + ", ".join(removals)
            ),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        if old is None:
            return RecordOutcome.RECORDED
        if event.step_id in old.get("stepIds", set()):
            # Ours when the entry recorded is this event and the item's last write is this one
            # (its updatedAt, to the millisecond): a retry of this write, which was applied but
            # answered with an error. An equal event posted twice is still a duplicate.
            recorded = next((s for s in old.get("steps", []) if s.get("stepId") == event.step_id), None)
            mine = recorded == _written(event.to_dict()) and old.get("updatedAt") == now
            return RecordOutcome.RECORDED if mine else RecordOutcome.DUPLICATE
        if (
            attempt is not None
            and JobState(old["state"]) not in TERMINAL_STATES
            and int(old.get("attempt", 1)) != attempt
        ):
            return RecordOutcome.STALE
        return RecordOutcome.TERMINAL

    def mark_running(self, job_id: str) -> bool:
        return self._transition(job_id, JobState.RUNNING, {})

    def mark_done(self, job_id: str, *, result_keys: dict[str, Any], summary: str) -> bool:
        return self._transition(
            job_id,
            JobState.DONE,
            {"resultKeys": result_keys, "resultSummary": bounded(summary, MAX_SUMMARY_CHARS), "progress": Decimal(1)},
            removed=("checkpoint",),
        )

    def mark_retry(self, job_id: str, *, attempt: dict[str, Any]) -> int:
        current = int(attempt["attempt"]) - 1
        # failed -> queued is the one way out of a terminal state (with mark_resent's), and only
        # from the attempt the operator saw fail: two retries racing make one.
        # The cap on attempts bounds the item's size (docs/schema.md, "Sizes").
        old = self._update_job(
            job_id,
            UpdateExpression=(
                "SET #state = :queued, attempt = :next, updatedAt = :now,"
                " attempts = list_append(if_not_exists(attempts, :empty), :entry)"
                " REMOVE #error"
            ),
            ConditionExpression=(
                "#state = :failed AND (attempt = :current OR attribute_not_exists(attempt))"
                " AND (attempt < :max OR attribute_not_exists(attempt))"
            ),
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues={
                ":queued": {"S": JobState.QUEUED.value},
                ":failed": {"S": JobState.FAILED.value},
                ":next": {"N": str(current + 1)},
                ":current": {"N": str(current)},
                ":max": {"N": str(MAX_ATTEMPTS)},
                ":now": {"S": utc_now()},
                ":empty": {"L": []},
                ":entry": {"L": [_to_attr(attempt)]},
            },
        )
        if old is not None and old.get("attempts") and old["attempts"][-1] == _written(attempt):
            # This very retry, applied but answered with an error, then refused on its retry.
            return current + 1
        if old is not None:
            details = {"jobId": job_id, "state": old["state"], "attempt": int(old.get("attempt", 1))}
            if old["state"] == JobState.FAILED.value and details["attempt"] >= MAX_ATTEMPTS:
                raise AttemptsExhausted(
                    f"job {job_id} has used all {MAX_ATTEMPTS} attempts; it cannot be retried again",
                    details={**details, "maxAttempts": MAX_ATTEMPTS},
                )
            raise InvalidTransition(
                f"job {job_id} is {old['state']} (attempt {details['attempt']}); only a failed job can be retried",
                details=details,
            )
        return current + 1

    def mark_resent(self, job_id: str, *, attempt: int, at: str) -> bool:
        same_attempt = "(attempt = :attempt OR attribute_not_exists(attempt))" if attempt == 1 else "attempt = :attempt"
        old = self._update_job(
            job_id,
            # The leases map stays (claims set its entries), empty: the lease the item handed a
            # message that was lost would hold the resent message's claim off until it lapsed.
            UpdateExpression="SET #state = :queued, updatedAt = :at, leases = :none REMOVE #error",
            ConditionExpression=(
                f"#state = :failed AND {same_attempt} AND #error.code = :unsent AND attribute_not_exists(stepIds)"
            ),
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues={
                ":queued": {"S": JobState.QUEUED.value},
                ":failed": {"S": JobState.FAILED.value},
                ":attempt": {"N": str(attempt)},
                ":unsent": {"S": EnqueueFailed.code},
                ":at": {"S": at},
                ":none": {"M": {}},
            },
        )
        if old is None:
            return True
        if old["state"] == JobState.QUEUED.value and int(old.get("attempt", 1)) == attempt:
            # This very write (applied, answered with an error, refused on botocore's retry) when the
            # item's last write is at ``at``; another retry of the submission's otherwise.
            return bool(old.get("updatedAt") == at)
        raise InvalidTransition(
            f"job {job_id} is {old['state']} (attempt {int(old.get('attempt', 1))}); only a job whose send failed"
            " before any step ran is sent again as the same attempt",
            details={"jobId": job_id, "state": old["state"], "attempt": int(old.get("attempt", 1))},
        )

    def mark_cancelled(self, job_id: str, *, by: str, reason: str) -> bool:
        record = cancel_record(job_id, at=utc_now(), by=by, reason=reason)
        return self._transition(job_id, JobState.CANCELLED, {"cancellation": record})

    def mark_failed(
        self, job_id: str, error: JobError, *, if_updated_at: str | None = None, if_queued: bool = False
    ) -> bool:
        try:
            return self._transition(
                job_id,
                JobState.FAILED,
                {"error": error.to_dict()},
                if_updated_at=if_updated_at,
                only_from=(JobState.QUEUED,) if if_queued else None,
            )
        except JobTerminal:
            return False
        except InvalidTransition:
            if if_updated_at is None and not if_queued:
                raise
            return False  # it moved since ``if_updated_at``, or left queued: not stalled, or sent, after all

    # --- internals -------------------------------------------------------------

    def _transition(
        self,
        job_id: str,
        target: JobState,
        fields: dict[str, Any],
        *,
        if_updated_at: str | None = None,
        removed: tuple[str, ...] = (),
        only_from: tuple[JobState, ...] | None = None,
    ) -> bool:
        """``target`` from any state that may go there, or from ``only_from`` (a subset of those)."""
        sources = sorted(only_from or sources_of(target))
        names = {"#state": "state"}
        now = utc_now()
        values = {":target": {"S": target.value}, ":now": {"S": now}}
        if if_updated_at:
            values[":seen"] = {"S": if_updated_at}
        values.update({f":src{i}": {"S": state.value} for i, state in enumerate(sources)})
        assignments = ["#state = :target", "updatedAt = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _to_attr(value)
            assignments.append(f"#f{i} = :f{i}")
        for i, name in enumerate(removed):
            names[f"#r{i}"] = name
        removal = " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed))) if removed else ""
        old = self._update_job(
            job_id,
            UpdateExpression="SET " + ", ".join(assignments) + removal,
            ConditionExpression=(
                "attribute_exists(jobId) AND #state IN ("
                + ", ".join(f":src{i}" for i in range(len(sources)))
                + ")"
                + (" AND updatedAt = :seen" if if_updated_at else "")
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        if old is None:
            return True
        current = JobState(old["state"])
        if (
            current is target
            and old.get("updatedAt") == now
            and all(old.get(name) == _written(value) for name, value in fields.items())
        ):
            # This very write, applied but answered with an error, then refused on its retry.
            return True
        if current is target:
            return False
        details = {"jobId": job_id, "state": current.value, "target": target.value}
        if current in TERMINAL_STATES:
            raise JobTerminal(f"job {job_id} is already {current}", details=details)
        raise InvalidTransition(f"job {job_id} cannot go {current} -> {target}", details=details)

    def _update_job(self, job_id: str, **request: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem of a job: None if it applied, else the item as it stood.

        JobNotFound when there is no such job. The old item comes back with the refusal
        (ReturnValuesOnConditionCheckFailure), so classifying it needs no second read.
        """
        try:
            with self._condition_guard("UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"jobId": {"S": job_id}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                )
        except _ConditionFailed as failed:
            old = failed.old or self._item_after_failed_condition(job_id)
            if old is None:
                raise JobNotFound(f"no job {job_id}", details={"jobId": job_id}) from None
            return old
        return None

    @contextmanager
    def _condition_guard(self, operation: str) -> Iterator[None]:
        """Translate errors, turning a failed condition into _ConditionFailed with the old item."""
        with translated("dynamodb", operation):
            try:
                yield
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old: Any = exc.response.get("Item")
                retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
                raise _ConditionFailed(_from_item(old) if old else None, retried=retried) from None

    def _item_after_failed_condition(self, job_id: str) -> dict[str, Any] | None:
        """The job's item read after a failed condition; None if there is no such job.

        For implementations that ignore ReturnValuesOnConditionCheckFailure (dynalite returns no
        item). A job's state and stepIds only move forward, so this later read classifies the
        refusal (duplicate, terminal) as the failed write's own old item would.
        """
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(TableName=self._table, Key={"jobId": {"S": job_id}}, ConsistentRead=True)
        return _from_item(response["Item"]) if "Item" in response else None


def _written(value: Any) -> Any:
    """``value`` as it reads back from an item (numbers as Decimal, ...), to compare with one."""
    return _from_item({"v": _to_attr(value)})["v"]


def _refused_claim(old: dict[str, Any] | None, step_id: str, attempt: int, expires_ms: int) -> Claim:
    """Why a claim's condition failed, read from the item as it stood."""
    if old is None:
        return Claim(ClaimOutcome.MISSING)
    job = job_from_item(old)
    if job.terminal:
        return Claim(ClaimOutcome.TERMINAL, job=job)
    if job.attempt != attempt:
        return Claim(ClaimOutcome.STALE, job=job)
    if step_id in job.step_ids:
        return Claim(ClaimOutcome.DUPLICATE, job=job)
    lease = old.get("leases", {}).get(step_id, {})
    return Claim(ClaimOutcome.HELD, expires_at_ms=int(lease.get("expiresAt", expires_ms)), job=job)


class _ConditionFailed(Exception):
    def __init__(self, old: dict[str, Any] | None, *, retried: bool = False) -> None:
        super().__init__("condition failed")
        self.old = old
        self.retried = retried  # botocore sent the request more than once: an earlier try may have applied

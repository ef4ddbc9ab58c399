"""A job's critical path and its bill, from the emulator's timed recording (scripts/aws_requests.py).

Critical path. A step's message is delivered by a ReceiveMessage that returns it; the next step's
by another. Between the two, the requests of the job's path (its table, bucket and queue) that
began after the first answer and before the second make a partial order in time: one request
follows another if it began after the other's answer went. The longest such chain, plus the
receive, is the step's count of sequential round trips: requests issued side by side count
once, and the chain ends with the send that makes the next delivery. No delete counts: a
message's own comes after the send, and the step before's is made beside the worker's consumer
loop (tasks/sqs_acks.py), so it holds no message back; nor does that step's checkpoint upload,
in its own process (see _of). (The send's answer may leave a moment after the long poll it woke
has returned the message: it still counts.)
A receive is a long poll that waits for the message, so only its answer is on the path.

Cost. At list prices (``PRICES``, us-east-1, free tiers left out): SQS bills each request per
64 KB chunk of its payload (a send by its message, a receive by what it returned), DynamoDB an
on-demand write by the item's size in 1 KB units — an update on the larger of the item before
and after, bounded here by the finished item's size (the largest it gets but for a lease's
hundred bytes and the checkpoint a record keeps) plus the larger of the checkpoints the item
keeps before and after the write (read off each write: AwsRequest.sets_checkpoint) — and again
in each global secondary index that holds the item, by its entry's size, twice when the write
moves the entry (it changes the index's key) — and S3 a PUT or a GET per request.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_requests import AwsRequest, StackNames, category

# USD, us-east-1 list prices (aws.amazon.com/sqs|dynamodb|s3/pricing, checked December 2026).
PRICES = {
    "sqs request (64 KB chunk)": 0.40 / 1_000_000,  # standard queue
    "dynamodb write request unit": 0.625 / 1_000_000,  # on-demand, since November 2024
    "dynamodb write request unit, indexes": 0.625 / 1_000_000,  # a GSI's writes are billed as the table's
    "s3 PUT": 0.005 / 1_000,  # S3 Standard: PUT, COPY, POST, LIST
    "s3 GET": 0.0004 / 1_000,  # S3 Standard: GET, SELECT and all other requests
}
SQS_CHUNK = 64 * 1024
DYNAMO_WRITE_UNIT = 1024


@dataclass(frozen=True)
class StepPath:
    """The sequential round trips from one step's delivery to the next's."""

    index: int  # the step's position in the job (0 for the first)
    chain: tuple[AwsRequest, ...]  # the longest sequential chain between the two deliveries
    delivered_at: float  # when the step's message was returned (its receive's answer)
    next_at: float  # when the next step's message was

    @property
    def round_trips(self) -> int:
        return 1 + len(self.chain)  # the receive, then the chain


def job_requests(served: Iterable[AwsRequest], names: StackNames) -> list[AwsRequest]:
    """The requests of the job path, in the order their answers went."""
    return sorted((r for r in served if category(r, names) == "job"), key=lambda r: r.ended_at)


def deliveries(requests: Sequence[AwsRequest], queue_url: str) -> list[AwsRequest]:
    """The receives of the job queue that returned a message."""
    return [r for r in requests if r.operation == "ReceiveMessage" and r.resource == queue_url and r.messages]


def critical_paths(served: Iterable[AwsRequest], names: StackNames, steps: Sequence[str]) -> list[list[StepPath]]:
    """Per job, the path of every step (named ``steps``, in order) but the last; the jobs ran one
    after another, alone."""
    requests = job_requests(served, names)
    delivered = deliveries(requests, names.queue_url)
    if any(r.messages > 1 for r in delivered) or len(delivered) % len(steps):
        raise ValueError(f"{len(delivered)} deliveries for jobs of {len(steps)} steps: were the jobs not sequential?")
    others = [r for r in requests if r.operation != "ReceiveMessage"]
    jobs = []
    for first in range(0, len(delivered), len(steps)):
        job = delivered[first : first + len(steps)]
        paths = []
        for index, (this, after) in enumerate(itertools.pairwise(job)):
            window = [
                r
                for r in others
                if this.ended_at <= r.started_at < after.ended_at and _of(r, steps[max(0, index - 1) : index + 1])
            ]
            paths.append(StepPath(index, _longest_chain(window), this.ended_at, after.ended_at))
        jobs.append(paths)
    return jobs


def _of(request: AwsRequest, steps: Sequence[str]) -> bool:
    """Whether ``request`` can stand between a step's delivery and the next one's.

    No delete: SQS answers the next receive whether or not this message's own was made, and the
    step before's is made in a thread beside the worker's consumer loop (tasks/sqs_acks.py),
    which hands this message to a process without waiting for it. (Until the ack left the loop,
    kombu made that delete synchronously in it, and it was counted when it came before the
    step's first write.) Not the step before's checkpoint upload, which runs in that step's process (told
    apart by key).
    """
    if request.operation == "DeleteMessage":
        return False
    if request.service == "s3" and "/steps/" in f"/{request.key}":
        previous, own = ([None] + list(steps))[-2:]
        wanted = {"GetObject": previous, "PutObject": own}.get(request.operation)
        return wanted is not None and request.key.endswith(f"steps/{wanted}.json")
    return True


def _longest_chain(requests: list[AwsRequest]) -> tuple[AwsRequest, ...]:
    """The longest sequence in which each request began after the one before had its answer,
    ending with the send that makes the next delivery (what comes after it holds nothing back)."""
    ordered = sorted(requests, key=lambda r: r.ended_at)
    best: list[tuple[AwsRequest, ...]] = []
    for index, request in enumerate(ordered):
        before = [best[k] for k in range(index) if ordered[k].ended_at <= request.started_at]
        best.append(max(before, key=len, default=()) + (request,))
    return max((chain for chain in best if chain[-1].operation == "SendMessage"), key=len, default=())


def describe(path: StepPath, served: Sequence[AwsRequest]) -> str:
    """``receive → UpdateItem → UpdateItem ‖ PutObject → ...``, each at its ms after the delivery
    ``@start+duration`` (the duration as the emulator served it: the rest is the client's)."""
    parts = ["ReceiveMessage@0"]
    for request in path.chain:
        beside = sorted(
            r.operation
            for r in served
            if r is not request
            and r.operation != "ReceiveMessage"
            and r.started_at < request.ended_at
            and r.ended_at > request.started_at
            and path.delivered_at <= r.started_at < path.next_at
        )
        ops = " ‖ ".join([request.operation, *beside])
        start, took = (request.started_at - path.delivered_at) * 1000, (request.ended_at - request.started_at) * 1000
        parts.append(f"{ops}@{start:.0f}+{took:.0f}")
    parts.append(f"next ReceiveMessage@{(path.next_at - path.delivered_at) * 1000:.0f}")
    return " → ".join(parts)


def job_cost(served: Iterable[AwsRequest], names: StackNames, jobs: int, item: dict, indexes: Sequence[dict]) -> dict:
    """Billed units and USD per job for the job path, and the item size the writes were billed on.

    ``item`` is a finished job's item (low-level form) and ``indexes`` the table's
    GlobalSecondaryIndexes as DescribeTable gives them. Each write of a job item is billed on the
    item's size, and once more in every index that holds the item, on the size of its entry there
    (the projected attributes and the keys): a write is taken to change a projected attribute, as
    every job write does under ALL (each sets ``updatedAt``). A write that changes an index's key
    (``state``, for the index keyed on it) is two writes there: the old entry deleted, the new one
    put. A job's state changes are read from the writes' ``state`` in the order they were served.
    """
    item_bytes = dynamo_item_bytes(item)
    held = [index for index in indexes if all(key["AttributeName"] in item for key in index["KeySchema"])]
    entries = {index["IndexName"]: _entry_bytes(item, index) for index in held}
    # Per index: the units of one write of the item's entry, and whether `state` is in its key.
    per_index = [
        (_write_units(entries[index["IndexName"]]), any(key["AttributeName"] == "state" for key in index["KeySchema"]))
        for index in held
    ]
    states: dict[str, str] = {}
    kept: dict[str, int] = {}  # item -> the bytes of the checkpoint it keeps
    largest_kept = 0
    units: Counter[str] = Counter()
    for request in sorted(served, key=lambda r: r.ended_at):
        if category(request, names) != "job":
            continue
        if request.service == "sqs":
            payload = request.request_bytes if request.operation == "SendMessage" else request.response_bytes
            units["sqs request (64 KB chunk)"] += max(1, math.ceil(payload / SQS_CHUNK))
        elif request.service == "dynamodb" and request.operation in ("PutItem", "UpdateItem"):
            before_kept = kept.get(request.item, 0)
            after_kept = _checkpoint_bytes(request.sets_checkpoint, before_kept)
            kept[request.item], largest_kept = after_kept, max(largest_kept, after_kept)
            units["dynamodb write request unit"] += _write_units(item_bytes + max(before_kept, after_kept))
            before = states.get(request.item)
            changed = before is not None and request.sets_state not in ("", before)
            if request.sets_state:
                states[request.item] = request.sets_state
            for write_units, keyed_on_state in per_index:
                units["dynamodb write request unit, indexes"] += (2 if changed and keyed_on_state else 1) * write_units
        elif request.service == "s3" and request.operation in ("PutObject", "GetObject"):
            units[f"s3 {request.operation[:3].upper()}"] += 1
    per_job = {name: count / jobs for name, count in sorted(units.items())}
    usd = sum(PRICES[name] * count for name, count in per_job.items())
    return {
        "units": per_job,
        "usdPerJob": usd,
        "usdPerMillionJobs": round(usd * 1_000_000, 2),
        "itemBytes": item_bytes,
        "checkpointBytes": largest_kept,
        "indexes": entries,
    }


def _checkpoint_bytes(sets_checkpoint: str, before: int) -> int:
    """The bytes of the checkpoint an item keeps after a write (see AwsRequest.sets_checkpoint)."""
    if not sets_checkpoint:
        return before
    if sets_checkpoint == "-":
        return 0
    return dynamo_item_bytes({"checkpoint": json.loads(sets_checkpoint)})


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / DYNAMO_WRITE_UNIT))


def _entry_bytes(item: dict, index: dict) -> int:
    """The size of ``item``'s entry in ``index``: what its projection copies, and the keys."""
    projection = index.get("Projection", {})
    if projection.get("ProjectionType", "ALL") == "ALL":
        return dynamo_item_bytes(item)
    kept = {"jobId", *(key["AttributeName"] for key in index["KeySchema"]), *projection.get("NonKeyAttributes", ())}
    return dynamo_item_bytes({name: value for name, value in item.items() if name in kept})


def dynamo_item_bytes(item: dict) -> int:
    """An item's size as DynamoDB bills it: each attribute's name plus its value (low-level form)."""
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(inner) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: element}) for element in inner)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + _value_bytes(element) for name, element in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")

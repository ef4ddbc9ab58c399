"""What `make bench` bills a job's DynamoDB writes: the table's units, and each index's.

A job item sits in both global secondary indexes (GSI1, the listing; GSI2, by state), so every write
of the item is also a write of its entry in each, billed on the entry's size (the whole item under
ALL, the projected attributes under INCLUDE), and a write that changes `state` moves its GSI2
entry: two writes there. Read from recorded requests, as the emulator's recorder gives them
(scripts/aws_requests.py, scripts/hot_path.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hot_path import job_cost

from aws_requests import AwsRequest, StackNames, parse  # scripts/ is on the path (tests/conftest.py)

NAMES = StackNames(table="jobs", bucket="artifacts", queue_url="http://sqs/q", control_prefix="ctl-")
AUTH = "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"


def recorded(operation: str, body: dict) -> dict:
    """One entry of moto's recorder for a DynamoDB request."""
    headers = {"Authorization": AUTH, "X-Amz-Target": f"DynamoDB_20120810.{operation}"}
    return {"headers": headers, "method": "POST", "url": "http://127.0.0.1/", "body": json.dumps(body)}


def update(expression: str, values: dict, condition: str | None = None) -> dict:
    """A recorded UpdateItem of job j1's item, with the placeholders the store uses."""
    body = {
        "TableName": "jobs",
        "Key": {"jobId": {"S": "j1"}},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {"#lease": "j1/0/1", "#state": "state"},
        "ExpressionAttributeValues": {":running": {"S": "running"}, **values},
    }
    return recorded("UpdateItem", body | ({"ConditionExpression": condition} if condition else {}))


def test_a_write_names_its_job_and_the_state_it_sets():
    put = parse(recorded("PutItem", {"TableName": "jobs", "Item": {"jobId": {"S": "j1"}, "state": {"S": "queued"}}}))
    assert (put.item, put.sets_state) == ("j1", "queued")

    claim = parse(
        update(
            "SET leases.#lease = :lease, #state = :running, updatedAt = :now", {":now": {"S": "t"}, ":lease": {"M": {}}}
        )
    )
    assert (claim.item, claim.sets_state) == ("j1", "running")

    # A condition reads `state`; it sets nothing.
    renewal = parse(update("SET leases.#lease.expiresAt = :expires", {":expires": {"N": "1"}}, "#state = :running"))
    assert (renewal.item, renewal.sets_state) == ("j1", "")


def write(operation: str, job: str, state: str, at: float) -> AwsRequest:
    return AwsRequest("dynamodb", operation, "jobs", started_at=at, ended_at=at, item=job, sets_state=state)


def one_job(job: str, start: float) -> list[AwsRequest]:
    """A default job's writes: the API's put, the first step's claim, five records, the last one."""
    states = ["queued", "running", *["running"] * 5, "done"]
    return [write("PutItem" if n == 0 else "UpdateItem", job, state, start + n) for n, state in enumerate(states)]


ITEM = {
    "jobId": {"S": "j1"},
    "state": {"S": "done"},
    "GSI1PK": {"S": "JOB"},
    "GSI1SK": {"S": "2026-12-06T00:00:00.000Z#j1"},
    "request": {"S": "x" * 2700},
}
# Each attribute's name and value, in bytes: jobId j1, state done, GSI1PK JOB, GSI1SK, request.
SIZE = (5 + 2) + (5 + 4) + (6 + 3) + (6 + 27) + (7 + 2700)


def index(name: str, partition: str, projection: dict) -> dict:
    keys = [{"AttributeName": partition, "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]
    return {"IndexName": name, "KeySchema": keys, "Projection": projection}


ALL = {"ProjectionType": "ALL"}


def test_each_write_is_billed_in_the_table_and_in_both_indexes_and_a_state_change_moves_gsi2s_entry():
    served = one_job("j1", 0) + one_job("j2", 0.5)  # two jobs, interleaved in time
    cost = job_cost(served, NAMES, 2, ITEM, [index("GSI1", "GSI1PK", ALL), index("GSI2", "state", ALL)])
    assert cost["itemBytes"] == SIZE and 2 * 1024 < SIZE <= 3 * 1024
    units = cost["units"]
    assert units["dynamodb write request unit"] == 8 * 3
    # 8 writes in each index at 3 units, and the two state changes (queued -> running -> done)
    # each delete and put again GSI2's entry: 2 x 3 more.
    assert units["dynamodb write request unit, indexes"] == 8 * 2 * 3 + 2 * 3
    assert cost["usdPerMillionJobs"] == pytest.approx((24 + 54) * 0.625, abs=0.01)
    assert cost["indexes"] == {"GSI1": SIZE, "GSI2": SIZE}


def test_a_narrow_projection_bills_its_entrys_size_and_an_index_without_the_item_nothing():
    keys_only = index("GSI2", "state", {"ProjectionType": "KEYS_ONLY"})
    elsewhere = index("GSI3", "ownerJobId", ALL)  # a job item has no ownerJobId
    cost = job_cost(one_job("j1", 0), NAMES, 1, ITEM, [keys_only, elsewhere])
    assert cost["indexes"] == {"GSI2": (5 + 2) + (5 + 4) + (6 + 27)}  # jobId, state, GSI1SK
    assert cost["units"]["dynamodb write request unit, indexes"] == 8 * 1 + 2 * 1


def test_a_write_that_leaves_the_state_as_it_was_does_not_move_the_entry():
    served = [
        write("PutItem", "j1", "queued", 0),
        write("UpdateItem", "j1", "", 1),
        write("UpdateItem", "j1", "queued", 2),
    ]
    cost = job_cost(served, NAMES, 1, ITEM, [index("GSI2", "state", ALL)])
    assert cost["units"]["dynamodb write request unit, indexes"] == 3 * 3


def test_a_record_says_what_it_does_to_the_checkpoint_the_item_keeps():
    kept = {"M": {"step": {"S": "populate"}, "zlib": {"B": "eJw="}}}
    keeps = recorded(
        "UpdateItem",
        {
            "TableName": "jobs",
            "Key": {"jobId": {"S": "j1"}},
            "UpdateExpression": (
                "SET #state = :running, #checkpoint = :checkpoint ADD stepIds :sid REMOVE leases.#lease"
            ),
            "ExpressionAttributeNames": {"#state": "state", "#checkpoint": "checkpoint", "#lease": "j1:populate"},
            "ExpressionAttributeValues": {":running": {"S": "running"}, ":checkpoint": kept, ":sid": {"SS": ["x"]}},
        },
    )
    assert json.loads(parse(keeps).sets_checkpoint) == kept
    drops = recorded(
        "UpdateItem",
        {
            "TableName": "jobs",
            "Key": {"jobId": {"S": "j1"}},
            "UpdateExpression": "SET #state = :done ADD stepIds :sid REMOVE leases.#lease, #checkpoint",
            "ExpressionAttributeNames": {"#state": "state", "#checkpoint": "checkpoint", "#lease": "j1:x"},
            "ExpressionAttributeValues": {":done": {"S": "done"}, ":sid": {"SS": ["x"]}},
        },
    )
    assert parse(drops).sets_checkpoint == "-"
    claim = parse(update("SET leases.#lease = :lease, #state = :running", {":lease": {"M": {}}}))
    assert claim.sets_checkpoint == ""


def test_a_write_is_billed_on_the_item_with_the_larger_of_the_checkpoints_before_and_after_it():
    """The finished item (no checkpoint: the last record removes it) plus what each write keeps:
    a 1.5 KB checkpoint set by the second record is billed there and on the write that replaces
    it; a write that leaves it (a claim) is billed with it."""
    checkpoint = json.dumps({"M": {"step": {"S": "s"}, "zlib": {"B": "A" * 2000}}})  # 1,500 bytes
    size = len("checkpoint") + 3 + (1 + 4 + 1) + (1 + 4 + 1500)
    writes = [write("PutItem", "j1", "queued", 0), write("UpdateItem", "j1", "running", 1)]
    sets = [checkpoint, "", checkpoint.replace("AAAA", "BBBB", 1), "-"]
    writes += [replace(write("UpdateItem", "j1", "", 2 + n), sets_checkpoint=value) for n, value in enumerate(sets)]
    cost = job_cost(writes, NAMES, 1, ITEM, [])
    assert cost["checkpointBytes"] == size
    # SIZE alone is 3 units; with the checkpoint, 5: on the write that sets it, the claim that
    # leaves it, the one that replaces it, and the one that removes it.
    assert cost["units"]["dynamodb write request unit"] == 3 + 3 + 4 * 5

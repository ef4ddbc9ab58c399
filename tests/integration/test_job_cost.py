"""What a job costs in AWS requests, counted by the emulator's recorder (scripts/aws_requests.py).

Every step but the last costs 4 requests: one record (UpdateItem), which also takes the next
step's lease for the message that will carry it (tasks/runner.py) and keeps the step's checkpoint
in the job's item (a default level's are all small enough: tasks/checkpoints.py); and its message
received, deleted and the next one sent (SQS). No step claims: the job's item, as the API writes
it, hands the first step its lease the same way (tasks/dispatch.py). No step writes a checkpoint
to S3, and none reads one, since a default level's checkpoints travel in the next step's message.
The last step writes the artifacts and result.json and sends nothing. And no task event is
published while nobody watches (Flower turns them on).

On the critical path from one step's receive to the next's, 3 of them follow one another by
design (scripts/hot_path.py): receive, record, send. The step's delete comes after the send, in
a thread beside the worker's consumer loop (tasks/sqs_acks.py), so it holds back neither the next
step's delivery nor its record.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections import Counter

import pytest
from hot_path import critical_paths, describe, job_cost

import pipeline
from aws_requests import StackNames, categorise, category, recorded_so_far, recording
from storage.bootstrap import aws_client
from tasks.artifacts import ARTIFACTS
from tasks.checkpoints import HANDOVER_MAX_BYTES, RECORD_CHECKPOINT_MAX_BYTES
from tasks.doom_nodes import node_builder

pytestmark = pytest.mark.integration

JOBS = 4
STEPS = len(pipeline.STEPS)


@pytest.fixture(scope="module")
def costed(make_stack):
    # Its own control prefix tells its events apart from other stacks' on the shared emulator, and
    # the longest long poll makes every receive one that a message ends (as on SQS when busy).
    return make_stack({"CONTROL_PREFIX": "cost-ctl-", "SQS_WAIT_TIME_SECONDS": "20"})


def test_a_step_costs_four_aws_requests_record_and_send_in_a_row_and_the_last_writes_the_artifacts(costed):
    settings = costed.stack.settings
    names = StackNames(
        table=settings.jobs_table_name,
        bucket=settings.artifacts_bucket,
        queue_url=costed.stack.env["SQS_QUEUE_URL"],
        control_prefix="cost-ctl-",
    )
    # Warm: queues, topics and caches made, in both of the worker's processes (two jobs at once),
    # so no process's first send (kombu declares the queue) or first store falls in the count.
    for job_id in [costed.submit()["jobId"] for _ in range(2)]:
        costed.wait_terminal(job_id)
    with recording(costed.stack.emulator_url) as served:
        # Waiting on the worker's log, not on /status: polling would add reads of our own.
        jobs = [wait_done_in_log(costed, costed.submit()["jobId"]) for _ in range(JOBS)]
        # The last message is deleted just after the job is done: let it land in the recording.
        settle(
            costed,
            lambda served: (
                sum(r.operation == "DeleteMessage" and r.resource == names.queue_url for r in served) >= STEPS * JOBS
            ),
        )
    assert all(costed.status(job_id)["state"] == "done" for job_id in jobs)
    counts = categorise(served, names)
    job = Counter({(service, op): n for (category, service, op), n in counts.items() if category == "job"})
    per_job = {key: value / JOBS for key, value in sorted(job.items())}
    print(f"job path, per job: {per_job}")

    # Everything but the receives is exact.
    assert job[("dynamodb", "PutItem")] == JOBS  # the API writes the job
    # A record per step, and no claim: the API's item hands the first step its lease, and each
    # record the next step's.
    assert job[("dynamodb", "UpdateItem")] == STEPS * JOBS
    assert job[("dynamodb", "GetItem")] == 0  # each message carries the job as its step needs it
    # What make bench bills the indexes for, read off these writes: each names its job, and a
    # job's states go queued (the API), running (the first five records), done (the last).
    writes = sorted(
        (r for r in served if category(r, names) == "job" and r.operation in ("PutItem", "UpdateItem")),
        key=lambda r: r.ended_at,
    )
    assert {r.item for r in writes} == set(jobs)
    for job_id in jobs:
        states = [r.sets_state for r in writes if r.item == job_id]
        assert states == ["queued", *["running"] * (STEPS - 1), "done"], states
    indexes = aws_client(settings, "dynamodb").describe_table(TableName=settings.jobs_table_name)["Table"][
        "GlobalSecondaryIndexes"
    ]
    cost = job_cost(served, names, JOBS, costed.raw_item(jobs[-1]), indexes)
    # Both indexes copy only what listings read (storage/dynamo_items.py): an entry is one unit
    # where the item is three. Each of a job's 1 + STEPS writes is one write in each index, and
    # the two state changes move GSI2's entry: two writes there.
    assert cost["itemBytes"] > 2048 and all(size <= 1024 for size in cost["indexes"].values()), cost
    assert set(cost["indexes"]) == {"GSI1", "GSI2"}
    assert cost["units"]["dynamodb write request unit, indexes"] == (1 + STEPS) * 2 + 2
    # The records of the four checkpointed steps keep their checkpoints (each under 4 KiB
    # compressed); the last record removes it: the finished item holds none.
    assert 0 < cost["checkpointBytes"] <= RECORD_CHECKPOINT_MAX_BYTES + 64, cost
    assert "checkpoint" not in costed.raw_item(jobs[-1])
    assert job[("s3", "GetObject")] == 0  # no probe, no read-back, every checkpoint handed over
    # The artifact table's (but map.wad, which is skipped where zdbsp is missing), and result.json;
    # no checkpoint: each is in its step's record.
    artifacts = len(ARTIFACTS) - (node_builder() is None) + 1
    assert job[("s3", "PutObject")] == artifacts * JOBS
    assert job[("sqs", "SendMessage")] == STEPS * JOBS  # the API's first, then one per hop
    assert job[("sqs", "DeleteMessage")] == STEPS * JOBS
    # At most one receive a message (one may bring two: the worker has two slots); a long poll
    # pending when the recording starts or ends may add one.
    assert job[("sqs", "ReceiveMessage")] <= STEPS * JOBS + 2
    # kombu reads a queue's size when a producer process first declares it: once, not per job.
    assert job[("sqs", "GetQueueAttributes")] <= 2
    assert set(job) <= {
        ("dynamodb", "PutItem"),
        ("dynamodb", "UpdateItem"),
        ("s3", "GetObject"),
        ("s3", "PutObject"),
        ("sqs", "SendMessage"),
        ("sqs", "ReceiveMessage"),
        ("sqs", "DeleteMessage"),
        ("sqs", "GetQueueAttributes"),
    }, f"unexpected requests on the job path: {job}"

    # Nobody watches: no task event is published (worker heartbeats still are).
    assert [request.task_events for request in served if request.task_events] == []

    # The critical path: 3 round trips one after another, from each step's delivery to the
    # next's, read from the emulator's clock (scripts/hot_path.py): the receive, the record (which
    # keeps the step's checkpoint) and the send in a row. No delete is on the path: the step
    # before's is made beside the worker's consumer loop (tasks/sqs_acks.py). And between two
    # deliveries the step makes exactly its record and its send: a request more (a claim, an
    # upload) fails.
    paths = critical_paths(served, names, pipeline.STEPS)
    assert len(paths) == JOBS
    for job_paths in paths:
        for path in job_paths:
            print(f"step {path.index}: {path.round_trips}  {describe(path, served)}")
            ops = [request.operation for request in path.chain]  # one request for each in a row
            assert ops == ["UpdateItem", "SendMessage"], describe(path, served)
            assert path.round_trips == 3, describe(path, served)
            made = Counter(
                r.operation
                for r in served
                if category(r, names) == "job"
                and path.delivered_at <= r.started_at < path.next_at
                and r.operation not in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")  # counted above
            )
            assert made == Counter({"UpdateItem": 1, "SendMessage": 1}), (path.index, made)
    # The messages stay within SQS's first 64 KB billing chunk.
    sends = [r for r in served if r.operation == "SendMessage" and r.resource == names.queue_url]
    assert sends and max(r.request_bytes for r in sends) <= 64 * 1024


def wait_done_in_log(stack, job_id: str, timeout: float = 30) -> str:
    """Until the worker logs the job done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.get("event") == "job.done" and e.get("jobId") == job_id for e in stack.worker_events()):
            return job_id
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not done within {timeout} s")


def test_task_events_are_published_once_someone_asks_for_them(costed):
    """The other side of the test above: once enable_events is sent (as Flower does), they flow."""
    control = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "control", "enable_events"],
        env=costed.stack.env,
        cwd=costed.stack_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "task events enabled" in control.stdout, control.stdout + control.stderr
    with recording(costed.stack.emulator_url) as served:
        wait_done_in_log(costed, costed.submit()["jobId"])
        # The last step's task-succeeded event is sent once the task has returned.
        settle(costed, lambda served: all(published(served)[kind] >= STEPS for kind in KINDS))
    counts = published(served)
    assert [counts[kind] for kind in KINDS] == [STEPS] * len(KINDS), counts


KINDS = ("task-received", "task-started", "task-succeeded")


def published(served) -> Counter:
    """Task events published over SNS, by type."""
    return Counter(kind for request in served for kind in request.task_events)


def settle(stack, done, timeout: float = 15) -> None:
    """Until the requests recorded so far satisfy ``done`` (or ``timeout`` passes: the asserts then say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(recorded_so_far(stack.stack.emulator_url)):
        time.sleep(0.2)


def test_a_checkpoint_too_big_for_a_message_goes_by_s3_and_every_message_stays_in_one_chunk(costed):
    """A 150-room level's checkpoints all travel in the messages; a 350-room level's last two are
    over HANDOVER_MAX_BYTES and go by S3 (each read once, by the step after). Every message stays
    within SQS's first 64 KB billing chunk, and a message measures about 16/9 of its handover plus
    its headers and chain: what the bound in tasks/checkpoints.py rests on."""
    settings = costed.stack.settings
    names = StackNames(
        settings.jobs_table_name, settings.artifacts_bucket, costed.stack.env["SQS_QUEUE_URL"], "cost-ctl-"
    )
    with recording(costed.stack.emulator_url) as served:
        small = costed.submit({"prompt": "a spooky hallway", "seed": 5, "style": "doom", "rooms": 150})["jobId"]
        big = costed.submit({"prompt": "a spooky hallway", "seed": 5, "style": "doom", "rooms": 350})["jobId"]
        for job_id in (small, big):
            wait_done_in_log(costed, job_id, timeout=60)
        settle(
            costed,
            lambda served: (
                sum(r.operation == "DeleteMessage" and r.resource == names.queue_url for r in served) >= 2 * STEPS
            ),
        )
    assert costed.status(small)["state"] == costed.status(big)["state"] == "done"
    reads = sorted(
        r.key.rpartition("/")[2] for r in served if r.operation == "GetObject" and r.resource == names.bucket
    )
    assert reads == ["populate.json", "validate_level.json"]
    assert all(big in r.key for r in served if r.operation == "GetObject" and r.resource == names.bucket)

    sends = [r for r in served if r.operation == "SendMessage" and r.resource == names.queue_url]
    carried = [(handover_bytes(r), r.request_bytes) for r in sends]
    print("handover bytes -> message bytes:", sorted(carried))
    assert max(size for _, size in carried) <= 64 * 1024
    assert sum(1 for handed, _ in carried if handed) == 4 + 2  # all four of the small job's, two of the big one's
    bare = max(size for handed, size in carried if not handed)
    for handed, size in carried:
        assert size <= 16 / 9 * handed + bare + 512, (handed, size, bare)
    largest = max(handed for handed, _ in carried)
    assert HANDOVER_MAX_BYTES / 2 < largest <= HANDOVER_MAX_BYTES


def handover_bytes(send) -> int:
    """The length of the handover a recorded SendMessage carries (0 for none)."""
    envelope = json.loads(base64.b64decode(send.message))
    _args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return len((kwargs.get("handover") or {}).get("zlib", ""))

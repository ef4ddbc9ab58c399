"""A step's checkpoint handed over in the next step's message, and kept for a retry by the step's
record or in S3 (tasks/checkpoints.py, tasks/runner.py).

The handover saves the next step its read; the job's item (a small checkpoint, kept by its step's
record) or S3 (a bigger one) keeps it for what a retry needs. What must hold: the next step
computes from the handed-over bytes and reads nothing; every checkpoint is kept (by the record, or
uploaded beside it) before the next step is sent; the item keeps the latest step's only, and none
once the job is done; one too big for a message goes by S3 only; a message without a handover (or
with a broken one) reads the item's, or S3's beside the claim; a redelivery, a lost message and an
operator's retry all still end with the pipeline's bytes, wherever the checkpoints were kept.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import zlib
from unittest.mock import ANY

import pytest
from structlog.testing import capture_logs

import pipeline
from storage import model
from storage.errors import DependencyUnavailable
from storage.model import JobError, JobState, RecordedCheckpoint, handed_owner, step_id
from tasks import checkpoints
from tasks.checkpoints import HANDOVER_MAX_BYTES, checkpoint_key, from_handover, from_record, handover
from tasks.dispatch import retry_job, submit_job
from tasks.runner import Leased, Next, fail_job, run_step

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
FIRST, SECOND, THIRD, LAST = pipeline.STEPS[0], pipeline.STEPS[1], pipeline.STEPS[2], pipeline.STEPS[-1]


@pytest.fixture
def job_id(services) -> str:
    job, _ = submit_job(services.jobs, REQUEST, ttl_days=1, enqueue=lambda *a: None)
    return job.job_id


HANDED = object()  # Chain.run's default: the lease the step before handed on


class Chain:
    """Runs steps as the worker does, passing each step's handover to the next; records the order
    of the hand-ons and of the store's puts and gets."""

    def __init__(self, services) -> None:
        self.services = services
        self.handovers: dict[str, dict | None] = {}
        self.leases: dict[str, Leased | None] = {}
        self.events: list[str] = []
        store = services.artifacts
        put, get = store.put, store.get

        def logged_put(key, body, content_type):
            self.events.append(f"put {key.rpartition('/')[2]}")
            return put(key, body, content_type)

        def logged_get(key):
            self.events.append(f"get {key.rpartition('/')[2]}")
            return get(key)

        store.put, store.get = logged_put, logged_get

    def run(
        self, job_id: str, step: str, handover=None, attempt: int = 1, leased=HANDED, run: int = 0, redelivered=False
    ):
        """One delivery of ``step``, as the message the step before sent: with the lease it handed
        on (its task id and the job; ``leased``, by default the one last handed on to ``step``;
        None: a message without one, which claims)."""
        if leased is HANDED:
            index = pipeline.STEPS.index(step)
            leased = self.leases.get(pipeline.STEPS[index - 1]) if index else None

        def hand_on(passed, lease):
            self.events.append(f"send after {step}")
            self.handovers[step] = passed
            self.leases[step] = lease

        delivery = leased.delivery if leased is not None else f"task-{step}"
        job = leased.job if leased is not None else None
        return run_step(
            self.services,
            job_id,
            step,
            attempt,
            delivery=delivery,
            run=run,
            handover=handover,
            leased=job,
            redelivered=redelivered,
            hand_on=hand_on,
        )

    def run_all(self, job_id: str, steps=pipeline.STEPS, attempt: int = 1, *, passed=None, leased=None) -> None:
        """Deliver ``steps`` in turn; the first message carries ``passed`` and ``leased`` (by
        default neither, as the API's or an operator's retry's), each next one what was sent."""
        for step in steps:
            self.run(job_id, step, passed, attempt, leased)
            passed, leased = self.handovers.get(step), self.leases.get(step)


def final_scene(request=REQUEST) -> bytes:
    data = dict(request)
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    return pipeline.encode_json(data["sceneGraph"])


def test_a_default_job_reads_no_checkpoint_and_its_item_keeps_the_latest_one(services, job_id, reference_checkpoints):
    chain = Chain(services)
    reference = reference_checkpoints
    for step in pipeline.STEPS[:-1]:
        chain.run(job_id, step, chain.handovers.get(pipeline.STEPS[pipeline.STEPS.index(step) - 1]))
        kept = services.jobs.get(job_id).checkpoint
        if step == FIRST:
            assert kept is None  # recomputed from the request by the second step
            continue
        # The step's record keeps its checkpoint, in place of the one before: the same bytes the
        # message carries, and the pipeline's.
        assert kept is not None and kept.step == step
        assert zlib.decompress(kept.zlib) == reference[step]
        assert chain.handovers[step] == {"step": step, "zlib": base64.b64encode(kept.zlib).decode()}
    chain.run(job_id, LAST, chain.handovers[pipeline.STEPS[-2]])
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and job.checkpoint is None  # no retry after the end
    assert [e for e in chain.events if e.startswith(("get", "put steps"))] == []
    assert not [key for key in services.artifacts.blobs if "/steps/" in key]  # none in S3
    assert services.artifacts.blobs[f"jobs/{job_id}/sceneGraph.json"] == final_scene()


def test_a_big_levels_checkpoints_go_to_s3_every_one_the_bytes_the_message_carried(services, job_id, in_s3):
    chain = Chain(services)
    chain.run_all(job_id)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and job.checkpoint is None
    assert [e for e in chain.events if e.startswith("get")] == []
    for step in pipeline.STEPS[1:-1]:
        stored = services.artifacts.blobs[checkpoint_key(job_id, step)]
        carried = chain.handovers[step]
        assert carried["step"] == step
        assert zlib.decompress(base64.b64decode(carried["zlib"])) == stored
    assert services.artifacts.blobs[f"jobs/{job_id}/sceneGraph.json"] == final_scene()


def test_a_checkpoint_is_kept_by_the_record_before_the_next_step_is_sent(services, job_id):
    chain = Chain(services)
    record = services.jobs.record_step
    kept = []

    def record_logged(*args, **kwargs):
        chain.events.append(f"record {args[1].name}")
        kept.append(kwargs.get("checkpoint"))
        return record(*args, **kwargs)

    services.jobs.record_step = record_logged
    chain.run_all(job_id, pipeline.STEPS[:3])
    assert chain.events == [
        f"record {FIRST}",
        f"send after {FIRST}",
        f"record {SECOND}",
        f"send after {SECOND}",
        f"record {THIRD}",
        f"send after {THIRD}",
    ]
    assert [c.step if c else None for c in kept] == [None, SECOND, THIRD]


def test_a_checkpoint_is_stored_before_the_next_step_is_sent(services, job_id, in_s3):
    """Uploaded beside the record, ended before the hand-on: a step sent on has its checkpoint in
    the store, so a retry finds it."""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:3])
    assert chain.events == [
        f"send after {FIRST}",
        f"put {SECOND}.json",
        f"send after {SECOND}",
        f"put {THIRD}.json",
        f"send after {THIRD}",
    ]


def test_the_next_step_computes_from_the_handover_not_from_the_store(services, job_id, monkeypatch):
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    services.artifacts.blobs[checkpoint_key(job_id, SECOND)] = b"not what the message carries"
    seen = []
    real = pipeline.run_step
    monkeypatch.setattr(pipeline, "run_step", lambda name, previous: seen.append(previous) or real(name, previous))
    chain.run(job_id, THIRD, chain.handovers[SECOND])
    expected = json.loads(zlib.decompress(base64.b64decode(chain.handovers[SECOND]["zlib"])))["data"]
    assert seen == [expected]


def test_a_checkpoint_too_big_for_a_message_is_uploaded_before_the_hand_on_and_read_beside_the_claim(
    services, job_id, monkeypatch, in_s3
):
    monkeypatch.setattr(checkpoints, "HANDOVER_MAX_BYTES", 10)
    chain = Chain(services)
    chain.run_all(job_id)
    assert all(chain.handovers[step] is None for step in pipeline.STEPS[:-1])
    # Uploaded before its send: the next step reads it from the store.
    assert [e for e in chain.events if e.startswith("get")] == [f"get {s}.json" for s in pipeline.STEPS[1:-1]]
    assert services.jobs.get(job_id).state is JobState.DONE
    assert services.artifacts.blobs[f"jobs/{job_id}/sceneGraph.json"] == final_scene()


def test_a_claim_reads_the_previous_checkpoint_in_the_item_it_returns(services, job_id, pipeline_calls):
    """A message without a handover or a lease (an operator's retry, a redelivery) claims; the
    claim returns the item, which keeps the previous step's checkpoint: no other read."""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    services.jobs.leases.clear()  # a message without a lease (the one handed on lapsed), which claims
    services.jobs.calls.clear()
    pipeline_calls.clear()
    assert run_step(services, job_id, THIRD).next is Next.CONTINUE
    assert services.jobs.calls == {"claim_step": 1, "record_step": 1}
    assert [e for e in chain.events if e.startswith("get")] == []
    assert pipeline_calls == [THIRD]


def test_a_claim_reads_a_previous_checkpoint_in_s3_once_it_has_the_item(services, job_id, pipeline_calls, in_s3):
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    services.jobs.leases.clear()
    pipeline_calls.clear()
    assert run_step(services, job_id, THIRD).next is Next.CONTINUE
    assert [e for e in chain.events if e.startswith("get")] == [f"get {SECOND}.json"]
    assert pipeline_calls == [THIRD]


def test_a_leased_message_without_a_handover_reads_the_checkpoint_the_item_keeps(services, job_id, pipeline_calls):
    """A redelivery that hands on again sends the next step its lease and no handover: the step,
    which claims nothing, finds the checkpoint in neither the message nor S3, and reads the item."""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    services.jobs.calls.clear()
    pipeline_calls.clear()
    assert chain.run(job_id, THIRD, None).outcome == "recorded"  # the lease SECOND handed on
    assert services.jobs.calls == {"get": 1, "record_step": 1}
    assert pipeline_calls == [THIRD]  # nothing recomputed
    assert services.jobs.get(job_id).checkpoint.step == THIRD


def test_a_checkpoint_is_uploaded_while_the_record_is_in_flight(services, job_id, in_s3):
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:1])
    upload_began = threading.Event()
    put, record = services.artifacts.put, services.jobs.record_step

    def put_beside(*args):
        upload_began.set()
        return put(*args)

    def record_waiting(*args, **kwargs):
        assert upload_began.wait(5), "the checkpoint upload was not issued beside the record"
        return record(*args, **kwargs)

    services.artifacts.put, services.jobs.record_step = put_beside, record_waiting
    assert chain.run(job_id, SECOND).next is Next.CONTINUE


def test_a_run_that_fails_does_not_wait_for_its_upload(services, job_id, in_s3):
    """The record fails (or the soft time limit strikes) while S3 still retries the upload: the run
    raises at once; waiting out the upload could take it past its hard time limit."""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:1])
    answer, returned = threading.Event(), threading.Event()
    put = services.artifacts.put

    def put_slowly(*args):
        answer.wait(10)
        put(*args)
        returned.set()

    def record_fails(*args, **kwargs):
        raise DependencyUnavailable("DynamoDB is away")

    services.artifacts.put, services.jobs.record_step = put_slowly, record_fails
    try:
        with pytest.raises(DependencyUnavailable):
            chain.run(job_id, SECOND)
        assert not returned.is_set(), "the run waited for its upload"
    finally:
        answer.set()
    assert returned.wait(10)


def test_a_redelivered_message_with_its_handover_records_once_and_ends_done(services, job_id):
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:3])
    sent = chain.leases[THIRD]  # the message the first run sent on
    again = chain.run(job_id, THIRD, chain.handovers[SECOND], redelivered=True)  # SQS delivers it again
    # Marked redelivered, it claims, finds the step recorded, and hands on without a lease.
    assert again.outcome == "duplicate" and chain.leases[THIRD] is None
    # A copy delivered as if first (SQS's rare duplicate at the same moment): the lease was handed
    # to it, so it computes, its record finds the step recorded, and it hands on without a lease.
    twin = chain.run(job_id, THIRD, chain.handovers[SECOND])
    assert twin.outcome == "duplicate" and chain.leases[THIRD] is None
    chain.run_all(job_id, pipeline.STEPS[3:], passed=chain.handovers[THIRD], leased=sent)  # the first run's
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and [s.name for s in job.steps] == list(pipeline.STEPS)
    assert services.artifacts.blobs[f"jobs/{job_id}/sceneGraph.json"] == final_scene()


@pytest.mark.parametrize("kept_in", ["record", "s3"])
def test_a_lost_message_then_an_operators_retry_starts_at_the_first_incomplete_step(
    services, job_id, pipeline_calls, kept_in, monkeypatch
):
    """The third step's message (with its handover) is lost; the job fails (stalled); the retry
    starts at that step, from the checkpoint the second step left in the item, or in S3."""
    if kept_in == "s3":
        monkeypatch.setattr(checkpoints, "RECORD_CHECKPOINT_MAX_BYTES", 0)
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    fail_job(services, job_id, THIRD, JobError("stalled", "STALLED"))  # what the sweeper would do
    sent = []
    retry_job(services.jobs, job_id, reason="lost", by="op", enqueue=lambda *a, **k: sent.append(k))
    assert sent[0]["steps"][0] == THIRD
    assert (services.jobs.get(job_id).checkpoint is not None) is (kept_in == "record")  # a failed job keeps it
    pipeline_calls.clear()
    chain.run_all(job_id, sent[0]["steps"], attempt=2)
    assert pipeline_calls[0] == THIRD  # nothing before it computed again
    assert services.jobs.get(job_id).state is JobState.DONE
    assert services.artifacts.blobs[f"jobs/{job_id}/sceneGraph.json"] == final_scene()


@pytest.fixture
def pipeline_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = pipeline.run_step
    monkeypatch.setattr(pipeline, "run_step", lambda name, previous: calls.append(name) or real(name, previous))
    return calls


@pytest.mark.parametrize(
    "broken",
    [
        {"step": SECOND, "zlib": "not base64!"},
        {"step": SECOND, "zlib": base64.b64encode(b"not zlib").decode()},
        {"step": SECOND, "zlib": base64.b64encode(zlib.compress(b"{not json")).decode()},
        {"step": FIRST, "zlib": "eJzLSM3JyQcABiwCFQ=="},  # another step's
        "a string",
    ],
)
def test_a_broken_or_foreign_handover_counts_as_none_and_the_store_is_read(services, job_id, broken):
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    with capture_logs() as logs:
        chain.run(job_id, THIRD, broken)
    assert f"get {SECOND}.json" in chain.events
    assert "step.handover_unreadable" in [entry["event"] for entry in logs]
    assert services.jobs.get(job_id).steps[-1].name == THIRD


def test_a_handover_or_a_kept_checkpoint_that_would_inflate_past_the_bound_is_refused(monkeypatch):
    # A valid checkpoint that inflates a thousandfold: read within the bound, refused past it.
    packed = zlib.compress(pipeline.encode_json({"step": SECOND, "summary": "s", "data": {"pad": " " * 100_000}}))
    handed, kept = {"step": SECOND, "zlib": base64.b64encode(packed).decode()}, RecordedCheckpoint(SECOND, packed)
    assert from_handover(handed, SECOND) is not None and from_record(kept, SECOND) is not None
    monkeypatch.setattr(model, "INFLATED_MAX_BYTES", 1000)
    assert from_handover(handed, SECOND) is None and from_record(kept, SECOND) is None


def test_a_checkpoint_over_the_bound_is_not_handed_over():
    small = pipeline.encode_json({"step": SECOND, "summary": "s", "data": {"x": 1}})
    assert handover(SECOND, small) is not None
    noise = base64.b64encode(random.Random(7).randbytes(40_000))  # incompressible: ~40 KB compressed
    assert handover(SECOND, noise) is None
    assert len(base64.b64encode(zlib.compress(noise))) > HANDOVER_MAX_BYTES


def test_a_failed_upload_fails_the_run_unsent_and_the_redelivery_stores_the_checkpoint(
    services, job_id, pipeline_calls, in_s3, reference_checkpoints
):
    """S3 fails beside a record that succeeds: the run raises before sending anything (the task
    retries it); the redelivery finds the step recorded, recomputes its output from its handover,
    stores it, and hands on."""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:2])
    put = services.artifacts.put

    def down(key, body, content_type):
        raise DependencyUnavailable("S3 is away")

    services.artifacts.put = down
    with pytest.raises(DependencyUnavailable):
        chain.run(job_id, THIRD, chain.handovers[SECOND])
    assert THIRD not in chain.handovers  # not sent
    assert services.jobs.get(job_id).steps[-1].name == THIRD  # recorded
    services.artifacts.put = put
    pipeline_calls.clear()
    with capture_logs() as logs:
        again = chain.run(job_id, THIRD, chain.handovers[SECOND], run=1)  # Celery's retry of the message
    assert again.outcome == "duplicate"
    assert "step.checkpoint_restored" in [entry["event"] for entry in logs]
    assert pipeline_calls == [THIRD]  # from its handover: nothing before it recomputed
    assert chain.handovers[THIRD] is None  # the next step reads it from the store
    chain.run_all(job_id, pipeline.STEPS[3:])
    assert services.jobs.get(job_id).state is JobState.DONE
    reference = reference_checkpoints
    for step in pipeline.STEPS[1:-1]:
        assert services.artifacts.blobs[checkpoint_key(job_id, step)] == reference[step]


def test_a_duplicate_whose_checkpoint_is_stored_computes_nothing(services, job_id, pipeline_calls):
    """A duplicate that claims (a later try of the message, or one sent without a lease) finds the
    step recorded at its claim. (A redelivery of the message the lease was handed to computes:
    test_a_redelivered_message_with_its_handover_records_once_and_ends_done.)"""
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:3])
    pipeline_calls.clear()
    assert chain.run(job_id, THIRD, chain.handovers[SECOND], run=1).outcome == "duplicate"
    assert chain.run(job_id, THIRD, chain.handovers[SECOND], leased=None).outcome == "duplicate"
    assert pipeline_calls == []


def test_a_failed_upload_of_a_checkpoint_not_handed_over_is_the_steps_failure(services, job_id, monkeypatch, in_s3):
    monkeypatch.setattr(checkpoints, "HANDOVER_MAX_BYTES", 10)
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:1])

    def down(key, body, content_type):
        raise DependencyUnavailable("S3 is away")

    services.artifacts.put = down
    with pytest.raises(DependencyUnavailable):
        chain.run(job_id, SECOND)
    assert SECOND not in chain.handovers  # never sent: the next step would find no checkpoint


def test_the_task_sends_the_handover_in_the_next_messages_kwargs_and_a_short_repr(services, job_id, monkeypatch):
    from tasks import steps

    sent = []

    class Sent:
        def __init__(self, sig):
            self.sig, self.name = sig, sig["task"]

        def apply_async(self, **options):
            sent.append((self.sig, options))

    monkeypatch.setattr(steps, "signature", lambda sig, app=None: Sent(sig))
    monkeypatch.setattr(steps, "services", lambda: services)
    chain = Chain(services)
    chain.run_all(job_id, pipeline.STEPS[:1])
    leased = chain.leases[FIRST]
    task = steps.STEP_TASKS[SECOND]
    later = [
        {"task": f"tasks.steps.{s}", "args": [job_id], "kwargs": {"request_id": "r"}}
        for s in reversed(pipeline.STEPS[2:])
    ]
    task.push_request(id=leased.delivery, chain=later, retries=0)
    try:
        task.run(job_id, request_id="r", leased=leased.job)
    finally:
        task.pop_request()
    [(sig, options)] = sent
    assert sig["task"] == f"tasks.steps.{THIRD}"
    assert sig["kwargs"]["request_id"] == "r" and sig["kwargs"]["handover"]["step"] == SECOND
    assert from_handover(sig["kwargs"]["handover"], SECOND) is not None
    # The lease the record handed on: the message's task id, and the job the step needs with it.
    held = {lease.step_id: lease.owner for lease in services.jobs.get(job_id).leases}
    assert held[step_id(job_id, THIRD)] == handed_owner(options["task_id"])
    assert sig["kwargs"]["leased"] == {"request": services.jobs.get(job_id).request, "createdAt": ANY}
    assert "zlib" not in options["kwargsrepr"] and len(options["kwargsrepr"]) < 200
    assert "spooky" not in options["kwargsrepr"]
    assert later[-1]["kwargs"] == {"request_id": "r"}  # the chain itself is left as it was

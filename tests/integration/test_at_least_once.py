"""At-least-once delivery, attacked on the real stack: duplicates, disorder, crashes, two workers, poison."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import boto3
import pytest
import requests

import pipeline
from storage.model import StepEvent, step_id, utc_now
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

STATE_ORDER = {"queued": 0, "running": 1, "done": 2, "failed": 2, "cancelled": 2}


@pytest.fixture(scope="module")
def quiet(make_stack):
    """An API with no worker: step events come only from the test."""
    return make_stack({"INTERNAL_TOKEN": "attack-token"}, worker=False)


def event_body(job_id: str, step: str, summary: str = "external") -> dict:
    now = utc_now()
    return {
        "stepId": step_id(job_id, step),
        "name": step,
        "startedAt": now,
        "endedAt": now,
        "durationMs": 5,
        "summary": summary,
        "status": "ok",
    }


def post_event(live, job_id: str, body: dict) -> requests.Response:
    return requests.post(
        f"{live.url}/internal/jobs/{job_id}/step",
        json=body,
        headers={"X-INTERNAL-TOKEN": "attack-token"},
        timeout=15,
    )


def test_fifty_concurrent_deliveries_of_one_step_record_it_once(quiet):
    job_id = quiet.submit({"prompt": "storm"})["jobId"]
    body = event_body(job_id, "parse_prompt")
    event = StepEvent.from_dict(body)

    def deliver(i: int) -> str:
        if i % 2:  # half through the storage call the tasks use, half through the endpoint
            return quiet.services.jobs.record_step(job_id, event, total_steps=len(pipeline.STEPS)).value
        return {201: "recorded", 200: "duplicate"}[post_event(quiet, job_id, body).status_code]

    with ThreadPoolExecutor(max_workers=25) as pool:
        outcomes = list(pool.map(deliver, range(50)))

    assert outcomes.count("recorded") == 1 and outcomes.count("duplicate") == 49
    item = quiet.raw_item(job_id)
    assert len(item["steps"]["L"]) == 1
    assert item["stepIds"]["SS"] == [body["stepId"]]


def test_shuffled_and_late_events_leave_a_coherent_item_and_status_never_regresses(quiet):
    rng = random.Random(7)
    jobs = [quiet.submit({"prompt": f"shuffle {i}"})["jobId"] for i in range(4)]
    events = [(job_id, step) for job_id in jobs for step in pipeline.STEPS for _ in range(3)]
    rng.shuffle(events)
    observed: dict[str, list[dict]] = {job_id: [] for job_id in jobs}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for job_id in jobs:
                observed[job_id].append(quiet.status(job_id))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(lambda e: post_event(quiet, e[0], event_body(*e)).status_code, events))
        for job_id in jobs[:2]:  # two jobs end done; events after that must change nothing
            quiet.services.jobs.mark_done(job_id, result_keys={}, summary="done")
        late = [post_event(quiet, job_id, event_body(job_id, "populate", "late")) for job_id in jobs[:2]]
    finally:
        stop.set()
        poller.join()

    assert codes.count(201) == len(jobs) * len(pipeline.STEPS)
    assert set(codes) <= {200, 201}
    assert all(r.status_code == 200 for r in late)  # already recorded: a duplicate, not a change
    for job_id in jobs:
        final = quiet.status(job_id)
        assert sorted(s["name"] for s in final["steps"]) == sorted(pipeline.STEPS)  # none lost, none twice
        assert final["progress"] == pytest.approx(1.0, abs=1e-5)
        assert all(s["summary"] == "external" for s in final["steps"])
        history = observed[job_id] + [final]
        for before, after in pairwise(history):
            assert STATE_ORDER[after["state"]] >= STATE_ORDER[before["state"]], (before["state"], after["state"])
            assert {s["stepId"] for s in before["steps"]} <= {s["stepId"] for s in after["steps"]}
            assert after["progress"] >= before["progress"]
    for job_id in jobs[:2]:
        assert quiet.status(job_id)["state"] == "done"


def test_a_new_step_after_done_is_refused_with_409(quiet):
    job_id = quiet.submit({"prompt": "late"})["jobId"]
    quiet.services.jobs.record_step(
        job_id, StepEvent.from_dict(event_body(job_id, "parse_prompt")), total_steps=len(pipeline.STEPS)
    )
    quiet.services.jobs.mark_done(job_id, result_keys={}, summary="s")
    response = post_event(quiet, job_id, event_body(job_id, "layout_rooms"))
    assert response.status_code == 409
    assert [s["name"] for s in quiet.status(job_id)["steps"]] == ["parse_prompt"]


@pytest.fixture(scope="module")
def crashy(make_stack):
    """Short visibility timeout and step limit, slow drills on, no worker yet."""
    return make_stack(
        {"FAULT_DRILLS": "1", "VISIBILITY_TIMEOUT_SECONDS": "14", "STEP_TIME_LIMIT_SECONDS": "8"}, worker=False
    )


@pytest.mark.serial  # timed against a 5-second slow step
def test_a_worker_killed_mid_step_leaves_the_job_to_another_worker(crashy):
    victim = crashy.start_worker(concurrency=1)
    job_id = crashy.submit(headers={"X-Fault-Drill": "slow:layout_rooms"})["jobId"]
    wait_for(
        lambda: any(e.get("event") == "step.recorded" and e.get("jobId") == job_id for e in crashy.log_events(victim)),
        20,
    )
    time.sleep(1.5)  # now inside the 5-second slow layout_rooms
    assert crashy.status(job_id)["state"] == "running"
    crashy.stack.stop_process(victim, kill=True)  # SIGKILL, the whole process group

    crashy.start_worker(concurrency=1)
    body = crashy.wait_terminal(job_id, timeout=60)
    assert body["state"] == "done"
    assert [s["name"] for s in body["steps"]] == list(pipeline.STEPS)  # one entry per step


@pytest.mark.serial  # timed against a 5-second slow step
def test_the_same_step_delivered_to_two_workers_at_once_runs_once(crashy):
    # Ready before the job: else the previous test's surviving worker can run the whole job,
    # the duplicate included, before they poll (their start takes seconds on busy cores).
    for name in (crashy.start_worker(concurrency=1), crashy.start_worker(concurrency=1)):
        wait_for(lambda name=name: any(" ready" in str(e.get("event")) for e in crashy.log_events(name)), 60)
    job_id = crashy.submit(headers={"X-Fault-Drill": "slow:connect_doors"})["jobId"]
    wait_for(lambda: _computing(crashy, job_id, "connect_doors"), 20)
    # A second message for the step in flight, as SQS sends when a visibility timeout runs out.
    crashy.send_task("tasks.steps.connect_doors", job_id, request_id="duplicate-delivery")

    body = crashy.wait_terminal(job_id, timeout=60)
    assert body["state"] == "done"
    assert [s["name"] for s in body["steps"]] == list(pipeline.STEPS)
    events = crashy.worker_events()
    held = [e for e in events if e.get("event") == "step.lease_held" and e.get("jobId") == job_id]
    recorded = [
        e
        for e in events
        if e.get("event") == "step.recorded" and e.get("jobId") == job_id and e.get("step") == "connect_doors"
    ]
    assert held, "the second delivery should have found the step leased"
    assert [e["outcome"] for e in recorded] == ["recorded"]  # computed and recorded by one run only


def test_concurrent_submissions_with_one_idempotency_key_make_one_job(quiet):
    key = f"order-{uuid.uuid4()}"

    def submit(_):
        return requests.post(
            f"{quiet.url}/generate-scene", json={"prompt": "once"}, headers={"Idempotency-Key": key}, timeout=15
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(submit, range(30)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["jobId"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 29
    other = requests.post(
        f"{quiet.url}/generate-scene", json={"prompt": "twice"}, headers={"Idempotency-Key": key}, timeout=15
    )
    assert other.status_code == 422 and other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    sqs = boto3.client("sqs", endpoint_url=quiet.stack.emulator_url, region_name="us-east-1")
    attributes = sqs.get_queue_attributes(
        QueueUrl=quiet.stack.env["SQS_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == str(1 + _queued_before(quiet))


def test_poison_messages_end_in_the_dlq_or_are_dropped_and_never_block_the_queue(make_stack):
    live = make_stack({"VISIBILITY_TIMEOUT_SECONDS": "5", "STEP_TIME_LIMIT_SECONDS": "3"})
    sqs = boto3.client("sqs", endpoint_url=live.stack.emulator_url, region_name="us-east-1")
    queue, dlq = live.stack.env["SQS_QUEUE_URL"], live.stack.env["DEAD_LETTER_QUEUE_URL"]
    missing_job = str(uuid.uuid4())
    sqs.send_message(QueueUrl=queue, MessageBody="%%% not a celery message")
    live.send_task("tasks.steps.no_such_step", str(uuid.uuid4()))
    live.send_task("tasks.steps.parse_prompt", missing_job)

    # The queue keeps flowing while the poison circulates.
    assert live.wait_terminal(live.submit()["jobId"], timeout=30)["state"] == "done"

    def counts() -> tuple[int, int]:
        main = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        dead = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        in_main = int(main["ApproximateNumberOfMessages"]) + int(main["ApproximateNumberOfMessagesNotVisible"])
        return in_main, int(dead["ApproximateNumberOfMessages"])

    wait_for(lambda: counts() == (0, 2), 90)  # undecodable + unknown task: redriven after 5 receives
    events = live.log_events("worker1")
    errors = [e for e in events if e.get("level") in {"error", "critical"}]
    # Celery logs the undecodable body at WARNING each time it comes round; the DLQ is its end.
    assert any("unknown message" in e["event"] and e["level"] == "warning" for e in events)
    assert any("unregistered task" in e["event"] for e in errors)
    assert any(e["event"] == "step.job_missing" and e.get("jobId") == missing_job for e in errors)


def _computing(live, job_id: str, step: str) -> bool:
    recorded = {s["name"] for s in live.status(job_id)["steps"]}
    previous = pipeline.STEPS[pipeline.STEPS.index(step) - 1]
    return previous in recorded and step not in recorded


def _queued_before(live) -> int:
    # The module's other tests queued jobs on this worker-less stack; each left one message.
    jobs, cursor = 0, None
    while True:
        page = requests.get(
            f"{live.url}/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})}, timeout=10
        ).json()
        jobs += len(page["jobs"])
        if (cursor := page["nextCursor"]) is None:
            return jobs - 1

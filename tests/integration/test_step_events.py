"""Step events from outside the pipeline, racing a live worker: one documented outcome, every time.

What an event means (api/internal.py, docs/reliability.md): ``ok`` counts the step as done, and a
worker that later needs its output recomputes it; ``error`` records the step and fails the job with
the event's error in the same write. Whichever record of a stepId comes first wins.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import pipeline
from storage.model import step_id, utc_now

pytestmark = pytest.mark.integration

TOKEN = "events-token"
JOBS = 4


@pytest.fixture(scope="module")
def racing(make_stack):
    """A worker whose steps can be slowed (fault drills), and an API taking step events."""
    return make_stack({"INTERNAL_TOKEN": TOKEN, "FAULT_DRILLS": "1"})


def event_body(job_id: str, step: str, *, error: dict | None = None) -> dict:
    now = utc_now()
    body = {
        "stepId": step_id(job_id, step),
        "name": step,
        "startedAt": now,
        "endedAt": now,
        "durationMs": 5,
        "summary": f"{step} from outside",
        "status": "error" if error else "ok",
    }
    if error:
        body["error"] = error
    return body


def post(stack, job_id: str, body: dict) -> int:
    response = requests.post(
        f"{stack.url}/internal/jobs/{job_id}/step", json=body, headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=15
    )
    assert response.status_code in {200, 201, 409}, response.text
    return response.status_code


def storm(stack, events: list[tuple[str, dict]]) -> None:
    random.Random(11).shuffle(events)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda event: post(stack, *event), events))


def pipeline_bytes(request: dict) -> bytes:
    data = dict(request)
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    return pipeline.encode_json(data["sceneGraph"])


def test_a_storm_of_ok_events_racing_the_worker_ends_done_with_the_pipeline_s_bytes(racing):
    """ok events for every step, three times each, while the worker runs: done, once per step, in order."""
    request = {"prompt": "a storm of ok events", "seed": 5, "style": "doom"}
    jobs = [racing.submit(request, headers={"X-Fault-Drill": "slow:layout_rooms"})["jobId"] for _ in range(JOBS)]
    storm(racing, [(job_id, event_body(job_id, step)) for job_id in jobs for step in pipeline.STEPS * 3])
    expected = pipeline_bytes(request)
    for job_id in jobs:
        status = racing.wait_terminal(job_id, timeout=60)
        assert status["state"] == "done", status
        assert [step["stepId"] for step in status["steps"]] == [step_id(job_id, s) for s in pipeline.STEPS]
        assert status["progress"] == 1 and status["error"] is None
        assert requests.get(status["result"]["sceneGraphUrl"], timeout=10).content == expected


def test_a_storm_with_error_events_fails_the_job_with_that_error_once_and_keeps_its_steps(racing):
    """ok events for the first steps, then error events for populate, while the worker is slowed before it."""
    error = {"message": "the external populator crashed", "code": "POPULATOR_CRASHED", "details": {"host": "gpu-7"}}
    jobs = [
        racing.submit({"prompt": "a storm of errors"}, headers={"X-Fault-Drill": "slow:connect_doors"})["jobId"]
        for _ in range(JOBS)
    ]
    # First the ok events (racing the worker's own records), then the error events.
    storm(racing, [(job_id, event_body(job_id, step)) for job_id in jobs for step in pipeline.STEPS[:2] * 3])
    storm(racing, [(job_id, event_body(job_id, "populate", error=error)) for job_id in jobs for _ in range(5)])
    for job_id in jobs:
        status = racing.wait_terminal(job_id, timeout=60)
        assert status["state"] == "failed", status
        assert status["error"] == {**error, "details": {"step": "populate", "host": "gpu-7"}}
        names = [step["name"] for step in status["steps"]]
        # The first two steps (by the events or the worker) and populate's error: each once, in order.
        assert names == ["parse_prompt", "layout_rooms", "populate"]
        assert status["steps"][-1]["status"] == "error"
        assert len({step["stepId"] for step in status["steps"]}) == len(names)
    # The worker's chain then finds the job failed and ends: nothing more is ever recorded.
    wait_for_chain_end(racing, jobs)
    for job_id in jobs:
        assert [step["name"] for step in racing.status(job_id)["steps"]] == ["parse_prompt", "layout_rooms", "populate"]


def wait_for_chain_end(stack, jobs: list[str], timeout: float = 30) -> None:
    """Until the worker has ended every job's chain because it found the job ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = {
            event.get("jobId")
            for event in stack.worker_events()
            if event.get("event") == "step.skipped_terminal" or event.get("outcome") == "terminal"
        }
        if set(jobs) <= ended:
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker's chains of {set(jobs) - ended} did not end")

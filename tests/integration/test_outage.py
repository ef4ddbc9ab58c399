"""AWS (the emulator) goes away mid-run: the API answers 503 fast, and nothing stays stuck after it returns."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import pipeline
from local_stack import Stack, StackConfig
from tasks.dispatch import submit_job
from tests.integration.conftest import LiveStack, free_port

# Serial: the 503s must come within 5 s, and steps within their 10-second limit.
pytestmark = [pytest.mark.integration, pytest.mark.serial]


@pytest.fixture
def outage_stack(logs_dir):
    """Its own emulator, so pausing it disturbs no other test."""
    emulator = Stack(StackConfig(emulator_port=free_port()), log_dir=logs_dir / "outage-emulator")
    emulator.start_emulator()
    live = LiveStack(
        emulator,
        logs_dir,
        {
            "FAULT_DRILLS": "1",
            "AWS_TIMEOUT_SECONDS": "1",  # production's: what makes the 503s fast
            "VISIBILITY_TIMEOUT_SECONDS": "20",
            "STEP_TIME_LIMIT_SECONDS": "10",
            "STALL_AFTER_SECONDS": "25",
            "SWEEP_INTERVAL_SECONDS": "2",
        },
    )
    live.start_worker()
    live.start_api()
    yield live, emulator
    os.killpg(emulator.procs["emulator"].pid, signal.SIGCONT)
    live.stop()
    emulator.stop()


def timed(call) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = call()
    return time.monotonic() - started, response


def test_dependencies_down_gives_fast_503s_and_every_job_ends(outage_stack):
    live, emulator = outage_stack
    jobs = [live.submit(headers={"X-Fault-Drill": "slow:populate"})["jobId"] for _ in range(3)]
    deadline = time.monotonic() + 20
    while not all(live.status(j)["state"] == "running" for j in jobs):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    known = jobs[0]

    os.killpg(emulator.procs["emulator"].pid, signal.SIGSTOP)  # hangs every call: the hard case
    try:
        calls = {
            "status": lambda: requests.get(f"{live.url}/status/{known}", timeout=30),
            "jobs": lambda: requests.get(f"{live.url}/jobs", timeout=30),
            "submit": lambda: requests.post(f"{live.url}/generate-scene", json={"prompt": "x"}, timeout=30),
            "readyz": lambda: requests.get(f"{live.url}/readyz", timeout=30),
        }
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            results = dict(zip(calls, pool.map(timed, calls.values()), strict=True))
        for name, (elapsed, response) in results.items():
            assert response.status_code == 503, (name, response.status_code, response.text)
            assert response.json()["error"]["code"] in {"DEPENDENCY_UNAVAILABLE", "ENQUEUE_FAILED"}, name
            assert elapsed < 5, f"{name} took {elapsed:.1f}s to answer 503"
        assert "dynamodb" in results["readyz"][1].json()["error"]["message"]
        assert requests.get(f"{live.url}/healthz", timeout=5).status_code == 200
        time.sleep(6)  # the slow steps finish into the outage and fail to record
    finally:
        os.killpg(emulator.procs["emulator"].pid, signal.SIGCONT)

    # Back: without restarting anything, every job in flight ends, done or failed with a reason.
    for job_id in jobs:
        body = live.wait_terminal(job_id, timeout=90)
        if body["state"] == "failed":
            assert body["error"]["code"] in {"DEPENDENCY_UNAVAILABLE", "STALLED", "STEP_TIMEOUT"}, body["error"]
        else:
            assert body["state"] == "done"
            assert len(body["steps"]) == len(pipeline.STEPS)
    assert requests.get(f"{live.url}/readyz", timeout=10).status_code == 200
    assert live.wait_terminal(live.submit()["jobId"], timeout=30)["state"] == "done"


def test_a_job_whose_message_was_lost_ends_failed_stalled(make_stack):
    live = make_stack(
        {
            "STEP_TIME_LIMIT_SECONDS": "5",
            "VISIBILITY_TIMEOUT_SECONDS": "10",
            "STALL_AFTER_SECONDS": "11",
            "SWEEP_INTERVAL_SECONDS": "1",
        },
        api=False,
    )
    # A job item with no message behind it (its message went to the DLQ long ago).
    job, _ = submit_job(
        live.services.jobs, {"prompt": "lost", "seed": 1, "style": "doom"}, ttl_days=1, enqueue=lambda *a: None
    )
    deadline = time.monotonic() + 40
    while (current := live.services.jobs.get(job.job_id)).state.value == "queued":
        assert time.monotonic() < deadline, "the sweeper never failed the stalled job"
        time.sleep(0.5)
    assert current.state.value == "failed"
    assert current.error.code == "STALLED"
    assert any(e.get("event") == "job.stalled" and e.get("jobId") == job.job_id for e in live.worker_events())

"""Operators on the real stack: cancel through the API and the celery CLI, listing by state."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

import pipeline

pytestmark = pytest.mark.integration

TOKEN = "operator-token"


@pytest.fixture(scope="module")
def ops(make_stack):
    return make_stack({"FAULT_DRILLS": "1", "INTERNAL_TOKEN": TOKEN})


def test_a_slowed_job_cancelled_mid_step_stays_cancelled(ops):
    job_id = ops.submit(headers={"X-Fault-Drill": "slow:connect_doors"})["jobId"]
    deadline = time.monotonic() + 20
    while [s["name"] for s in ops.status(job_id)["steps"]] != ["parse_prompt", "layout_rooms"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    response = requests.post(f"{ops.url}/jobs/{job_id}/cancel", headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=10)
    assert response.status_code == 200 and response.json()["state"] == "cancelled"

    time.sleep(7)  # the slowed step (5 s) finishes into a cancelled job and changes nothing
    body = ops.status(job_id)
    assert body["state"] == "cancelled"
    assert [s["name"] for s in body["steps"]] == ["parse_prompt", "layout_rooms"]
    assert not ops.services.artifacts.exists(f"jobs/{job_id}/sceneGraph.json")
    again = requests.post(f"{ops.url}/jobs/{job_id}/cancel", headers={"X-INTERNAL-TOKEN": "wrong"}, timeout=10)
    assert again.status_code == 401
    listed = requests.get(f"{ops.url}/jobs", params={"state": "cancelled"}, timeout=10).json()["jobs"]
    assert job_id in [job["jobId"] for job in listed]


@pytest.mark.serial  # the CLI must start within the 5-second slow step it cancels
def test_celery_cancel_job_command(ops):
    job_id = ops.submit(headers={"X-Fault-Drill": "slow:parse_prompt"})["jobId"]
    done_id = ops.submit()["jobId"]
    ops.wait_terminal(done_id)

    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "cancel-job", job_id, done_id, "--reason", "ops test"],
        env=ops.stack.env,
        cwd=ops.stack_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"{job_id}: cancelled" in result.stdout, result.stdout + result.stderr
    assert done_id in result.stderr and "already done" in result.stderr
    assert result.returncode == 1  # one of the two could not be cancelled
    time.sleep(6)
    body = ops.status(job_id)
    assert body["state"] == "cancelled"
    assert body["cancellation"]["reason"] == "ops test" and body["cancellation"]["by"].startswith("celery-cli:")
    assert len(body["steps"]) < len(pipeline.STEPS)
    assert ops.status(done_id)["state"] == "done"


def _celery(ops, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", *args],
        env=ops.stack.env,
        cwd=ops.stack_root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_drilled_failure_is_retried_by_the_celery_cli_without_recomputing_completed_steps(ops):
    job_id = ops.submit(headers={"X-Fault-Drill": "fail:populate"})["jobId"]
    failed = ops.wait_terminal(job_id)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FAULT_DRILL"
    assert [s["name"] for s in failed["steps"] if s["status"] == "ok"] == [
        "parse_prompt",
        "layout_rooms",
        "connect_doors",
    ]
    listed = requests.get(f"{ops.url}/jobs", params={"state": "failed"}, timeout=10).json()["jobs"]
    assert job_id in [job["jobId"] for job in listed]

    dry = _celery(ops, "retry-job", "--all-failed", "--since", "10m", "--dry-run")
    assert f"{job_id}: would retry from populate as attempt 2" in dry.stdout, dry.stdout + dry.stderr
    assert ops.status(job_id)["state"] == "failed"  # a dry run changes nothing

    result = _celery(ops, "retry-job", job_id, "--reason", "drill over")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{job_id}: queued as attempt 2 from populate" in result.stdout
    done = ops.wait_terminal(job_id)
    assert done["state"] == "done" and done["attempt"] == 2
    assert done["attempts"][0]["reason"] == "drill over" and done["attempts"][0]["by"].startswith("celery-cli:")
    assert [(s["stepId"].split(":", 1)[1], s["status"]) for s in done["steps"]] == [
        ("parse_prompt", "ok"),
        ("layout_rooms", "ok"),
        ("connect_doors", "ok"),
        ("populate", "error"),
        ("populate#2", "ok"),
        ("validate_level#2", "ok"),
        ("render_minimap#2", "ok"),
    ]
    # The completed steps ran once: only the first attempt computed them.
    computed = [e for e in ops.worker_events() if e.get("jobId") == job_id and e.get("event") == "step.recorded"]
    assert sorted(e["step"] for e in computed) == sorted(pipeline.STEPS)

    again = _celery(ops, "retry-job", job_id)
    assert again.returncode == 1 and "only a failed job can be retried" in again.stderr


def test_retry_through_the_api(ops):
    job_id = ops.submit(headers={"X-Fault-Drill": "fail:parse_prompt"})["jobId"]
    assert ops.wait_terminal(job_id)["state"] == "failed"
    url = f"{ops.url}/jobs/{job_id}/retry"
    assert requests.post(url, timeout=10).status_code == 401
    response = requests.post(url, headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=10)
    assert response.status_code == 202 and response.json()["attempt"] == 2
    assert ops.wait_terminal(job_id)["state"] == "done"
    conflict = requests.post(url, headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=10)
    assert conflict.status_code == 409


@pytest.mark.serial  # the revoke must reach the worker within the 5-second slow step it stops
def test_a_step_an_operator_revokes_fails_its_job_revoked_and_a_retry_finishes_it(ops):
    """Flower's Terminate button, as `app.control.revoke(id, terminate=True)`: the worker kills the
    step and acks its message. The job fails REVOKED at once (it showed running until the stall
    sweeper, 30 minutes by default), and a retry finishes it."""
    job_id = ops.submit(headers={"X-Fault-Drill": "slow:connect_doors"})["jobId"]
    step = f"{job_id}:connect_doors"
    deadline = time.monotonic() + 20
    while step not in ops.raw_item(job_id).get("leases", {}).get("M", {}):
        assert time.monotonic() < deadline, "connect_doors never started"
        time.sleep(0.1)
    # The lease's owner begins with the Celery task id of the message that carries the step.
    task_id = ops.raw_item(job_id)["leases"]["M"][step]["M"]["owner"]["S"].split("/")[0]
    revoke = f"from tasks import app; app.control.revoke({task_id!r}, terminate=True)"
    subprocess.run([sys.executable, "-c", revoke], env=ops.stack.env, cwd=ops.stack_root, check=True, timeout=60)

    body = ops.wait_terminal(job_id)
    assert body["state"] == "failed" and body["error"]["code"] == "REVOKED", body
    assert body["error"]["details"] == {"step": "connect_doors"}
    retried = requests.post(f"{ops.url}/jobs/{job_id}/retry", headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=10)
    assert retried.status_code == 202, retried.text
    assert ops.wait_terminal(job_id)["state"] == "done"

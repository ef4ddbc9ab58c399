"""Flower and the celery CLI see the workers: events and remote control over SNS -> SQS (tasks/sqs_fanout.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import requests

import pipeline
from storage.bootstrap import aws_client
from tests.integration.conftest import LiveStack, free_port

STEPS = list(pipeline.STEPS)
AUTH = ("ops", "flower-test-secret")


def eventually(probe: Callable[[], object], timeout: float, what: str) -> object:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen within {timeout:.0f} s")


@pytest.fixture(scope="module")
def monitored(make_stack) -> LiveStack:
    """A stack with a worker, the API and Flower (on a free port, behind basic auth)."""
    live = make_stack({"FLOWER_BASIC_AUTH": ":".join(AUTH)})
    live.stack.config.flower_port = free_port()
    live.stack.start_flower()
    return live


def flower_get(live: LiveStack, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{live.stack.flower_url}{path}", timeout=15, **{"auth": AUTH, **kwargs})


def test_flower_refuses_requests_without_basic_auth(monitored):
    assert flower_get(monitored, "/api/workers", auth=None).status_code == 401
    assert flower_get(monitored, "/api/workers", auth=("ops", "wrong")).status_code == 401


def test_flower_lists_the_worker_and_every_step_task_of_a_job(monitored):
    def online_workers() -> list[str]:
        workers = flower_get(monitored, "/api/workers", params={"status": "1"}).json()
        return [name for name, online in workers.items() if online and name.startswith("worker1@")]

    # Heartbeats (events) make the worker online; the job's events then reach a subscribed Flower.
    (worker,) = eventually(online_workers, 30, "worker1 online in Flower")

    def registered() -> list[str] | None:
        # Answered by remote control: Flower asks each question apart and shows what came back
        # within its inspect_timeout (1 s), so on a loaded machine a refresh may lack an answer,
        # as a dashboard's page may; the next one has it.
        inspected = flower_get(monitored, "/api/workers", params={"refresh": "1"}).json()
        return inspected.get(worker, {}).get("registered")

    assert {f"tasks.steps.{step}" for step in STEPS} <= set(eventually(registered, 30, "the worker's registered tasks"))

    # Workers start with task events off; Flower turns them on (enable_events, every 5 s), so a
    # job submitted right away may be seen only in part: the next one is seen whole.
    def job_tasks(job_id: str) -> dict[str, dict] | None:
        tasks = flower_get(monitored, "/api/tasks").json().values()
        mine = {task["name"]: task for task in tasks if job_id in (task.get("args") or "")}
        done = all(task["state"] == "SUCCESS" for task in mine.values())
        return mine if len(mine) == len(STEPS) and done else None

    def a_job_seen_whole() -> tuple[str, dict[str, dict]] | None:
        job_id = monitored.submit()["jobId"]
        assert monitored.wait_terminal(job_id)["state"] == "done"
        try:
            return job_id, eventually(lambda: job_tasks(job_id), 5, "its tasks")
        except AssertionError:
            return None

    job_id, tasks = eventually(a_job_seen_whole, 60, f"a job's {len(STEPS)} step tasks as SUCCESS in Flower")
    assert set(tasks) == {f"tasks.steps.{step}" for step in STEPS}
    for task in tasks.values():
        assert task["worker"] == worker
        assert isinstance(task["runtime"], float) and task["runtime"] >= 0


def test_inspect_ping_and_active_answer_from_the_worker(monitored):
    def celery(*argv: str) -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tasks", *argv],
            env=monitored.stack.env,
            cwd=monitored.stack_root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result, time.monotonic() - started

    ping, elapsed = celery("inspect", "ping", "--timeout", "5")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "worker1@" in ping.stdout and "pong" in ping.stdout
    assert elapsed < 20, f"inspect ping took {elapsed:.1f} s"
    active, _ = celery("inspect", "active", "--timeout", "5")
    assert active.returncode == 0, active.stdout + active.stderr
    assert "worker1@" in active.stdout


def test_a_cli_call_leaves_no_control_queue_behind(monitored):
    sqs = aws_client(monitored.stack.settings, "sqs")
    prefix = monitored.stack.settings.control_prefix

    def reply_queues() -> set[str]:
        urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        return {url for url in urls if url.endswith("reply-celery-pidbox")}

    before = reply_queues()
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--timeout", "5"],
        env=monitored.stack.env,
        cwd=monitored.stack_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert reply_queues() == before  # the CLI's reply queue was deleted when it exited

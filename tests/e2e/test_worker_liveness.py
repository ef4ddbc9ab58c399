"""A worker that stops taking messages is noticed and replaced, and the jobs still finish.

The consumer is frozen the way the hang seen on SQS looks from outside — the process alive, its
event loop running, the job queue no longer polled — with Celery's own remote control
(``cancel_consumer``). Its heartbeat then goes stale (tasks/liveness.py), and the local stack
replaces it as ECS's container health check would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LIVENESS_SECONDS = 8


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_worker_whose_consumer_is_frozen_is_replaced_while_jobs_still_finish(tmp_path):
    ports = {"EMULATOR_PORT": free_port(), "API_PORT": free_port(), "FLOWER_PORT": free_port()}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "WORKER_LIVENESS_SECONDS": str(LIVENESS_SECONDS),
        "SQS_WAIT_TIME_SECONDS": "1",
        "LOCAL_STACK_DIR": str(tmp_path / "local-stack"),  # not the checkout's saved state
    }
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "scripts/local_stack.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{ports['API_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while "local stack is up" not in log_path.read_text():
            assert stack.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        assert wait_done(base, submit(base)) == "done"

        # Freeze the consumer: the worker stays up, its loop runs, but the job queue is not polled.
        control = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tasks", "control", "cancel_consumer", "ghost-engine-jobs-local"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**clean_shell(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['EMULATOR_PORT']}"},
        )
        assert "no longer consuming from" in control.stdout, control.stdout + control.stderr
        frozen_at = time.monotonic()
        jobs = [submit(base) for _ in range(3)]
        time.sleep(2)
        assert all(state(base, job) == "queued" for job in jobs), "the frozen worker still took messages"

        assert [wait_done(base, job, timeout=90) for job in jobs] == ["done"] * 3
        replaced_after = time.monotonic() - frozen_at
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)
    text = log_path.read_text()
    # Replaced for a heartbeat that went stale (not one never written), and only once it was.
    ages = re.findall(r"worker stopped taking messages \(heartbeat (\d+) s old, limit \d+ s\): restarting it", text)
    assert ages and all(int(age) >= LIVENESS_SECONDS for age in ages), text[-3000:]
    assert "no heartbeat" not in text, text[-3000:]
    assert replaced_after >= LIVENESS_SECONDS / 2


def clean_shell() -> dict[str, str]:
    """A plain shell's environment: no AWS variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def submit(base: str) -> str:
    response = requests.post(f"{base}/generate-scene", json={"prompt": "a frozen hall"}, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def state(base: str, job_id: str) -> str:
    return requests.get(f"{base}/status/{job_id}", timeout=10).json()["state"]


def wait_done(base: str, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while (current := state(base, job_id)) in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.3)
    return current

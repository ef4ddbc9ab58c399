"""When `make run` replaces a worker: a stale heartbeat after WORKER_LIVENESS_SECONDS, a missing one
only after ECS's start period; a worker that exited, unless it exited soon after its start.

The replacement itself (a real worker frozen and restarted) is tests/e2e/test_worker_liveness.py;
here the rule, on a stack whose worker is a sleeping process and whose restart is recorded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import local_stack  # scripts/ is on the path (tests/conftest.py)
from local_stack import Stack, StackConfig, WorkerSpec

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 8  # WORKER_LIVENESS_SECONDS
SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def restarts() -> list[str]:
    """The workers the stack started again, by name."""
    return []


@pytest.fixture
def stack(tmp_path, monkeypatch, restarts):
    stack = Stack(StackConfig(emulator_port=4700, api_port=8200, flower_port=5700), log_dir=tmp_path)
    stack.env.update(WORKER_LIVENESS_SECONDS=str(LIMIT), SQS_WAIT_TIME_SECONDS="1")
    stack.procs["worker"] = subprocess.Popen([sys.executable, "-c", SLEEP])

    def stop_process(name: str, timeout: float) -> None:
        proc = stack.procs.pop(name)
        proc.kill()
        proc.wait()

    monkeypatch.setattr(stack, "stop_process", stop_process)
    monkeypatch.setattr(stack, "start_worker", lambda name, *args, **kwargs: restarts.append(name))
    yield stack
    for proc in stack.procs.values():
        proc.kill()
        proc.wait()


def started(stack: Stack, seconds_ago: float) -> None:
    stack.workers["worker"] = WorkerSpec(2, "tasks", {}, time.monotonic() - seconds_ago)


def beat(stack: Stack, seconds_ago: float) -> None:
    path = stack.heartbeat_file("worker")
    path.touch()
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_a_worker_that_has_not_beaten_yet_gets_the_start_period_not_the_liveness_limit(stack, restarts, capsys):
    started(stack, seconds_ago=local_stack.WORKER_START_PERIOD_SECONDS - 5)  # long past LIMIT
    assert stack.replace_unresponsive_workers() == []

    started(stack, seconds_ago=local_stack.WORKER_START_PERIOD_SECONDS + 1)
    assert stack.replace_unresponsive_workers() == ["worker"] == restarts
    logged = capsys.readouterr().err
    assert "worker stopped taking messages (no heartbeat 60 s after its start): restarting it" in logged


def test_a_heartbeat_written_then_left_stale_is_replaced_after_the_liveness_limit(stack, capsys):
    started(stack, seconds_ago=LIMIT + 5)
    beat(stack, seconds_ago=LIMIT - 2)
    assert stack.replace_unresponsive_workers() == []

    beat(stack, seconds_ago=LIMIT + 3)
    assert stack.replace_unresponsive_workers() == ["worker"]
    assert re.search(r"worker stopped taking messages \(heartbeat 1[01] s old, limit 8 s\)", capsys.readouterr().err)


def test_a_start_period_shorter_than_the_liveness_limit_gives_way_to_the_limit(stack):
    stack.env["WORKER_LIVENESS_SECONDS"] = "90"
    started(stack, seconds_ago=75)  # past the start period, within the limit
    assert stack.replace_unresponsive_workers() == []
    started(stack, seconds_ago=91)
    assert stack.replace_unresponsive_workers() == ["worker"]


def test_the_start_period_is_the_one_ecs_gives_the_worker():
    ecs = (ROOT / "deploy/terraform/ecs.tf").read_text()
    worker = ecs[ecs.index("tasks.liveness") :]
    assert int(re.search(r"startPeriod\s*=\s*(\d+)", worker).group(1)) == local_stack.WORKER_START_PERIOD_SECONDS


def test_a_worker_that_exits_is_restarted_as_it_was_started(stack, restarts, capsys):
    """As ECS replaces a stopped task: `kill -9` of the worker, or Flower's Shut Down, stops only it."""
    started(stack, seconds_ago=local_stack.WORKER_MIN_RUN_SECONDS + 5)
    beat(stack, seconds_ago=0)
    assert stack.replace_exited_workers() == []

    stack.procs["worker"].kill()
    stack.procs["worker"].wait()
    assert stack.replace_exited_workers() == ["worker"] == restarts
    assert "worker exited (signal 9, SIGKILL): restarting it" in capsys.readouterr().err


def test_a_worker_that_exits_soon_after_its_start_is_left_to_stop_the_stack(stack, restarts):
    """It cannot run (a bad setting, a broken import): restarting it would only loop."""
    started(stack, seconds_ago=local_stack.WORKER_MIN_RUN_SECONDS - 27)
    stack.procs["worker"].kill()
    stack.procs["worker"].wait()
    assert stack.replace_exited_workers() == [] == restarts
    assert stack.exited() == ["worker"]
    assert (
        stack.why_exited("worker") == "worker exited 3 s after it started (signal 9, SIGKILL), too soon to restart it"
    )


def test_make_run_restarts_a_worker_that_exits_and_stops_when_the_new_one_exits_at_once(monkeypatch, tmp_path, capsys):
    """The whole loop: the API and the emulator stay up through a worker's exit, not through a loop of them."""
    started_at = {"worker": time.monotonic() - local_stack.WORKER_MIN_RUN_SECONDS - 5}  # the first one's

    def start_worker(self, name="worker", concurrency=None, *, app="tasks", env=None):
        self.workers[name] = WorkerSpec(2, app, {}, started_at.pop(name, time.monotonic()))
        self.procs[name] = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)

    def start(self):
        self.procs["api"] = subprocess.Popen([sys.executable, "-c", SLEEP], start_new_session=True)
        self.start_worker()

    monkeypatch.setenv("LOCAL_STACK_DIR", str(tmp_path))
    monkeypatch.setattr(local_stack.signal, "signal", lambda *args: None)  # pytest keeps its own Ctrl-C
    monkeypatch.setattr(Stack, "start", start)
    monkeypatch.setattr(Stack, "start_worker", start_worker)
    monkeypatch.setattr(Stack, "replace_unresponsive_workers", lambda self: [])

    assert local_stack.main([]) == 1
    err = capsys.readouterr().err
    assert "worker exited (code 3): restarting it" in err
    assert re.search(r"stopping: worker exited \d s after it started \(code 3\), too soon to restart it", err)
    assert "api exited" not in err

"""`make run` keeps its state: stopped with Ctrl-C and started again, its jobs, steps and artifacts are there.

scripts/local_stack.py is started as `make run` starts it (on free ports, its state in a
directory of the test's own), a job is run to done and another is stopped in the middle of a
step, the stack is stopped with SIGINT and started again: the done job answers the same status,
its artifacts the same bytes through fresh presigned URLs, the interrupted job finishes, and new
jobs run, with the credentials the first run generated. `--clean` (`make run-clean`) then starts
empty. None of the three stops logs a
traceback, in any process.
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

from tests.e2e.conftest import assert_no_stop_symptoms
from tests.integration.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


class RunningStack:
    """One `make run`, in the foreground of its own process group, stopped with Ctrl-C."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "scripts/local_stack.py", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while "local stack is up" not in (banner := log.read_text()):
            assert self.proc.poll() is None and time.monotonic() < deadline, banner[-3000:]
            time.sleep(0.3)
        self.banner = banner

    def stop(self) -> str:
        os.killpg(self.proc.pid, signal.SIGINT)
        assert self.proc.wait(timeout=90) == 0, self.log.read_text()[-3000:]
        return self.log.read_text()


@pytest.fixture
def stack_env(tmp_path) -> dict[str, str]:
    ports = {"EMULATOR_PORT": free_port(), "API_PORT": free_port(), "FLOWER_PORT": free_port()}
    generated = ("INTERNAL_TOKEN", "FLOWER_BASIC_AUTH")  # make run generates them, and keeps them
    return {
        **{key: value for key, value in os.environ.items() if key not in generated},
        **{k: str(v) for k, v in ports.items()},
        "FAULT_DRILLS": "1",
        "LOCAL_STACK_DIR": str(tmp_path / "state"),
    }


def credentials(banner: str) -> tuple[str, str]:
    """The operators' token and Flower's user:password a banner prints."""
    token = re.search(r"export INTERNAL_TOKEN=(\S+)", banner)
    flower = re.search(r"user:password (\S+)\)", banner)
    assert token and flower, banner
    return token[1], flower[1]


def wait_state(api: str, job_id: str, states: set[str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while (body := requests.get(f"{api}/status/{job_id}", timeout=10).json())["state"] not in states:
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    return body


def artifact(api: str, job_id: str, name: str) -> bytes:
    response = requests.get(f"{api}/jobs/{job_id}/artifacts/{name}", timeout=10)  # 302 -> presigned S3 URL
    assert response.status_code == 200 and response.history and response.history[0].status_code == 302
    return response.content


def test_jobs_steps_and_artifacts_survive_a_restart_and_run_clean_forgets_them(stack_env, tmp_path):
    api = f"http://127.0.0.1:{stack_env['API_PORT']}"
    first = RunningStack(stack_env, tmp_path / "first.log")
    try:
        assert "0 jobs from earlier runs" in first.banner
        done = requests.post(f"{api}/generate-scene", json={"prompt": "a spooky hallway", "seed": 123}, timeout=10)
        done_id = done.json()["jobId"]
        before = wait_state(api, done_id, {"done", "failed"})
        assert before["state"] == "done", before
        minimap, scene = artifact(api, done_id, "asciiMinimap.txt"), artifact(api, done_id, "sceneGraph.json")
        # A job in the middle of a step when the stack stops: the step finishes (the worker's warm
        # shutdown), and its next step's message waits in the saved queue.
        slow = requests.post(
            f"{api}/generate-scene",
            json={"prompt": "an interrupted crypt"},
            headers={"X-Fault-Drill": "slow:layout_rooms"},
            timeout=10,
        ).json()["jobId"]
        deadline = time.monotonic() + 30
        while not any(
            s["name"] == "parse_prompt" for s in requests.get(f"{api}/status/{slow}", timeout=10).json()["steps"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # layout_rooms is running (5 s longer than usual)
    finally:
        stopped = first.stop()
    assert (tmp_path / "state" / "emulator-state.pickle").is_file()
    assert "saved" in (tmp_path / "state" / "emulator.log").read_text()

    second = RunningStack(stack_env, tmp_path / "second.log")
    try:
        assert "2 jobs from earlier runs" in second.banner, second.banner
        # The credentials it generated too: an operator's terminal and a console tab still work.
        assert credentials(second.banner) == credentials(first.banner)
        token = {"X-INTERNAL-TOKEN": credentials(first.banner)[0]}
        refused = requests.post(f"{api}/jobs/{done_id}/cancel", headers=token, timeout=10)
        assert refused.status_code == 409, refused.text  # let in, and refused: the job is done
        after = requests.get(f"{api}/status/{done_id}", timeout=10).json()
        assert after["state"] == "done" and after["steps"] == before["steps"]
        assert after["result"]["summary"] == before["result"]["summary"]
        assert artifact(api, done_id, "asciiMinimap.txt") == minimap
        assert artifact(api, done_id, "sceneGraph.json") == scene
        listed = {job["jobId"] for job in requests.get(f"{api}/jobs", timeout=10).json()["jobs"]}
        assert {done_id, slow} <= listed
        finished = wait_state(api, slow, {"done", "failed", "cancelled"}, timeout=60)
        assert finished["state"] == "done", finished
        assert [s["name"] for s in finished["steps"]].count("layout_rooms") == 1
        fresh = requests.post(f"{api}/generate-scene", json={"prompt": "a new hall"}, timeout=10).json()["jobId"]
        assert wait_state(api, fresh, {"done", "failed"})["state"] == "done"
    finally:
        stopped += second.stop()

    clean = RunningStack(stack_env, tmp_path / "clean.log", "--clean")
    try:
        assert "0 jobs from earlier runs" in clean.banner
        assert credentials(clean.banner) == credentials(first.banner)  # run-clean forgets jobs, not these
        assert requests.get(f"{api}/jobs", timeout=10).json()["jobs"] == []
        assert requests.get(f"{api}/status/{done_id}", timeout=10).status_code == 404
    finally:
        stopped += clean.stop()
    # Three stops, none logging a traceback: the API, worker and Flower write to make run's
    # terminal (the RunningStack logs), the emulator to its own log, kept across the runs.
    assert_no_stop_symptoms(terminal=stopped, emulator=(tmp_path / "state" / "emulator.log").read_text())

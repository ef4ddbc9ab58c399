"""The README's operator section, run as written from a second terminal with no AWS variables.

`make run` (scripts/local_stack.py) is started exactly as a newcomer would, on its default ports
(the README's commands use them); the operator block is read from README.md, its placeholders
filled with real job ids and the token the stack printed, and run by bash in a shell environment
stripped of every AWS variable.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORTS = {"emulator": 4566, "API": 8000, "Flower": 5555}
API = "http://127.0.0.1:8000"


def operator_block() -> list[str]:
    """The shell lines of the README's first code block under '## Operators'."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Operators") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def plain_shell() -> dict[str, str]:
    """A terminal's environment: no AWS variable, no project setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ENV", "BROKER_", "INTERNAL_"))}


def submit(drill: str) -> str:
    response = requests.post(
        f"{API}/generate-scene", json={"prompt": "an operator's hall"}, headers={"X-Fault-Drill": drill}, timeout=10
    )
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def wait_state(job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (body := requests.get(f"{API}/status/{job_id}", timeout=10).json())["state"] not in states:
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    return body


def test_the_readme_operator_section_runs_as_written_from_a_plain_shell(tmp_path):
    busy = [f"{name} port {port}" for name, port in DEFAULT_PORTS.items() if listening(port)]
    if busy:
        why = f"{', '.join(busy)} in use (is `make run` up?): the README's commands use the defaults"
        # A developer with `make run` up may skip it; CI, where nothing else should listen, may not.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "scripts/local_stack.py"], cwd=ROOT, env={**plain_shell(), "FAULT_DRILLS": "1"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "local stack is up" not in (banner := log_path.read_text()):
            assert stack.poll() is None and time.monotonic() < deadline, banner
            time.sleep(0.3)
        token = re.search(r"INTERNAL_TOKEN (\S+)", banner)[1]
        failed = [submit("fail:populate") for _ in range(2)]
        for job_id in failed:
            wait_state(job_id, {"failed"})
        # Busy the worker's two slots for a while, so the job to cancel is still in progress when
        # the block reaches its cancel-job line.
        for _ in range(4):
            submit("slow:parse_prompt")
        running = submit("slow:layout_rooms")

        filled = {
            "retry-job <jobId>": f"retry-job {failed[0]}",
            "cancel-job <jobId>": f"cancel-job {running}",
            "jobs/<jobId>/retry": f"jobs/{failed[1]}/retry",
            "<the token make run printed>": token,
        }
        script = ["set -euo pipefail"]
        for number, line in enumerate(operator_block()):
            for placeholder, value in filled.items():
                line = line.replace(placeholder, value)
            assert "<" not in line.split("#")[0], f"unfilled placeholder in: {line}"
            script += [f"echo '### {number}'", line]
        run = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=ROOT, env=plain_shell(), capture_output=True, text=True, timeout=180
        )
        assert run.returncode == 0, run.stdout + run.stderr
        outputs = dict(re.findall(r"### (\d+)\n(.*?)(?=### \d+\n|\Z)", run.stdout, re.S))
        commands = operator_block()

        def output_of(fragment: str) -> str:
            return next(outputs[str(i)] for i, line in enumerate(commands) if fragment in line)

        assert "pong" in output_of("inspect ping")
        assert f"{failed[0]}: queued as attempt 2 from populate" in output_of("retry-job <jobId>")
        assert f"{failed[1]}: would retry from populate as attempt 2" in output_of("--dry-run")
        assert f"{running}: cancelled" in output_of("cancel-job")
        assert '"attempt":2' in output_of("curl").replace(" ", "")
        for job_id in failed:
            assert wait_state(job_id, {"done", "failed"})["state"] == "done"
        assert wait_state(running, {"cancelled", "done", "failed"})["state"] == "cancelled"
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        stack.wait(timeout=60)

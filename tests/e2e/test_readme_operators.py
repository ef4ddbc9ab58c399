"""The README's operator section, run as written from a second terminal with no AWS variables.

`make run` (scripts/local_stack.py) is started exactly as a newcomer would, on its default ports
and on others (EMULATOR_PORT, API_PORT, FLOWER_PORT); the operator block is read from README.md,
its placeholders filled with real job ids and the `export` lines the stack printed, and run by bash
in a shell environment stripped of every AWS variable and project setting. On other ports nothing
of this stack listens on the defaults, so a command that ignored the exports would fail.
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
DEFAULT_PORTS = {"EMULATOR_PORT": 4566, "API_PORT": 8000, "FLOWER_PORT": 5555}
SLOW_JOBS = 8  # 5 s each, two at a time: the job to cancel starts about 20 s after them


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
    prefixes = ("AWS_", "ENV", "BROKER_", "INTERNAL_", "GHOST_", "LOCAL_STACK", *DEFAULT_PORTS)
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def submit(api: str, drill: str) -> str:
    response = requests.post(
        f"{api}/generate-scene", json={"prompt": "an operator's hall"}, headers={"X-Fault-Drill": drill}, timeout=10
    )
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def wait_state(api: str, job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (body := requests.get(f"{api}/status/{job_id}", timeout=10).json())["state"] not in states:
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    return body


def banner_exports(banner: str) -> list[str]:
    """The `export` lines under the banner's "Operators" heading, as printed."""
    section = banner[banner.index("Operators, in another terminal") :]
    return [line.strip() for line in section.splitlines() if line.startswith("  export ")]


# The defaults' case takes the default ports, as the README's stack does. No other test binds them
# (every other stack takes free ports, which the kernel hands out above 32767), and both cases run in
# this file's process one after the other, so it runs beside the rest of the suite.
@pytest.mark.parametrize("ports", ["default", "other"])
def test_the_readme_operator_section_runs_as_written_from_a_plain_shell(tmp_path, ports):
    if ports == "default":
        busy = [f"{name} {port}" for name, port in DEFAULT_PORTS.items() if listening(port)]
        if busy:
            why = f"{', '.join(busy)} in use (is `make run` up?): this run is of the defaults"
            # A developer with `make run` up may skip it; CI, where nothing else should listen, may not.
            (pytest.fail if os.environ.get("CI") else pytest.skip)(why)
        chosen = dict(DEFAULT_PORTS)
    else:
        chosen = {name: free_port() for name in DEFAULT_PORTS}
    api = f"http://127.0.0.1:{chosen['API_PORT']}"
    stack_env = {
        **plain_shell(),
        "FAULT_DRILLS": "1",
        "LOCAL_STACK_DIR": str(tmp_path / "local-stack"),
        **({name: str(port) for name, port in chosen.items()} if ports == "other" else {}),
    }
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "scripts/local_stack.py"],
            cwd=ROOT,
            env=stack_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "local stack is up" not in (banner := log_path.read_text()):
            assert stack.poll() is None and time.monotonic() < deadline, banner
            time.sleep(0.3)
        exports = banner_exports(banner)
        assert any(f"AWS_ENDPOINT_URL=http://127.0.0.1:{chosen['EMULATOR_PORT']}" in line for line in exports)
        assert f"export GHOST_API_URL={api}" in exports
        failed = [submit(api, "fail:populate") for _ in range(3)]
        for job_id in failed:
            wait_state(api, job_id, {"failed"})
        # Busy the worker's two slots for a while, so the job to cancel is still in progress when
        # the block reaches its cancel-job line (each celery command takes a few seconds to start).
        for _ in range(SLOW_JOBS):
            submit(api, "slow:parse_prompt")
        running = submit(api, "slow:layout_rooms")

        filled = {
            "retry-job <jobId>": f"retry-job {failed[0]}",
            "cancel-job <jobId>": f"cancel-job {running}",
            "jobs/<jobId>/retry": f"jobs/{failed[1]}/retry",
            "<the export lines make run printed>": "\n".join(exports),
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
        cancelled = output_of("cancel-job")
        assert f"{running}: cancelled" in cancelled
        assert "_aws" not in cancelled and "CloudWatchMetrics" not in cancelled  # no EMF on the operator's screen
        assert failed[1] in output_of("ghost-engine jobs") and failed[2] in output_of("ghost-engine jobs")
        assert '"attempt":2' in output_of("curl").replace(" ", "")
        for job_id in failed[:2]:
            assert wait_state(api, job_id, {"done", "failed"})["state"] == "done"
        assert wait_state(api, running, {"cancelled", "done", "failed"})["state"] == "cancelled"

        # ghost-engine-admin, from the same shell, reads this stack's table too.
        state = tmp_path / "state.jsonl"
        admin = subprocess.run(
            ["bash", "-c", "\n".join([*exports, f".venv/bin/ghost-engine-admin export --out {state}"])],
            cwd=ROOT,
            env=plain_shell(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert admin.returncode == 0, admin.stderr
        assert re.search(rf"\b{len(failed) + SLOW_JOBS + 1} job\b", admin.stderr), admin.stderr
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        stack.wait(timeout=60)

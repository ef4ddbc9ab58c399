"""`make run`'s command, started as a newcomer would, smoke-tested over HTTP, then stopped with Ctrl-C.

Stopped (SIGINT or SIGTERM), it exits 0, binds no port, leaves no process behind, and none of its
processes logs a traceback (issue 16).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import assert_no_stop_symptoms

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_local_stack_passes_the_smoke_test_and_stops_cleanly(tmp_path, stop_signal):
    ports = {"EMULATOR_PORT": free_port(), "API_PORT": free_port(), "FLOWER_PORT": free_port()}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "INTERNAL_TOKEN": "e2e-token",
        "LOCAL_STACK_DIR": str(tmp_path / "local-stack"),
    }  # not the checkout's saved state
    log = (tmp_path / "stack.log").open("wb")
    stack = subprocess.Popen(
        [sys.executable, "scripts/local_stack.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{ports['API_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while "local stack is up" not in (banner := (tmp_path / "stack.log").read_text()):
            assert stack.poll() is None and time.monotonic() < deadline, banner
            time.sleep(0.3)
        assert base in banner and "export INTERNAL_TOKEN=e2e-token" in banner
        assert f"export GHOST_API_URL={base}" in banner
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{ports['EMULATOR_PORT']} " in banner
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"ok": True}

        smoke = subprocess.run(
            ["bash", "scripts/smoke-test.sh", base], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "smoke: PASS" in smoke.stdout
    finally:
        stack.send_signal(stop_signal)
        code = stack.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "stack.log").read_text()[-3000:]
    # The API, worker and Flower write to make run's terminal (stack.log), the emulator to its own log.
    assert_no_stop_symptoms(
        terminal=(tmp_path / "stack.log").read_text(), emulator=(tmp_path / "local-stack" / "emulator.log").read_text()
    )
    assert not any(listening(port) for port in ports.values()), "a port is still bound after stopping"
    assert _processes_mentioning(f"127.0.0.1:{ports['API_PORT']}") == [], "processes left behind"


def test_smoke_test_fails_against_a_dead_url():
    port = free_port()
    smoke = subprocess.run(
        ["bash", "scripts/smoke-test.sh", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert smoke.returncode != 0
    assert "smoke: FAIL" in smoke.stderr


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes containing ``text`` (read from /proc: no pgrep needed)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found

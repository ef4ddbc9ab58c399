"""scripts/smoke-test.sh's setting: a bad SMOKE_TIMEOUT stops it before it sends anything.

The smoke test itself, against the running stack, is tests/e2e/test_local_stack.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_a_bad_smoke_timeout_exits_2_before_any_request(value):
    """It used to submit a job, then fail in the wait with `abc: unbound variable`."""
    with socket.socket() as api:  # listens, and never answers: a request would show as a connection
        api.bind(("127.0.0.1", 0))
        api.listen()
        smoke = subprocess.run(
            ["bash", str(ROOT / "scripts" / "smoke-test.sh"), f"http://127.0.0.1:{api.getsockname()[1]}"],
            env={**os.environ, "SMOKE_TIMEOUT": value},
            capture_output=True,
            text=True,
            timeout=10,
        )
        api.setblocking(False)
        with pytest.raises(BlockingIOError):
            api.accept()
    assert smoke.returncode == 2
    assert smoke.stdout == ""
    assert smoke.stderr == f"smoke: SMOKE_TIMEOUT must be a positive whole number of seconds, got '{value}'\n"

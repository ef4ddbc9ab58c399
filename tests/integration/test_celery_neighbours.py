"""ghost-engine installed beside another Celery app changes nothing for that app.

The ``celery.commands`` entry points (retry-job, cancel-job) make every ``celery`` command in the
environment import ``tasks.cli``, whatever app it runs. That import must start no thread, connect
no signal and configure no logging; the stall sweeper and the JSON logs belong to ghost-engine's
own worker only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OURS = ("tasks", "storage", "api", "pipeline", "celeryconfig")

# The whole of someone else's Celery app.
OTHER_APP = 'from celery import Celery\napp = Celery("other", broker="memory://")\n'


def test_loading_the_celery_entry_points_has_no_side_effects():
    probe = textwrap.dedent(
        f"""
        import json, logging, sys, threading
        from importlib.metadata import entry_points
        from celery import signals
        before = {{name: len(getattr(signals, name).receivers) for name in signals.__all__}}
        commands = [ep.load() for ep in entry_points(group="celery.commands")]
        after = {{name: len(getattr(signals, name).receivers) for name in signals.__all__}}
        print(json.dumps({{
            "commands": sorted(command.name for command in commands),
            "threads": [t.name for t in threading.enumerate()],
            "rootHandlers": len(logging.getLogger().handlers),
            "ours": sorted(m for m in sys.modules if m.split(".")[0] in {OURS!r}),
            "newReceivers": {{k: after[k] - before[k] for k in after if after[k] != before[k]}},
        }}))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, timeout=60, check=True)
    report = __import__("json").loads(out.stdout)
    assert {"retry-job", "cancel-job"} <= set(report["commands"])
    assert report["threads"] == ["MainThread"]
    assert report["rootHandlers"] == 0
    assert report["ours"] == ["tasks", "tasks.cli"]  # nothing else of ours is even imported
    assert report["newReceivers"] == {}


def test_another_app_s_worker_runs_none_of_ghost_engine_s_code(tmp_path):
    (tmp_path / "other.py").write_text(OTHER_APP)
    env = {
        **os.environ,
        # Were ghost-engine's sweeper to run here, it would fail every second, loudly.
        "ENV": "local",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "SWEEP_INTERVAL_SECONDS": "1",
        "PYTHONPATH": str(tmp_path),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "other",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while b" ready." not in log.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(4)  # four sweep intervals: a sweeper would have logged by now
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    text = log.read_text()
    assert "other" in text and "ghost-engine" not in text
    assert "sweep" not in text
    assert not [line for line in text.splitlines() if line.startswith("{")], "JSON log lines in another app's worker"
    assert ": INFO/MainProcess] celery@" in text  # Celery's own log format, untouched

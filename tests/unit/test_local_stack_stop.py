"""How `make run` and the tests' stacks stop: the API first, the workers together, the emulator last."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from local_stack import Stack, StackConfig, WorkerSpec  # scripts/ is on the path (tests/conftest.py)

# A process that, like a warm Celery shutdown, takes a moment between its SIGTERM and its exit,
# and writes both to a shared log (appends of one short line each: they do not interleave).
LINGERING = """
import signal, sys, time
log, name = sys.argv[1], sys.argv[2]

def note(what):
    with open(log, "a") as out:
        out.write(f"{name} {what}\\n")

def on_term(*_):
    note("term")
    time.sleep(0.5)
    note("exit")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def _lingering(log: Path, name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", LINGERING, str(log), name], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_the_workers_stop_together_after_the_api_and_before_the_emulator(tmp_path):
    log = tmp_path / "signals.log"
    stack = Stack(StackConfig(emulator_port=4700, api_port=8200, flower_port=5700), log_dir=tmp_path)
    for name in ("emulator", "worker", "api", "worker-2", "worker-3"):
        stack.procs[name] = _lingering(log, name)
        if name.startswith("worker"):
            stack.workers[name] = WorkerSpec(2, "tasks", {}, time.monotonic())
    procs = dict(stack.procs)

    stack.stop()

    events = log.read_text().splitlines()
    assert events[:2] == ["api term", "api exit"]
    workers = events[2:8]
    # Each worker was told to stop before any of them had finished stopping.
    assert sorted(workers[:3]) == ["worker term", "worker-2 term", "worker-3 term"], events
    assert sorted(workers[3:]) == ["worker exit", "worker-2 exit", "worker-3 exit"], events
    assert events[8:] == ["emulator term", "emulator exit"]
    assert stack.procs == {} and all(proc.poll() == 0 for proc in procs.values())

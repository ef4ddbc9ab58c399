"""How `make run` and the tests' stacks stop: the API first, the workers together, the emulator last;
a worker still busy past its warm shutdown's time is killed, saying so."""

from __future__ import annotations

import contextlib
import os
import signal
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
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0.5)
    note("exit")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def _lingering(log: Path, name: str, seconds: float = 0.5) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", LINGERING, str(log), name, str(seconds)], stdout=subprocess.PIPE, start_new_session=True
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


def test_a_worker_still_busy_when_its_warm_shutdown_runs_out_is_killed_saying_so(tmp_path, capsys):
    """Its step (up to STEP_TIME_LIMIT_SECONDS) is cut short; the README says it runs again at the next start."""
    log = tmp_path / "signals.log"
    stack = Stack(StackConfig(emulator_port=4700, api_port=8200, flower_port=5700), log_dir=tmp_path)
    stack.procs["worker"] = proc = _lingering(log, "worker", seconds=30)
    stack.workers["worker"] = WorkerSpec(2, "tasks", {}, time.monotonic())

    stack.stop_process("worker", warm=True, timeout=0.5)

    assert proc.returncode == -9 and log.read_text().splitlines() == ["worker term"]
    assert capsys.readouterr().err == "worker still busy after 0.5 s: killed; its step runs again at the next start\n"


def test_what_an_exited_process_left_in_its_group_is_stopped_with_it(tmp_path):
    """A worker killed with SIGKILL can leave its steps' subprocesses: its replacement must not run beside them."""
    stack = Stack(StackConfig(emulator_port=4700, api_port=8200, flower_port=5700), log_dir=tmp_path)
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, start_new_session=True, text=True
    )
    assert leader.stdout is not None
    left = int(leader.stdout.readline())
    leader.wait()
    stack.procs["worker"] = leader

    try:
        stack.stop_process("worker", timeout=5)

        deadline = time.monotonic() + 5
        while _running(left):
            assert time.monotonic() < deadline, f"{left} still runs"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(left, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed and not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

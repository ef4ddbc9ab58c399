"""The worker's liveness heartbeat: when it beats, when it goes stale, and the health check's verdict."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from celery.worker import state as worker_state

from storage.errors import ConfigError
from storage.settings import Settings
from tasks import celery_app, liveness
from tasks.celery_app import LivenessStep


class FakeTimer:
    def __init__(self) -> None:
        self.calls = []

    def call_repeatedly(self, interval, fun, priority=0):
        self.calls.append((interval, fun))
        return SimpleNamespace(cancel=lambda: None)


@pytest.fixture
def beating(tmp_path, monkeypatch):
    """A started LivenessStep on a fake consumer with 2 slots; returns (check, heartbeat path)."""
    path = tmp_path / "worker.alive"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(path))
    monkeypatch.setenv("WORKER_LIVENESS_SECONDS", "60")
    consumer = SimpleNamespace(timer=FakeTimer(), qos=SimpleNamespace(value=2))
    LivenessStep(consumer).start(consumer)
    ((interval, check),) = consumer.timer.calls
    assert interval == 10
    return check, path


def age_back(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_consumer_that_polls_keeps_beating(beating):
    check, path = beating
    age_back(path, 100)
    liveness.note_receive()
    check()
    assert liveness.age(str(path)) < 5


def test_a_consumer_that_stopped_polling_stops_beating(beating, monkeypatch):
    check, path = beating
    age_back(path, 100)
    monkeypatch.setattr(liveness, "_last_receive", time.monotonic() - 31)  # over half the 60 s limit
    check()
    assert liveness.age(str(path)) >= 99


def test_a_consumer_with_every_slot_busy_keeps_beating_without_polling(beating, monkeypatch):
    check, path = beating
    age_back(path, 100)
    monkeypatch.setattr(liveness, "_last_receive", time.monotonic() - 1000)
    monkeypatch.setattr(worker_state, "reserved_requests", {object(), object()})
    check()
    assert liveness.age(str(path)) < 5


def test_the_health_check_fails_on_a_missing_or_stale_heartbeat(tmp_path):
    path = tmp_path / "worker.alive"
    env = {**os.environ, "ENV": "local", "WORKER_HEARTBEAT_FILE": str(path), "WORKER_LIVENESS_SECONDS": "30"}

    def check() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tasks.liveness"], env=env, capture_output=True, text=True, timeout=30
        )

    missing = check()
    assert missing.returncode == 1 and "no heartbeat" in missing.stderr
    liveness.beat(str(path))
    fresh = check()
    assert fresh.returncode == 0 and "healthy" in fresh.stdout
    age_back(path, 45)
    started = time.monotonic()
    stale = check()
    # The age is read when the check runs: 45 s, plus however long its interpreter took to start
    # (over a second on a busy machine under coverage).
    took = time.monotonic() - started
    reported = re.search(r"last heartbeat (\d+) s ago \(limit 30 s\)", stale.stderr)
    assert stale.returncode == 1 and reported, stale.stderr
    assert 45 <= int(reported[1]) <= 45 + math.ceil(took), stale.stderr


def test_the_liveness_limit_must_outlast_two_long_polls():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SQS_WAIT_TIME_SECONDS": "20", "WORKER_LIVENESS_SECONDS": "40"})
    assert "WORKER_LIVENESS_SECONDS" in caught.value.message
    assert Settings.from_env({"SQS_WAIT_TIME_SECONDS": "20", "WORKER_LIVENESS_SECONDS": "43"})


# --- task events only while someone is watching (TaskEventsStep) ------------------------


@pytest.fixture
def watched(monkeypatch):
    """A started TaskEventsStep on a fake consumer whose dispatcher sends worker events only."""
    from celery.worker import control

    from tasks.celery_app import TaskEventsStep

    monkeypatch.setenv("TASK_EVENTS_SECONDS", "20")
    monkeypatch.setattr(control.Panel, "data", dict(control.Panel.data))  # keep the registry as it was
    consumer = SimpleNamespace(timer=FakeTimer(), event_dispatcher=SimpleNamespace(groups={"worker"}))
    TaskEventsStep(consumer).start(consumer)
    ((interval, expire),) = consumer.timer.calls
    state = SimpleNamespace(consumer=consumer)
    return consumer.event_dispatcher, expire, lambda: control.Panel.data["enable_events"](state)


def test_enable_events_turns_task_events_on_and_they_go_off_when_nobody_asks_again(watched, monkeypatch):
    dispatcher, expire, enable_events = watched
    enable_events()
    assert dispatcher.groups == {"worker", "task"}
    expire()
    assert "task" in dispatcher.groups  # asked just now
    later = time.monotonic() + 21
    monkeypatch.setattr(celery_app, "time", SimpleNamespace(monotonic=lambda: later))
    expire()
    assert dispatcher.groups == {"worker"}
    enable_events()  # Flower is back
    assert "task" in dispatcher.groups


def test_a_worker_started_with_every_event_keeps_them(watched, monkeypatch):
    dispatcher, expire, _ = watched
    dispatcher.groups = None  # celery worker -E: every group, always
    monkeypatch.setattr(celery_app, "time", SimpleNamespace(monotonic=lambda: 10**9))
    expire()
    assert dispatcher.groups is None

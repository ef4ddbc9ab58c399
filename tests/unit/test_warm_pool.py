"""A pool process builds its stores and its sender as it starts, not in its first step
(tasks/celery_app.py: WarmPoolStep), and the worker's processes freeze what they hold once started
(tasks/heap.py).

Built on first use, a fresh worker's first job waited for boto3 to load its models in each pool
process (about 0.8 s more than the next job on the local stack). The real pool is run by the
integration tests' workers (tests/integration/test_job_flow.py); here, the step and its handler.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from tasks import celery_app, heap, steps


def test_the_apps_worker_connects_the_warm_up_for_the_processes_of_its_pool(monkeypatch, done):
    assert celery_app.WarmPoolStep in celery_app.create_app().steps["worker"]
    connected: list = []
    monkeypatch.setattr(
        celery_app.signals.worker_process_init, "connect", lambda receiver, **kw: connected.append((receiver, kw))
    )
    with capture_logs() as logs:
        celery_app.WarmPoolStep(SimpleNamespace())
    # In the pool's processes only: the worker's main process builds nothing for its pool, and
    # freezes what it holds before it forks them (tasks/heap.py).
    assert done == ["freeze"]
    assert connected == [(celery_app._warm_process, {"weak": False})]
    [frozen] = [entry for entry in logs if entry["event"] == "worker.heap_frozen"]
    assert (frozen["stage"], frozen["frozenObjects"]) == ("before its pool forks", 1234)


def test_a_pool_process_builds_its_stores_and_sender_then_freezes_them_and_says_so(monkeypatch, done):
    monkeypatch.setattr(steps, "services", lambda: done.append("services"))
    monkeypatch.setattr(celery_app, "warm_sender", lambda app: done.append(("sender", app)) or 42.4)
    with capture_logs() as logs:
        celery_app._warm_process(sender=None, signal=object())  # as worker_process_init calls it
    assert done == ["services", ("sender", celery_app.app), "freeze"]  # what it built is among what it freezes
    [warmed] = [entry for entry in logs if entry["event"] == "worker.process_warmed"]
    assert warmed["pid"] > 0 and warmed["ms"] >= 0 and warmed["senderMs"] == 42
    assert (warmed["frozenObjects"], warmed["freezeMs"]) == (1234, 5)


def test_the_main_process_freezes_what_it_holds_once_its_consumer_is_set_up(done):
    step = celery_app.FreezeHeapStep
    assert step in celery_app.create_app().steps["consumer"]
    # After the task consumer's step, which makes kombu's SQS channel and client.
    assert step.requires == ("celery.worker.consumer.tasks:Tasks",)
    consumer = SimpleNamespace()
    freezing = step(consumer)
    with capture_logs() as logs:
        freezing.start(consumer)
    assert done == ["freeze"]
    [frozen] = [entry for entry in logs if entry["event"] == "worker.heap_frozen"]
    assert (frozen["stage"], frozen["frozenObjects"]) == ("once its consumer is set up", 1234) and frozen["pid"] > 0
    # Restarted after a lost connection: what the first start froze (the old connection) is
    # returned to the collector first, so it is freed, not kept for ever.
    with capture_logs() as logs:
        freezing.start(consumer)
    assert done == ["freeze", "thaw, freeze"]
    assert [entry["thawed"] for entry in logs if entry["event"] == "worker.heap_frozen"] == [True]


def test_stores_that_cannot_be_built_yet_are_a_warning_and_left_to_the_first_step(monkeypatch, done):
    def broken():
        raise ValueError("AWS_REGION is not a region")

    monkeypatch.setattr(steps, "services", broken)
    with capture_logs() as logs:
        celery_app._warm_process()  # the process starts all the same
    assert done == []  # nothing built to freeze: the first step builds it
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("worker.process_warm_failed", "warning")]
    assert "AWS_REGION is not a region" in logs[0]["error"]


def test_a_sender_that_cannot_be_built_yet_is_a_warning_and_left_to_the_first_hand_on(monkeypatch, done):
    def broken(app) -> float:
        raise RuntimeError("no broker transport")

    monkeypatch.setattr(steps, "services", lambda: done.append("services"))
    monkeypatch.setattr(celery_app, "warm_sender", broken)
    with capture_logs() as logs:
        celery_app._warm_process()
    assert done == ["services"]
    [(event, level, error)] = [(e["event"], e["log_level"], e["error"]) for e in logs]
    assert (event, level, error) == ("worker.process_warm_failed", "warning", "RuntimeError: no broker transport")


@pytest.fixture
def done(monkeypatch) -> list:
    """What the step did, in order; its freezes are recorded, not made (this process is pytest's)."""
    calls: list = []

    def freeze(*, thaw: bool = False):
        calls.append("thaw, freeze" if thaw else "freeze")
        return heap.Frozen(objects=1234, ms=5)

    monkeypatch.setattr(celery_app, "freeze_startup_heap", freeze)
    return calls


@pytest.fixture(autouse=True)
def _no_handler_left(monkeypatch):
    """No test here may connect the real signal: it would outlive the test in this process."""
    monkeypatch.setattr(celery_app.signals.worker_process_init, "connect", lambda receiver, **kw: None)

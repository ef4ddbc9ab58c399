"""A pool process builds its stores as it is forked, not in its first step (tasks/celery_app.py: WarmPoolStep),
and the worker's processes freeze what they hold once started (tasks/heap.py).

Built on first use, a fresh worker's first job waited for boto3 to load its models in each pool
process (about 0.8 s more than the next job on the local stack). The real fork is run by the
integration tests' workers (tests/integration/test_job_flow.py); here, the step and the hook.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from tasks import celery_app, heap, steps


def test_the_apps_worker_registers_the_warm_up_for_the_children_it_forks(monkeypatch, done):
    assert celery_app.WarmPoolStep in celery_app.create_app().steps["worker"]
    monkeypatch.setattr(celery_app.os, "register_at_fork", lambda **kwargs: done.append(("hook", kwargs)))
    with capture_logs() as logs:
        celery_app.WarmPoolStep(SimpleNamespace())
    # In the child only: the worker's main process builds nothing for its pool, and freezes
    # what it holds before it forks them (tasks/heap.py).
    assert done == ["freeze", ("hook", {"after_in_child": celery_app._warm_process})]
    [frozen] = [entry for entry in logs if entry["event"] == "worker.heap_frozen"]
    assert (frozen["stage"], frozen["frozenObjects"]) == ("before its pool forks", 1234)


def test_a_forked_process_builds_its_stores_then_freezes_them_and_says_so(monkeypatch, done):
    monkeypatch.setattr(steps, "services", lambda: done.append("services"))
    with capture_logs() as logs:
        celery_app._warm_process()
    assert done == ["services", "freeze"]  # the clients it built are among what it freezes
    [warmed] = [entry for entry in logs if entry["event"] == "worker.process_warmed"]
    assert warmed["pid"] > 0 and warmed["ms"] >= 0
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
def _no_fork_hook_left(monkeypatch):
    """No test here may register a real fork hook: it would outlive the test in this process."""
    monkeypatch.setattr(celery_app.os, "register_at_fork", lambda **kwargs: None)

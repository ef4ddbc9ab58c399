"""A long-lived process freezes what it holds once started (tasks/heap.py), after collecting its garbage.

The processes that call it are the worker's (tests/unit/test_warm_pool.py) and the API's
(test_the_apis_workers_freeze_their_heap_once_the_app_is_built, below); tests/integration/test_job_flow.py
reads their logs. This process is pytest's, which froze its heap after collecting (tests/conftest.py);
a test here freezes it again (the few objects it made with it), or thaws and freezes it again.
"""

from __future__ import annotations

import gc
import weakref

import pytest
from structlog.testing import capture_logs

from api import gunicorn_conf
from tasks import celery_app, heap


class Node:
    """An object the collector tracks, that can hold a reference to another (a cycle)."""

    other: Node | None = None


def test_live_objects_leave_the_collectors_generations_and_garbage_is_collected_first():
    gc.disable()  # no automatic collection before the freeze's own (the fixture enables it again)
    kept = Node()
    cycle = Node()
    cycle.other = Node()
    cycle.other.other = cycle  # garbage only a collection finds: reference counting never frees it
    gone = weakref.ref(cycle)
    del cycle
    assert gone() is not None

    frozen = heap.freeze_startup_heap()

    assert gone() is None  # collected, not frozen for ever
    # It reports what it froze. Reference counting still frees frozen objects, and another thread of
    # this process (pytest-xdist's channel) may free a few between the freeze and this read.
    assert 0 < gc.get_freeze_count() <= frozen.objects <= gc.get_freeze_count() + 100 and frozen.ms >= 0
    # No collection walks it any more: it is in none of the collector's generations.
    assert not any(obj is kept for obj in gc.get_objects())
    made_after = Node()
    assert any(obj is made_after for obj in gc.get_objects())


def test_a_second_freeze_adds_what_the_process_made_since():
    first = heap.freeze_startup_heap()
    made_after = [Node() for _ in range(1000)]
    second = heap.freeze_startup_heap()
    # At least those, give or take the few another thread's reference counting frees (see above).
    assert second.objects >= first.objects + len(made_after) - 100


def test_a_thaw_lets_a_frozen_object_that_became_garbage_be_collected():
    gc.disable()
    cycle = Node()
    cycle.other = Node()
    cycle.other.other = cycle
    gone = weakref.ref(cycle)
    heap.freeze_startup_heap()  # alive, so frozen: a consumer's connection
    del cycle  # the connection replaced
    heap.freeze_startup_heap()
    assert gone() is not None  # frozen garbage: no collection looks at it
    heap.freeze_startup_heap(thaw=True)
    assert gone() is None


def test_the_apis_workers_build_their_sender_then_freeze_their_heap_once_the_app_is_built(monkeypatch):
    calls: list = []
    monkeypatch.setattr(celery_app, "warm_sender", lambda app: calls.append(("warm", app)) or 12.3)
    monkeypatch.setattr(gunicorn_conf, "freeze_startup_heap", lambda: calls.append("freeze") or heap.Frozen(1234, 5))
    with capture_logs() as logs:
        gunicorn_conf.post_worker_init(worker=None)
    assert calls == [("warm", celery_app.app), "freeze"]  # the producer and its client are frozen with the rest
    [warmed] = [entry for entry in logs if entry["event"] == "api.sender_warmed"]
    assert warmed["ms"] == 12.3 and warmed["pid"] > 0
    [frozen] = [entry for entry in logs if entry["event"] == "api.heap_frozen"]
    assert (frozen["frozenObjects"], frozen["freezeMs"]) == (1234, 5) and frozen["pid"] > 0


def test_an_api_worker_whose_sender_cannot_be_built_yet_still_starts(monkeypatch):
    def broken(app) -> float:
        raise RuntimeError("no broker")

    monkeypatch.setattr(celery_app, "warm_sender", broken)
    monkeypatch.setattr(gunicorn_conf, "freeze_startup_heap", lambda: heap.Frozen(1, 1))
    with capture_logs() as logs:
        gunicorn_conf.post_worker_init(worker=None)  # the first submission builds it, and answers for it
    [failed] = [entry for entry in logs if entry["event"] == "api.sender_warm_failed"]
    assert failed["error"] == "RuntimeError: no broker" and failed["log_level"] == "warning"
    assert [entry for entry in logs if entry["event"] == "api.heap_frozen"]


@pytest.fixture(autouse=True)
def _collector_enabled():
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()

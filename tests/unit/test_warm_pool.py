"""A pool process builds its stores as it is forked, not in its first step (tasks/celery_app.py: WarmPoolStep).

Built on first use, a fresh worker's first job waited for boto3 to load its models in each pool
process (about 0.8 s more than the next job on the local stack). The real fork is run by the
integration tests' workers (tests/integration/test_job_flow.py); here, the step and the hook.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from tasks import celery_app, steps


def test_the_apps_worker_registers_the_warm_up_for_the_children_it_forks(monkeypatch):
    assert celery_app.WarmPoolStep in celery_app.create_app().steps["worker"]
    hooks: list = []
    monkeypatch.setattr(celery_app.os, "register_at_fork", lambda **kwargs: hooks.append(kwargs))
    celery_app.WarmPoolStep(SimpleNamespace())
    # In the child only: the worker's main process builds nothing for its pool.
    assert hooks == [{"after_in_child": celery_app._warm_process}]


def test_a_forked_process_builds_its_stores_and_says_so(monkeypatch):
    built: list = []
    monkeypatch.setattr(steps, "services", lambda: built.append("services"))
    with capture_logs() as logs:
        celery_app._warm_process()
    assert built == ["services"]
    [warmed] = [entry for entry in logs if entry["event"] == "worker.process_warmed"]
    assert warmed["pid"] > 0 and warmed["ms"] >= 0


def test_stores_that_cannot_be_built_yet_are_a_warning_and_left_to_the_first_step(monkeypatch):
    def broken():
        raise ValueError("AWS_REGION is not a region")

    monkeypatch.setattr(steps, "services", broken)
    with capture_logs() as logs:
        celery_app._warm_process()  # the process starts all the same
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("worker.process_warm_failed", "warning")]
    assert "AWS_REGION is not a region" in logs[0]["error"]


@pytest.fixture(autouse=True)
def _no_fork_hook_left(monkeypatch):
    """No test here may register a real fork hook: it would outlive the test in this process."""
    monkeypatch.setattr(celery_app.os, "register_at_fork", lambda **kwargs: None)

import gc
import sys
from pathlib import Path

import pytest

# scripts/local_stack.py is the one way the stack's processes are started, for
# `make run` and for the tests alike.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from tasks.heap import freeze_startup_heap
from tests import report


@pytest.hookimpl(hookwrapper=True)
def pytest_collection(session):
    """Collect with the cyclic collector off, then freeze what collecting left alive: every test
    module, its imports, the collected items (tasks/heap.py).

    Collecting imports hypothesis, schemathesis, boto3's models and the whole project, and makes
    1,500 items: the collector's full passes walked all of it again and again, during collection
    and after, in every test process.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        freeze_startup_heap()


def pytest_sessionfinish(session):
    """In a pytest-xdist worker: hand this worker's report lines to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["report"] = list(report.LINES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """In the pytest-xdist controller: keep the lines of a worker that finished."""
    report.LINES.extend(getattr(node, "workeroutput", {}).get("report", []))


def pytest_terminal_summary(terminalreporter):
    """Print what the tests reported (tests/report.py): the deploy check's resources, timings, skips."""
    if report.LINES:
        terminalreporter.section("report")
        for line in report.LINES:
            terminalreporter.write_line(line)

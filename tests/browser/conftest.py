"""A real browser against the real stack: Debian's chromium driven by Playwright for Python.

Playwright 1.64.1 is pinned (pyproject.toml) because the Chromium it is built and tested with,
156.0.8078.4, is the major version Debian ships (`chromium` 156 here); nothing downloads a
browser: Playwright launches /usr/bin/chromium. Where chromium or Playwright is missing, every
test here SKIPS and says why.

The stack is the integration tier's (tests/integration/conftest.py): moto's server, a Celery
worker and the API under gunicorn, on free ports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures, shared with the integration tier
    LiveStack,
    _aws_credentials,
    emulator,
    logs_dir,
    make_stack,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TOKEN = "console-operator-token"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root here and in CI
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Chromium logs a refused fetch or page load (the tests provoke 400, 401, 404, 409 and 422) as a console error.
EXPECTED_REFUSAL = re.compile(r"Failed to load resource: the server responded with a status of (400|401|404|409|422)")
# Lets a test play "the tab is hidden": document.hidden reads window.__hidden.
HIDDEN_SWITCH = """
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return !!window.__hidden; } });
Object.defineProperty(Document.prototype, "visibilityState", { configurable: true,
  get() { return window.__hidden ? "hidden" : "visible"; } });
"""


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium): the console's browser tests need it")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (the dev extra)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(make_stack) -> LiveStack:  # noqa: F811 - the imported fixture, requested by name
    """An API with fault drills and a known operator token; its worker is started by `worker`."""
    return make_stack({"FAULT_DRILLS": "1", "INTERNAL_TOKEN": TOKEN}, worker=False)


@pytest.fixture(scope="module")
def worker(stack) -> LiveStack:
    stack.start_worker()
    return stack


@pytest.fixture
def page(browser, stack) -> Iterator:
    """A fresh tab (its own sessionStorage); fails the test on any script error or CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.url)
    context.add_init_script(HIDDEN_SWITCH)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not EXPECTED_REFUSAL.match(msg.text)
            else None
        ),
    )
    yield tab
    context.close()
    assert problems == [], problems


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it stands."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make node_modules/.npm-installed` (npm ci)")
    # Evaluated over the DevTools protocol, not added as a <script>: the console's CSP refuses inline
    # script, as Playwright's add_script_tag(path=...) would insert it (that refusal is tested too).
    page.evaluate(AXE.read_text())
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], json.dumps(bad, indent=2)

"""Property-based fuzzing of the live API from its own /openapi.json (schemathesis).

schemathesis reads the document the API serves and drives gunicorn over loopback with schema-valid and
schema-violating requests (its examples, coverage, fuzzing and stateful phases; positive and negative
modes). The run is deterministic (fixed seed, derandomized Hypothesis, no example database), so CI
sends the same generated requests every time. The properties: no response is a 5xx, every response is
one the document declares (status, content type, headers, body schema), malformed input is refused
with a 4xx, and the internal endpoint refuses every request without the right X-INTERNAL-TOKEN.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

pytestmark = pytest.mark.integration

TOKEN = "fuzz-internal-token"
TOKEN_HEADER = "X-INTERNAL-TOKEN"
SEED = 20240611
MAX_EXAMPLES = 100  # per operation and phase; with the coverage and stateful phases, ~1,500 requests
MIN_REQUESTS = 1000
MAX_SECONDS = 150  # a backstop: the run takes about 25 s on 2 cores

# Every response check schemathesis has (max_response_time is off unless given a limit) but one:
# positive_data_acceptance expects every schema-valid request to be accepted, which two rules JSON
# Schema cannot state make untrue: a cursor is opaque (a well-formed one we did not issue is 400
# INVALID_CURSOR) and a step's stepId must be "{jobId}:{name}" (else 422).
CHECKS = {"enabled": True, "positive_data_acceptance": {"enabled": False}}


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "max-time": MAX_SECONDS,
            "workers": 1,
            "cache": {"enabled": False},  # no .schemathesis/ directory in the work tree
            "generation": {
                "mode": "all",  # positive and negative (schema-violating) data
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "checks": CHECKS,
            # Sent by default; the negative mode and the ignored_auth check also send requests without it
            # or with a wrong one, which must get 401.
            "auth": {"openapi": {"internalToken": {"api_key": TOKEN}}},
        }
    )


@dataclass
class FuzzRun:
    """What the engine sent and found."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    internal: list[tuple[str | None, int]] = field(default_factory=list)  # (token sent, status)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (operation, check, title) -> detail
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""


def run_fuzzer(schema) -> FuzzRun:
    run = FuzzRun()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            record_scenario(run, event.recorder)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = str(event.stop_reason)
            for failure in event.failures:
                run.failures.setdefault(("(after run)", failure.__class__.__name__, failure.title), failure.message)
    return run


def record_scenario(run: FuzzRun, recorder) -> None:
    for interaction in recorder.interactions.values():
        if interaction.response is None:
            continue
        run.requests += 1
        run.statuses[interaction.response.status_code] += 1
        if "/internal/" in interaction.request.uri:
            sent = interaction.request.headers.get(TOKEN_HEADER)
            run.internal.append((sent[0] if sent else None, interaction.response.status_code))
    for checks in recorder.checks.values():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            key = (recorder.label, check.name, failure.title)
            sample = check.failure_info.code_sample
            sample = sample if len(sample) <= 500 else f"{sample[:500]}… ({len(sample)} characters)"
            run.failures.setdefault(key, f"{failure.message}\n    {sample}")


def served_requests(live) -> list[dict]:
    """The API's own per-request log lines (one per request it answered)."""
    lines = []
    for line in live.log_lines("api"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "api" and entry.get("event") == "request":
            lines.append(entry)
    return lines


@pytest.fixture(scope="module")
def fuzz_stack(make_stack):
    """An API of its own (no worker: jobs stay queued, which the fuzzer's requests do not depend on)."""
    return make_stack({"INTERNAL_TOKEN": TOKEN, "FAULT_DRILLS": "1"}, worker=False)


def test_fuzzing_the_live_api_finds_no_5xx_and_nothing_undocumented(fuzz_stack):
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.url}/openapi.json", config=fuzz_config())
    served_before = len(served_requests(fuzz_stack))
    started = time.monotonic()
    run = run_fuzzer(schema)
    elapsed = time.monotonic() - started

    report = "\n".join(f"{op} [{check}] {title}: {detail}" for (op, check, title), detail in run.failures.items())
    assert not run.errors, "\n".join(run.errors)
    assert not run.failures, f"{len(run.failures)} distinct failures:\n{report}"
    assert run.stop_reason == "completed", f"stopped early ({run.stop_reason}) after {elapsed:.0f} s"

    assert run.requests >= MIN_REQUESTS, f"only {run.requests} requests in {elapsed:.0f} s: {dict(run.statuses)}"
    assert not [status for status in run.statuses if status >= 500], dict(run.statuses)
    # The server saw them too, and answered none with a 5xx.
    served = served_requests(fuzz_stack)[served_before:]
    assert len(served) >= MIN_REQUESTS
    assert not [entry for entry in served if entry["status"] >= 500]

    # The internal endpoint was fuzzed with and without the token; without it, always 401.
    with_token = [status for token, status in run.internal if token == TOKEN]
    without_token = [status for token, status in run.internal if token != TOKEN]
    assert with_token and without_token
    assert set(without_token) == {401}, Counter(without_token)
    assert 401 not in with_token

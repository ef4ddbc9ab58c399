"""Property-based fuzzing of the live API from its own /openapi.json (schemathesis).

schemathesis reads the document the API serves and drives gunicorn over loopback with schema-valid and
schema-violating requests (its examples, coverage, fuzzing and stateful phases; positive and negative
modes), at least MIN_REQUESTS of them. The run is deterministic (fixed seed, derandomized Hypothesis,
no example database), so CI sends the same generated requests every time, in about 20 s on 2 cores.

The properties, as schemathesis checks: no 5xx (not_a_server_error); every answer is one the document
declares (status_code_conformance, content_type_conformance, response_schema_conformance,
response_headers_conformance); malformed input is refused with a 4xx (negative_data_rejection,
missing_required_header, unsupported_method); the operations behind X-INTERNAL-TOKEN refuse requests
without it or with a wrong one (ignored_auth, and the 401 assertions below).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

if TYPE_CHECKING:
    from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration

TOKEN = "fuzz-internal-token"
TOKEN_HEADER = "X-INTERNAL-TOKEN"
SEED = 20240611
MAX_EXAMPLES = 100  # per operation and phase; with the coverage and stateful phases, ~1,500 requests
MIN_REQUESTS = 1000

# Every response check schemathesis has (max_response_time is off unless given a limit) but one:
# positive_data_acceptance expects every schema-valid request to be accepted, which two rules JSON
# Schema cannot state make untrue: a cursor is opaque (a well-formed one we did not issue is 400
# INVALID_CURSOR) and a step's stepId must be "{jobId}:{name}" (else 422).
# negative_data_rejection: schema-violating input must be refused with one of these, never a 5xx (414 is
# gunicorn's answer to a request line over 4094 bytes, which negative query strings can reach).
CHECKS = {
    "enabled": True,
    "positive_data_acceptance": {"enabled": False},
    "negative_data_rejection": {
        "expected-statuses": ["400", "401", "404", "405", "409", "413", "414", "415", "422"],
    },
}


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
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
    secured: list[tuple[str, bool, int]] = field(default_factory=list)  # (operation, right token sent, status)
    job_states: Counter = field(default_factory=Counter)  # states in 200 answers of GET /status/<jobId>
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (operation, check, title) -> detail
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""


def secured_operations(schema) -> set[str]:
    """Labels ("POST /internal/jobs/{job_id}/step") of the operations the document puts behind the token."""
    return {
        f"{method.upper()} {path}"
        for path, operations in schema.raw_schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }


def run_fuzzer(schema) -> FuzzRun:
    run = FuzzRun()
    secured = secured_operations(schema)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            record_scenario(run, event.recorder, secured)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = str(event.stop_reason)
            for failure in event.failures:
                run.failures.setdefault(("(after run)", failure.__class__.__name__, failure.title), failure.message)
    return run


def record_scenario(run: FuzzRun, recorder, secured: set[str]) -> None:
    for case_id, interaction in recorder.interactions.items():
        if interaction.response is None:
            continue
        status = interaction.response.status_code
        run.requests += 1
        run.statuses[status] += 1
        operation = recorder.cases[case_id].value.operation.label
        if operation in secured:
            run.secured.append((operation, interaction.request.headers.get(TOKEN_HEADER) == [TOKEN], status))
        if operation == "GET /status/{job_id}" and interaction.request.method == "GET" and status == 200:
            run.job_states[json.loads(interaction.response.content)["state"]] += 1
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


@dataclass
class FuzzStack:
    live: LiveStack
    done_job: str
    failed_job: str


@pytest.fixture(scope="module")
def fuzz_stack(make_stack) -> FuzzStack:
    """An API of its own, with one done and one failed job; no worker while fuzzing.

    The fuzzer learns job ids from the API's answers, so finished jobs' status (result, error) and
    artifacts are checked against the document too. The jobs it submits itself stay queued: a worker
    would spend the two cores on them and slow the run without adding a response shape.
    """
    live = make_stack({"INTERNAL_TOKEN": TOKEN, "FAULT_DRILLS": "1"}, worker=False)
    worker = live.start_worker(concurrency=1)
    done = live.submit()["jobId"]
    failed = live.submit(headers={"X-Fault-Drill": "fail:populate"})["jobId"]
    assert live.wait_terminal(done)["state"] == "done"
    assert live.wait_terminal(failed)["state"] == "failed"
    live.stack.stop_process(worker)
    return FuzzStack(live, done, failed)


def test_fuzzing_the_live_api_finds_no_5xx_and_nothing_undocumented(fuzz_stack):
    live = fuzz_stack.live
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=fuzz_config())
    served_before = len(served_requests(live))
    started = time.monotonic()
    run = run_fuzzer(schema)
    elapsed = time.monotonic() - started

    print(f"{run.requests} requests in {elapsed:.1f} s: {dict(run.statuses)}; job states {dict(run.job_states)}")
    report = "\n".join(f"{op} [{check}] {title}: {detail}" for (op, check, title), detail in run.failures.items())
    assert not run.errors, "\n".join(run.errors)
    assert not run.failures, f"{len(run.failures)} distinct failures:\n{report}"
    assert run.stop_reason == "completed", f"stopped early ({run.stop_reason}) after {elapsed:.0f} s"

    assert run.requests >= MIN_REQUESTS, f"only {run.requests} requests in {elapsed:.0f} s: {dict(run.statuses)}"
    assert not [status for status in run.statuses if status >= 500], dict(run.statuses)
    # The server saw them too, and answered none with a 5xx.
    served = served_requests(live)[served_before:]
    assert len(served) >= MIN_REQUESTS
    assert not [entry for entry in served if entry["status"] >= 500]

    # Each operation behind X-INTERNAL-TOKEN was fuzzed with and without it; without it, always 401.
    secured = secured_operations(schema)
    assert secured
    for operation in secured:
        with_token = [status for label, right, status in run.secured if label == operation and right]
        without_token = [status for label, right, status in run.secured if label == operation and not right]
        assert with_token and without_token, operation
        assert set(without_token) == {401}, (operation, Counter(without_token))
        assert 401 not in with_token, operation


def test_finished_jobs_answer_as_documented(fuzz_stack):
    """Which job ids the fuzzer reuses is its choice; the done and failed jobs are checked here for certain."""
    live = fuzz_stack.live
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=fuzz_config())
    status = schema["/status/{job_id}"]["GET"]
    artifact = schema["/jobs/{job_id}/artifacts/{name}"]["GET"]
    names = next(p for p in artifact.definition.raw["parameters"] if p["name"] == "name")["schema"]["enum"]

    for job_id, state in ((fuzz_stack.done_job, "done"), (fuzz_stack.failed_job, "failed")):
        response = requests.get(f"{live.url}/status/{job_id}", timeout=10)
        assert response.status_code == 200 and response.json()["state"] == state
        status.validate_response(response)
        for name in names:
            response = requests.get(f"{live.url}/jobs/{job_id}/artifacts/{name}", allow_redirects=False, timeout=10)
            assert response.status_code == (302 if state == "done" else 409), response.text
            artifact.validate_response(response)

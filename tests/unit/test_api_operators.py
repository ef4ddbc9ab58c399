"""The internal step callback, idempotent submission and readiness, with fakes of the storage ports."""

from __future__ import annotations

import dataclasses

import pytest

import pipeline
from api import create_app
from storage.bootstrap import Services
from storage.errors import AccessDenied, CredentialsMissing, DependencyThrottled, DependencyUnavailable
from storage.model import JobError

TOKEN = "s3cret-token"


@pytest.fixture
def services(settings, services) -> Services:
    return dataclasses.replace(services, settings=dataclasses.replace(settings, internal_token=TOKEN))


def submit(client, body=None, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/generate-scene", json=body or {"prompt": "a hall", "seed": 7}, headers=headers)


def step_body(job_id: str, name: str = "parse_prompt", **overrides) -> dict:
    return {
        "stepId": f"{job_id}:{name}",
        "name": name,
        "startedAt": "2026-11-22T03:00:00.000Z",
        "endedAt": "2026-11-22T03:00:01.000Z",
        "durationMs": 1000,
        "summary": "did it",
        "status": "ok",
        **overrides,
    }


def post_step(client, job_id, body, token=TOKEN):
    headers = {"X-INTERNAL-TOKEN": token} if token is not None else {}
    return client.post(f"/internal/jobs/{job_id}/step", json=body, headers=headers)


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_step_callback_refuses_a_missing_or_wrong_token(client, token, services):
    job_id = submit(client).json["jobId"]
    response = post_step(client, job_id, step_body(job_id), token=token)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "UNAUTHORIZED"
    assert services.jobs.get(job_id).steps == ()


def test_step_callback_fails_closed_with_no_token_configured(settings, services, sent):
    unconfigured = dataclasses.replace(services, settings=dataclasses.replace(settings, internal_token=None))
    client = create_app(unconfigured, enqueue=lambda *a, **k: None).test_client()
    job_id = submit(client).json["jobId"]
    assert post_step(client, job_id, step_body(job_id), token="").status_code == 401
    assert post_step(client, job_id, step_body(job_id), token="None").status_code == 401


def test_step_callback_tells_recorded_duplicate_and_terminal_apart(client, services):
    job_id = submit(client).json["jobId"]
    first = post_step(client, job_id, step_body(job_id))
    assert first.status_code == 201 and first.json["outcome"] == "recorded"
    again = post_step(client, job_id, step_body(job_id, summary="another delivery"))
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"
    job = services.jobs.get(job_id)
    assert [s.summary for s in job.steps] == ["did it"]
    assert job.progress == pytest.approx(1 / len(pipeline.STEPS))

    services.jobs.mark_done(job_id, result_keys={}, summary="s")
    late = post_step(client, job_id, step_body(job_id, "populate"))
    assert late.status_code == 409 and late.json["error"]["code"] == "JOB_TERMINAL"
    assert len(services.jobs.get(job_id).steps) == 1


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"stepId": "someone-else:parse_prompt"}, "stepId"),
        ({"name": "mine_bitcoin"}, "name"),
        ({"status": "maybe"}, "status"),
        ({"durationMs": -1}, "durationMs"),
        ({"startedAt": "yesterday"}, "startedAt"),
        ({"extra": 1}, "extra"),
    ],
)
def test_step_callback_validates_the_event(client, overrides, field):
    job_id = submit(client).json["jobId"]
    response = post_step(client, job_id, step_body(job_id, **overrides))
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]


def test_an_error_event_fails_the_job_with_its_error_and_keeps_the_steps(client, services):
    job_id = submit(client).json["jobId"]
    assert post_step(client, job_id, step_body(job_id)).status_code == 201
    error = {"message": "the renderer ran out of memory", "code": "RENDER_OOM", "details": {"rssMb": 2048}}
    failed = post_step(client, job_id, step_body(job_id, "layout_rooms", status="error", summary="oom", error=error))
    assert failed.status_code == 201 and failed.json["outcome"] == "recorded"
    status = client.get(f"/status/{job_id}").json
    assert status["state"] == "failed"
    assert status["error"] == {**error, "details": {"step": "layout_rooms", "rssMb": 2048}}
    assert [(s["name"], s["status"]) for s in status["steps"]] == [("parse_prompt", "ok"), ("layout_rooms", "error")]


def test_a_duplicate_or_late_error_event_changes_nothing(client, services):
    job_id = submit(client).json["jobId"]
    first = {"message": "first", "code": "FIRST"}
    post_step(client, job_id, step_body(job_id, "populate", status="error", error=first))
    before = services.jobs.get(job_id)
    again = post_step(
        client, job_id, step_body(job_id, "populate", status="error", error={"message": "x", "code": "X"})
    )
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"
    late = post_step(
        client, job_id, step_body(job_id, "render_minimap", status="error", error={"message": "y", "code": "Y"})
    )
    assert late.status_code == 409
    assert services.jobs.get(job_id) == before
    assert before.error.code == "FIRST"


def test_an_error_event_for_a_step_recorded_ok_is_a_duplicate(client, services):
    """Whichever record of a stepId comes first wins: an ok record stands against a later error."""
    job_id = submit(client).json["jobId"]
    post_step(client, job_id, step_body(job_id))
    response = post_step(client, job_id, step_body(job_id, status="error", error={"message": "m", "code": "C"}))
    assert response.status_code == 200 and response.json["outcome"] == "duplicate"
    assert services.jobs.get(job_id).state.value == "running" and services.jobs.get(job_id).error is None


def test_a_bare_error_event_fails_the_job_with_step_failed_and_its_summary(client, services):
    job_id = submit(client).json["jobId"]
    post_step(client, job_id, step_body(job_id, status="error", summary="the prompt parser crashed"))
    job = services.jobs.get(job_id)
    assert job.state.value == "failed"
    assert job.error.to_dict() == {
        "message": "the prompt parser crashed",
        "code": "STEP_FAILED",
        "details": {"step": "parse_prompt"},
    }


@pytest.mark.parametrize(
    "overrides, where",
    [
        ({"status": "ok", "error": {"message": "m", "code": "C"}}, "error"),
        ({"status": "error", "error": {"message": "m", "code": "lower"}}, "error"),
        ({"status": "error", "error": {"message": "", "code": "C"}}, "error"),
        ({"status": "error", "error": {"message": "m"}}, "error"),
        ({"status": "error", "error": {"message": "m", "code": "C", "details": {"k": "v" * 5000}}}, "error"),
        ({"status": "error", "error": "boom"}, "error"),
    ],
)
def test_a_malformed_error_event_is_refused_and_changes_nothing(client, services, overrides, where):
    job_id = submit(client).json["jobId"]
    response = post_step(client, job_id, step_body(job_id, **overrides))
    assert response.status_code == 422
    assert where in response.json["error"]["details"]["fields"]
    assert services.jobs.get(job_id).steps == () and services.jobs.get(job_id).state.value == "queued"


def test_status_lists_steps_in_pipeline_order_within_each_attempt(client, services):
    job_id = submit(client).json["jobId"]
    *first, last = pipeline.STEPS
    for name in reversed(first):
        post_step(client, job_id, step_body(job_id, name))
    post_step(client, job_id, step_body(job_id, last, status="error"))
    services.jobs.mark_retry(job_id, attempt={"attempt": 2, "at": "now", "reason": "r", "by": "t", "fromStep": last})
    post_step(client, job_id, step_body(job_id, last, stepId=f"{job_id}:{last}#2"))
    steps = client.get(f"/status/{job_id}").json["steps"]
    assert [s["stepId"] for s in steps] == [
        *(f"{job_id}:{name}" for name in pipeline.STEPS),
        f"{job_id}:{last}#2",
    ]


def test_step_callback_for_an_unknown_job_is_404(client):
    job_id = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    assert post_step(client, job_id, step_body(job_id)).status_code == 404


def test_same_idempotency_key_and_body_returns_the_original_job(client, sent, services):
    first = submit(client, {"prompt": "a hall"}, key="order-1")
    second = submit(client, {"prompt": "a hall"}, key="order-1")
    assert first.status_code == second.status_code == 202
    assert first.json["jobId"] == second.json["jobId"]
    assert second.json["seed"] == first.json["seed"]  # the seed chosen the first time
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(sent) == 1 and len(services.jobs.jobs) == 1


def test_same_idempotency_key_with_another_body_is_422(client, sent):
    submit(client, {"prompt": "a hall"}, key="order-2")
    response = submit(client, {"prompt": "a cellar"}, key="order-2")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(sent) == 1


def test_different_keys_make_different_jobs(client, sent):
    assert submit(client, key="a").json["jobId"] != submit(client, key="b").json["jobId"]
    assert len(sent) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünï", "k1,k2"])
def test_malformed_idempotency_keys_are_refused(client, key, sent):
    response = client.post(
        "/generate-scene", json={"prompt": "a"}, headers={"Idempotency-Key": key.encode().decode("latin-1")}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert sent == []


def test_an_idempotency_key_sent_twice_is_refused_not_joined_into_a_new_key(client, sent):
    """gunicorn joins a header sent twice with a comma: "k1,k2" would have made a third job."""
    headers = [("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")]
    response = client.post("/generate-scene", json={"prompt": "a"}, headers=headers)
    assert response.status_code == 400 and response.json["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert sent == []


def test_readyz_names_the_dependency_that_is_down(client, services):
    ok = client.get("/readyz")
    assert ok.status_code == 200 and ok.json["ok"] is True
    services.jobs.down = True
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json["error"]["details"]["checks"]["dynamodb"] == "unavailable"
    assert "dynamodb" in down.json["error"]["message"]
    assert client.get("/healthz").status_code == 200  # liveness does not depend on it


@pytest.mark.parametrize(
    "error, state, code",
    [
        (CredentialsMissing("dynamodb: no AWS credentials found"), "credentials-missing", "AWS_CREDENTIALS_MISSING"),
        (AccessDenied("dynamodb refused the credentials"), "access-denied", "AWS_ACCESS_DENIED"),
        (DependencyThrottled("dynamodb is throttling requests"), "throttled", "DEPENDENCY_THROTTLED"),
        (DependencyUnavailable("dynamodb is unreachable"), "unavailable", "DEPENDENCY_UNAVAILABLE"),
    ],
)
def test_readyz_says_why_a_dependency_is_not_ready(client, services, monkeypatch, error, state, code):
    def failing():
        raise error

    monkeypatch.setattr(services.jobs, "check", failing)
    response = client.get("/readyz")
    assert response.status_code == 503
    details = response.json["error"]["details"]
    assert details["checks"] == {"dynamodb": state, "artifacts": "ok"}
    assert details["problems"] == {"dynamodb": {"code": code, "message": error.message}}
    assert error.message in response.json["error"]["message"]


def test_an_endpoint_answers_503_with_the_failure_s_own_code(client, services, monkeypatch):
    def denied(job_id):
        raise AccessDenied("dynamodb refused the credentials or their permissions for GetItem (AccessDenied)")

    monkeypatch.setattr(services.jobs, "get", denied)
    response = client.get("/status/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12)
    assert response.status_code == 503 and response.json["error"]["code"] == "AWS_ACCESS_DENIED"


def test_cancel_needs_the_token_and_moves_a_live_job_to_cancelled(client, services):
    job_id = submit(client).json["jobId"]
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 401
    response = client.post(f"/jobs/{job_id}/cancel", headers={"X-INTERNAL-TOKEN": TOKEN, "X-Cancel-Reason": "typo"})
    assert response.status_code == 200 and response.json["state"] == "cancelled"
    cancellation = response.json["cancellation"]
    assert (cancellation["actionId"], cancellation["by"], cancellation["reason"]) == (
        f"{job_id}:cancel",
        "api:127.0.0.1",
        "typo",
    )
    again = client.post(f"/jobs/{job_id}/cancel", headers={"X-INTERNAL-TOKEN": TOKEN, "X-Cancel-Reason": "other"})
    assert again.status_code == 200 and again.json["state"] == "cancelled"  # idempotent
    assert again.json["cancellation"] == cancellation  # the first cancel stands
    late = post_step(client, job_id, step_body(job_id))
    assert late.status_code == 409 and services.jobs.get(job_id).steps == ()


def as_wsgi_hands_it_over(header: bytes) -> str:
    """A header's bytes as a WSGI server passes them to the app: decoded as latin-1."""
    return header.decode("latin-1")


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("café ✓ Привет".encode(), "café ✓ Привет"),  # UTF-8: curl, requests, the CLI
        ("café".encode("latin-1"), "café"),  # latin-1: a browser's fetch
        (b"  typo  ", "typo"),
        (b"   ", "cancelled through the API"),
    ],
)
def test_an_operators_reason_is_read_as_utf8_and_recorded_as_sent(client, services, given, recorded):
    """A UTF-8 reason was recorded as its bytes read as latin-1 ("cafÃ© â\x9c\x93"), shown so everywhere."""
    job_id = submit(client).json["jobId"]
    headers = {"X-INTERNAL-TOKEN": TOKEN, "X-Cancel-Reason": as_wsgi_hands_it_over(given)}
    response = client.post(f"/jobs/{job_id}/cancel", headers=headers)
    assert response.status_code == 200 and response.json["cancellation"]["reason"] == recorded


@pytest.mark.parametrize("action", ["cancel", "retry"])
@pytest.mark.parametrize("given", [b"evil \x1b]0;title\x07", b"a\tb", "x \u0085 y".encode()])
def test_a_reason_with_control_characters_is_refused_and_changes_nothing(client, services, action, given):
    """C0 and C1 controls (a terminal's escape sequences) are refused with a 400 naming the header."""
    job_id = submit(client).json["jobId"]
    if action == "retry":
        services.jobs.mark_failed(job_id, JobError("broken", "STEP_FAILED"))
    before = services.jobs.get(job_id)
    header = f"X-{action.title()}-Reason"
    response = client.post(
        f"/jobs/{job_id}/{action}", headers={"X-INTERNAL-TOKEN": TOKEN, header: as_wsgi_hands_it_over(given)}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "INVALID_HEADER" and header in response.json["error"]["message"]
    assert services.jobs.get(job_id) == before


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_reason_in_a_json_body_is_recorded_in_any_unicode(client, services, action):
    """What the console sends: a browser's fetch cannot put "再試行" in a header."""
    job_id = submit(client).json["jobId"]
    if action == "retry":
        services.jobs.mark_failed(job_id, JobError("broken", "STEP_FAILED"))
    response = client.post(
        f"/jobs/{job_id}/{action}", headers={"X-INTERNAL-TOKEN": TOKEN}, json={"reason": "  再試行 ✓ café  "}
    )
    assert response.status_code == (202 if action == "retry" else 200), response.json
    job = services.jobs.get(job_id)
    recorded = job.attempts[-1]["reason"] if action == "retry" else job.cancellation["reason"]
    assert recorded == "再試行 ✓ café"


@pytest.mark.parametrize(
    ("send", "status", "code", "named"),
    [
        ({"json": {"reason": "a", "why": "b"}}, 422, "VALIDATION_ERROR", "why"),  # unknown field
        ({"json": {"reason": 5}}, 422, "VALIDATION_ERROR", "reason"),
        ({"json": {"reason": "evil \x1b]0;title\x07"}}, 422, "VALIDATION_ERROR", "reason"),
        ({"json": ["reason"]}, 422, "VALIDATION_ERROR", "body"),
        ({"json": {"reason": "body"}, "headers": {"X-Cancel-Reason": "header"}}, 422, "VALIDATION_ERROR", "reason"),
        ({"data": "reason=why", "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", None),
        ({"data": "{", "content_type": "application/json"}, 400, "MALFORMED_JSON", None),
    ],
    ids=["unknown-field", "not-a-string", "control", "not-an-object", "twice", "form", "malformed"],
)
def test_a_bad_action_body_is_refused_by_name_and_changes_nothing(client, services, send, status, code, named):
    job_id = submit(client).json["jobId"]
    before = services.jobs.get(job_id)
    headers = {"X-INTERNAL-TOKEN": TOKEN, **send.get("headers", {})}
    body = {key: value for key, value in send.items() if key != "headers"}
    response = client.post(f"/jobs/{job_id}/cancel", headers=headers, **body)
    assert response.status_code == status and response.json["error"]["code"] == code, response.json
    if named:
        assert named in response.json["error"]["details"]["fields"]
    assert services.jobs.get(job_id) == before


def test_an_action_with_an_empty_body_or_none_takes_the_default_reason(client, services):
    first, second = submit(client).json["jobId"], submit(client, key="another").json["jobId"]
    headers = {"X-INTERNAL-TOKEN": TOKEN}
    assert client.post(f"/jobs/{first}/cancel", headers=headers, json={}).status_code == 200
    assert client.post(f"/jobs/{second}/cancel", headers=headers, data=b"").status_code == 200
    for job_id in (first, second):
        assert services.jobs.get(job_id).cancellation["reason"] == "cancelled through the API"


def test_cancel_of_a_finished_job_is_409(client, services):
    job_id = submit(client).json["jobId"]
    services.jobs.mark_running(job_id)
    services.jobs.mark_done(job_id, result_keys={}, summary="s")
    response = client.post(f"/jobs/{job_id}/cancel", headers={"X-INTERNAL-TOKEN": TOKEN})
    assert response.status_code == 409
    assert services.jobs.get(job_id).state.value == "done"


def test_jobs_can_be_listed_by_state(client, services):
    kept = submit(client).json["jobId"]
    cancelled = submit(client).json["jobId"]
    client.post(f"/jobs/{cancelled}/cancel", headers={"X-INTERNAL-TOKEN": TOKEN})
    listed = client.get("/jobs", query_string={"state": "cancelled"}).json["jobs"]
    assert [job["jobId"] for job in listed] == [cancelled]
    assert kept in [job["jobId"] for job in client.get("/jobs", query_string={"state": "queued"}).json["jobs"]]
    assert client.get("/jobs", query_string={"state": "lost"}).status_code == 422

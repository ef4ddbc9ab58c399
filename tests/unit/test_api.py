"""Unit tests for api/: the HTTP contract, driven through Flask's test client over the fake stores."""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import replace

import pytest

import pipeline
from api import create_app
from storage.bootstrap import Services
from storage.errors import ConfigError, DependencyUnavailable, EnqueueFailed
from storage.model import JobError, JobState, StepEvent, step_id, utc_now
from storage.settings import Settings
from tasks.artifacts import ARTIFACT_NAMES, ARTIFACTS
from tasks.checkpoints import RESULT, artifact_key
from tests.fakes import FakeArtifactStore, FakeJobStore

SEED_MAX = 2**31 - 1
# A well-formed job id no store holds. Fixed, not drawn: parametrized test ids must be the same in
# every process that collects them (pytest-xdist compares them).
UNKNOWN_JOB = "6b1e0f3c-2d4a-4f5b-8c6d-7e8f9a0b1c2d"
SCENE_GRAPH, ASCII_MINIMAP, MINIMAP_PNG = "sceneGraph.json", "asciiMinimap.txt", "minimap.png"
STATUS_KEYS = {
    "jobId",
    "state",
    "progress",
    "steps",
    "result",
    "error",
    "createdAt",
    "updatedAt",
    "request",
    "attempt",
    "attempts",
    "cancellation",
}


# --- helpers -----------------------------------------------------------------


def assert_error(response, status: int, code: str) -> dict:
    """The response is ``status`` with the one error shape, ``{"error": {"code", "message", "details"?}}``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if "details" in error:
        assert isinstance(error["details"], dict) and error["details"]
    return error


def post_json(client, body, **kwargs):
    return client.post("/generate-scene", json=body, **kwargs)


def post_raw(client, text: str | bytes, content_type: str = "application/json", **kwargs):
    return client.post("/generate-scene", data=text, content_type=content_type, **kwargs)


def record_steps(store: FakeJobStore, job_id: str, names) -> None:
    """Record ``names`` as ok steps of the job, as the worker would."""
    for name in names:
        now = utc_now()
        event = StepEvent(step_id(job_id, name), name, now, now, 3, f"{name} ok")
        store.record_step(job_id, event, total_steps=len(pipeline.STEPS))


def finish(store: FakeJobStore, job_id: str, fields=None) -> None:
    """Record every step and mark the job done with the artifacts (result fields) the last step made."""
    record_steps(store, job_id, pipeline.STEPS)
    made = [artifact for artifact in ARTIFACTS if fields is None or artifact.field in fields]
    keys = {artifact.field: artifact_key(job_id, artifact.name) for artifact in made}
    keys["result"] = artifact_key(job_id, RESULT)
    store.mark_done(job_id, result_keys=keys, summary="3 rooms, 2 doors")


@pytest.fixture
def make_client(settings, sent):
    """Build a client over fresh fakes; any part (stores, settings, enqueue) can be swapped."""

    def make(*, jobs=None, artifacts=None, settings_=None, enqueue=None):
        services = Services(
            settings=settings_ or settings,
            jobs=jobs if jobs is not None else FakeJobStore(),
            artifacts=artifacts if artifacts is not None else FakeArtifactStore(),
        )
        app = create_app(
            services, enqueue=enqueue or (lambda job_id, request_id, **_: sent.append((job_id, request_id)))
        )
        return app.test_client(), services

    return make


@pytest.fixture
def submit(client):
    """POST a valid job and return its id."""

    def _submit(prompt: str = "a spooky hallway", **extra) -> str:
        response = post_json(client, {"prompt": prompt, "seed": 123, **extra})
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.get_json()["jobId"]

    return _submit


# --- POST /generate-scene: accepted ---------------------------------------------


def test_accepts_job_with_id_status_url_and_location(client, services, sent):
    """202 with jobId, statusUrl and Location naming the same status URL; the job is stored queued and sent."""
    response = post_json(client, {"prompt": "a spooky hallway", "seed": 123, "style": "dungeon"})
    assert response.status_code == 202
    body = response.get_json()
    job_id = body["jobId"]
    assert uuid.UUID(job_id).version == 4
    assert body["statusUrl"] == f"/status/{job_id}"
    assert response.headers["Location"].endswith(body["statusUrl"])
    assert body["seed"] == 123 and body["style"] == "dungeon" and body["state"] == "queued"
    job = services.jobs.get(job_id)
    assert job.state is JobState.QUEUED
    assert job.request == {"prompt": "a spooky hallway", "seed": 123, "style": "dungeon"}
    assert job.total_steps == len(pipeline.STEPS)
    assert [job_id] == [sent_id for sent_id, _ in sent]
    assert client.get(body["statusUrl"]).get_json()["jobId"] == job_id


def test_seed_is_chosen_in_range_and_echoed_when_absent(client, services):
    """Without a seed (or with null) one is chosen in 0..2^31-1, echoed and stored; it is not a constant."""
    seeds = []
    for body in ({"prompt": "a"},) * 6 + ({"prompt": "a", "seed": None},):
        response = post_json(client, body)
        assert response.status_code == 202
        data = response.get_json()
        assert isinstance(data["seed"], int) and not isinstance(data["seed"], bool)
        assert 0 <= data["seed"] <= SEED_MAX
        assert services.jobs.get(data["jobId"]).request["seed"] == data["seed"]
        seeds.append(data["seed"])
    assert len(set(seeds)) > 1


@pytest.mark.parametrize("seed", [0, 1, SEED_MAX])
def test_seed_bounds_are_accepted(client, services, seed):
    """0 and 2^31-1 are valid seeds, echoed and stored as given."""
    response = post_json(client, {"prompt": "a", "seed": seed})
    assert response.status_code == 202
    assert response.get_json()["seed"] == seed
    assert services.jobs.get(response.get_json()["jobId"]).request["seed"] == seed


def test_style_defaults_to_pipeline_default(client, services):
    """An absent style becomes pipeline.DEFAULT_STYLE, echoed and stored."""
    response = post_json(client, {"prompt": "a", "seed": 1})
    assert response.get_json()["style"] == pipeline.DEFAULT_STYLE
    assert services.jobs.get(response.get_json()["jobId"]).request["style"] == pipeline.DEFAULT_STYLE


@pytest.mark.parametrize("style", pipeline.STYLES)
def test_every_pipeline_style_is_accepted(client, style):
    """Each of pipeline.STYLES is a valid style."""
    response = post_json(client, {"prompt": "a", "style": style})
    assert response.status_code == 202
    assert response.get_json()["style"] == style


def test_job_is_written_queued_before_enqueue(make_client):
    """enqueue is called only after the job item exists, in state queued."""
    seen = []
    holder = {}

    def enqueue(job_id, request_id, **_):
        seen.append(holder["services"].jobs.get(job_id).state)

    client, holder["services"] = make_client(enqueue=enqueue)
    assert post_json(client, {"prompt": "a"}).status_code == 202
    assert seen == [JobState.QUEUED]


def test_enqueue_failure_is_503_and_job_ends_failed(make_client):
    """EnqueueFailed gives 503 ENQUEUE_FAILED, and the job is marked failed with that code, never left queued."""

    def enqueue(job_id, request_id, **_):
        raise EnqueueFailed("could not send the job to the queue (Boom)", details={"jobId": job_id})

    client, services = make_client(enqueue=enqueue)
    error = assert_error(post_json(client, {"prompt": "a"}), 503, "ENQUEUE_FAILED")
    jobs = list(services.jobs.jobs.values())
    assert len(jobs) == 1
    job = jobs[0]
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "ENQUEUE_FAILED"
    assert error["details"]["jobId"] == job.job_id


def test_store_down_on_submit_is_503_and_nothing_enqueued(make_client, sent):
    """DependencyUnavailable while writing the job gives 503 and no message is sent."""
    jobs = FakeJobStore()
    jobs.down = True
    client, _ = make_client(jobs=jobs)
    assert_error(post_json(client, {"prompt": "a"}), 503, "DEPENDENCY_UNAVAILABLE")
    assert sent == []


# --- POST /generate-scene: prompt --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing"),
        pytest.param({"prompt": None}, id="null"),
        pytest.param({"prompt": ""}, id="empty"),
        pytest.param({"prompt": " \t\n\r \u00a0\u3000"}, id="whitespace-only"),
        pytest.param({"prompt": "x" * 2001}, id="2001-chars"),
        pytest.param({"prompt": "  " + "y" * 2001 + "\n"}, id="2001-after-trim"),
        pytest.param({"prompt": "👻" * 2001}, id="2001-emoji"),
        pytest.param({"prompt": 5}, id="number"),
        pytest.param({"prompt": ["a"]}, id="list"),
    ],
)
def test_invalid_prompt_is_422_and_nothing_stored(client, services, sent, body):
    """A missing, empty, blank, too long or non-string prompt is 422 naming prompt; no job, no message."""
    error = assert_error(post_json(client, body), 422, "VALIDATION_ERROR")
    assert "prompt" in error["message"]
    assert "prompt" in error["details"]["fields"]
    assert services.jobs.jobs == {} and sent == []


def test_prompt_of_2000_chars_is_accepted(client, services):
    """Exactly 2000 characters is the maximum allowed."""
    response = post_json(client, {"prompt": "z" * 2000})
    assert response.status_code == 202
    assert services.jobs.get(response.get_json()["jobId"]).request["prompt"] == "z" * 2000


def test_prompt_whitespace_is_trimmed_before_length_check_and_storage(client, services):
    """Surrounding whitespace is removed: 2000 chars plus padding is accepted and stored trimmed."""
    response = post_json(client, {"prompt": "  \t" + "q" * 2000 + " \n"})
    assert response.status_code == 202
    assert services.jobs.get(response.get_json()["jobId"]).request["prompt"] == "q" * 2000


def test_control_chars_and_emoji_are_stored_intact(client, services):
    """Inner control characters, emoji and ZWJ sequences survive unchanged (only surrounding space is trimmed)."""
    prompt = "spooky\x00hall\x07way \x1b[31mred\x1b[0m 👻 🏚️ 👨‍👩‍👧 é\u0301\x07"
    response = post_json(client, {"prompt": f"  {prompt}\n"})
    assert response.status_code == 202
    job_id = response.get_json()["jobId"]
    assert services.jobs.get(job_id).request["prompt"] == prompt
    assert client.get(f"/status/{job_id}").get_json()["request"]["prompt"] == prompt


def test_lone_surrogate_prompt_is_422(client, services):
    """JSON can spell a lone surrogate; no store can keep one, so it is refused as invalid prompt."""
    error = assert_error(post_raw(client, '{"prompt": "\\ud800 hall"}'), 422, "VALIDATION_ERROR")
    assert "prompt" in error["details"]["fields"]
    assert services.jobs.jobs == {}


def test_lone_surrogate_in_unknown_field_name_is_422(client):
    """An unknown key spelled with a lone surrogate is still a 422, not a crash while rendering the error."""
    assert_error(post_raw(client, '{"prompt": "a", "\\ud800": 1}'), 422, "VALIDATION_ERROR")


# --- POST /generate-scene: seed, style, unknown fields --------------------------------


@pytest.mark.parametrize(
    "raw_seed",
    ["-1", str(2**31), '"5"', "5.0", "true", "false", "1e3", "NaN", "[5]", "{}"],
)
def test_invalid_seed_is_422(client, services, raw_seed):
    """Seeds outside 0..2^31-1, numeric strings, floats, booleans and containers are refused."""
    error = assert_error(post_raw(client, f'{{"prompt": "a", "seed": {raw_seed}}}'), 422, "VALIDATION_ERROR")
    assert "seed" in error["message"] and "seed" in error["details"]["fields"]
    assert services.jobs.jobs == {}


@pytest.mark.parametrize("style", ["quake", "", "DOOM ", None, 5, ["doom"]])
def test_style_not_in_pipeline_styles_is_422(client, style):
    """A style outside pipeline.STYLES (or not a string) is refused."""
    assert style not in pipeline.STYLES
    error = assert_error(post_json(client, {"prompt": "a", "style": style}), 422, "VALIDATION_ERROR")
    assert "style" in error["details"]["fields"]


@pytest.mark.parametrize("rooms", [3, 200, 1000])
def test_rooms_in_range_is_accepted_and_stored(client, services, rooms):
    """An explicit room count, 3..1000, is kept in the job's request for the pipeline."""
    response = post_json(client, {"prompt": "a", "rooms": rooms})
    assert response.status_code == 202
    assert services.jobs.get(response.get_json()["jobId"]).request["rooms"] == rooms


def test_absent_rooms_is_not_stored(client, services):
    """No room count: the request stays as it was (the prompt and the style decide)."""
    job_id = post_json(client, {"prompt": "a"}).get_json()["jobId"]
    assert "rooms" not in services.jobs.get(job_id).request


@pytest.mark.parametrize("raw_rooms", ["2", "1001", "0", "-5", "5.0", "true", '"10"', "null", "[10]"])
def test_invalid_rooms_is_422(client, services, raw_rooms):
    """Room counts outside 3..1000, floats, booleans, strings and null are refused, nothing stored."""
    error = assert_error(post_raw(client, f'{{"prompt": "a", "rooms": {raw_rooms}}}'), 422, "VALIDATION_ERROR")
    assert "rooms" in error["details"]["fields"]
    assert services.jobs.jobs == {}


def test_unknown_field_is_422_naming_it(client, services):
    """An unknown field is refused, and its name appears in both the message and the details."""
    error = assert_error(post_json(client, {"prompt": "a", "colour": "red"}), 422, "VALIDATION_ERROR")
    assert "colour" in error["message"]
    assert "colour" in error["details"]["fields"]
    assert services.jobs.jobs == {}


# --- POST /generate-scene: the body itself ---------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["{", "{'prompt': 'a'}", '{"prompt": "a",}', "", "   ", b'{"prompt": "\xff"}', '{"prompt": "a"} x'],
    ids=["unclosed", "single-quotes", "trailing-comma", "empty", "blank", "invalid-utf8", "trailing-garbage"],
)
def test_malformed_json_is_400(client, services, raw):
    """A body that is not JSON is 400 MALFORMED_JSON."""
    assert_error(post_raw(client, raw), 400, "MALFORMED_JSON")
    assert services.jobs.jobs == {}


def test_deeply_nested_json_is_a_client_error(client):
    """A small but deeply nested body is the client's fault (400 or 422), never a 500."""
    response = post_raw(client, "[" * 60_000)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("raw", ['["a"]', "[]", '"a spooky hallway"', "5", "null", "true"])
def test_non_object_json_is_422(client, raw):
    """Valid JSON that is not an object is a validation error."""
    assert_error(post_raw(client, raw), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_wrong_content_type_is_415(client, services, content_type):
    """A body that is not declared JSON is 415, even when its text is JSON."""
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/generate-scene", data='{"prompt": "a"}', **kwargs)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert services.jobs.jobs == {}


def test_json_content_type_with_charset_is_accepted(client):
    """``application/json; charset=utf-8`` is JSON."""
    assert post_raw(client, '{"prompt": "a"}', content_type="application/json; charset=utf-8").status_code == 202


def test_body_of_exactly_64_kib_is_read_and_one_byte_more_is_413(client, services):
    """64 KiB is the limit: a 65536-byte body is parsed, a 65537-byte one is 413 JSON."""
    head = '{"prompt": "a"}'
    assert post_raw(client, head + " " * (65536 - len(head))).status_code == 202
    error = assert_error(post_raw(client, head + " " * (65537 - len(head))), 413, "REQUEST_ENTITY_TOO_LARGE")
    assert "65536" in error["message"]
    assert len(services.jobs.jobs) == 1


def post_chunked(client, body: bytes):
    """A body sent as gunicorn hands a chunked one over: no Content-Length, the stream terminated."""
    return client.post(
        "/generate-scene",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413_not_cut_short(client, services):
    """werkzeug reads a body of unknown length up to the limit and stops there, without saying so:
    valid JSON padded past 64 KiB was accepted, a long prompt refused as malformed JSON."""
    head = b'{"prompt": "a"}'
    assert post_chunked(client, head + b" " * (65536 - len(head))).status_code == 202
    assert_error(post_chunked(client, head + b" " * 70_000), 413, "REQUEST_ENTITY_TOO_LARGE")
    assert_error(post_chunked(client, b'{"prompt": "' + b"x" * 70_000 + b'"}'), 413, "REQUEST_ENTITY_TOO_LARGE")
    assert len(services.jobs.jobs) == 1


def test_fields_in_the_query_string_are_refused_not_ignored(client, services):
    """POST /generate-scene?seed=5 made a job with a random seed; GET /jobs refuses unknown parameters too."""
    response = client.post("/generate-scene?seed=5&style=doom", json={"prompt": "a hall"})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == {"seed", "style"} and "JSON body" in error["details"]["fields"]["seed"][0]
    assert services.jobs.jobs == {}


def test_large_body_is_413(client):
    """A body well over the limit is 413 with the JSON error shape."""
    assert_error(post_json(client, {"prompt": "x" * 100_000}), 413, "REQUEST_ENTITY_TOO_LARGE")


# --- routing errors -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/status", "/jobs/x/y", "/generate-scene/extra"])
def test_unknown_route_is_404_json(client, path):
    """An unknown path is 404 in the JSON error shape, not Flask's HTML page."""
    assert_error(client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/generate-scene", "POST"),
        ("put", "/generate-scene", "POST"),
        ("delete", f"/status/{UNKNOWN_JOB}", "GET"),
        ("post", "/jobs", "GET"),
        ("post", "/healthz", "GET"),
    ],
)
def test_wrong_method_is_405_json_with_allow(client, method, path, allowed):
    """A known path with the wrong method is 405 JSON, with an Allow header naming the right method."""
    response = getattr(client, method)(path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed in allow
    assert method.upper() not in allow


def test_healthz(client):
    """Liveness answers 200 {"ok": true} without touching dependencies."""
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"ok": True}


# --- fault drills -------------------------------------------------------------------


def test_fault_drill_is_refused_when_disabled(make_client, sent):
    """X-Fault-Drill is 400 FAULT_DRILLS_DISABLED when settings.fault_drills is off, and no job is made."""
    settings = Settings.from_env({"ENV": "local"})
    assert settings.fault_drills is False
    client, services = make_client(settings_=settings)
    response = post_json(client, {"prompt": "a"}, headers={"X-Fault-Drill": "fail:layout_rooms"})
    assert_error(response, 400, "FAULT_DRILLS_DISABLED")
    assert services.jobs.jobs == {} and sent == []
    assert post_json(client, {"prompt": "a"}).status_code == 202


@pytest.mark.parametrize("drill", [f"{kind}:{step}" for kind in ("fail", "slow") for step in pipeline.STEPS])
def test_valid_fault_drill_is_stored_on_the_job(client, services, drill):
    """With drills on, fail:<step> and slow:<step> are accepted and stored on the job for the worker."""
    response = post_json(client, {"prompt": "a"}, headers={"X-Fault-Drill": drill})
    assert response.status_code == 202
    assert services.jobs.get(response.get_json()["jobId"]).fault_drill == drill


@pytest.mark.parametrize(
    "drill", ["", "fail", "fail:", "explode:layout_rooms", "fail:nope", "FAIL:populate", "fail:populate:x"]
)
def test_invalid_fault_drill_is_422(client, services, drill):
    """With drills on, anything but fail|slow:<pipeline step> is 422 INVALID_FAULT_DRILL, and no job is made."""
    response = post_json(client, {"prompt": "a"}, headers={"X-Fault-Drill": drill})
    assert_error(response, 422, "INVALID_FAULT_DRILL")
    assert services.jobs.jobs == {}


# --- GET /status/<jobId> --------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "123",
        UNKNOWN_JOB.upper(),
        UNKNOWN_JOB.replace("-", ""),
        UNKNOWN_JOB[:-1],
        UNKNOWN_JOB + "0",
        "{" + UNKNOWN_JOB + "}",
    ],
)
def test_status_of_malformed_id_is_400(client, bad_id):
    """An id that is not a lower-case hyphenated UUID is 400 INVALID_JOB_ID (no store lookup needed)."""
    assert_error(client.get(f"/status/{bad_id}"), 400, "INVALID_JOB_ID")


def test_status_of_id_with_trailing_newline_is_400(client):
    """'<uuid>%0A' is not a job id."""
    assert_error(client.get(f"/status/{uuid.uuid4()}%0A"), 400, "INVALID_JOB_ID")


def test_status_of_unknown_job_is_404(client):
    """A well-formed id with no job is 404 JOB_NOT_FOUND."""
    assert_error(client.get(f"/status/{uuid.uuid4()}"), 404, "JOB_NOT_FOUND")


def test_status_of_queued_job_has_the_documented_shape(client, submit):
    """A fresh job: exactly the documented keys, queued, no progress, no steps, no result, no error."""
    job_id = submit()
    body = client.get(f"/status/{job_id}").get_json()
    assert set(body) == STATUS_KEYS
    assert body["jobId"] == job_id
    assert body["state"] == "queued"
    assert body["progress"] == 0
    assert body["steps"] == [] and body["result"] is None and body["error"] is None
    assert body["request"] == {"prompt": "a spooky hallway", "seed": 123, "style": pipeline.DEFAULT_STYLE}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])
    assert body["updatedAt"] >= body["createdAt"]


def test_status_progress_is_completed_over_total_steps(client, services, submit):
    """After 2 of 5 steps are recorded: running, progress 0.4, two step entries in order, result still None."""
    job_id = submit()
    record_steps(services.jobs, job_id, pipeline.STEPS[:2])
    body = client.get(f"/status/{job_id}").get_json()
    assert body["state"] == "running"
    assert body["progress"] == pytest.approx(2 / len(pipeline.STEPS))
    assert [step["name"] for step in body["steps"]] == list(pipeline.STEPS[:2])
    assert body["steps"][0]["stepId"] == f"{job_id}:{pipeline.STEPS[0]}"
    assert set(body["steps"][0]) == {
        "stepId",
        "jobId",
        "attempt",
        "name",
        "startedAt",
        "endedAt",
        "durationMs",
        "summary",
        "status",
    }
    assert (body["steps"][0]["jobId"], body["steps"][0]["attempt"]) == (job_id, 1)
    assert body["result"] is None


def test_status_result_stays_none_until_done(client, services, submit):
    """Even with every step recorded, the result appears only once the job is done."""
    job_id = submit()
    record_steps(services.jobs, job_id, pipeline.STEPS)
    body = client.get(f"/status/{job_id}").get_json()
    assert body["state"] == "running" and body["progress"] == pytest.approx(1)
    assert body["result"] is None


def test_status_of_done_job_has_keys_and_presigned_urls(client, services, settings, submit):
    """Done (presigning store): artifact keys, presigned URLs for every artifact, expiresIn, nothing inlined."""
    job_id = submit()
    finish(services.jobs, job_id)
    body = client.get(f"/status/{job_id}").get_json()
    assert body["state"] == "done" and body["progress"] == 1
    result = body["result"]
    scene_key, minimap_key = artifact_key(job_id, SCENE_GRAPH), artifact_key(job_id, ASCII_MINIMAP)
    assert result["sceneGraphKey"] == scene_key == f"jobs/{job_id}/sceneGraph.json"
    assert result["asciiMinimapKey"] == minimap_key == f"jobs/{job_id}/asciiMinimap.txt"
    assert result["resultKey"] == artifact_key(job_id, RESULT)
    ttl = settings.presign_ttl_seconds
    assert result["sceneGraphUrl"] == services.artifacts.url_for(scene_key, expires_in=ttl)
    assert result["asciiMinimapUrl"] == services.artifacts.url_for(minimap_key, expires_in=ttl)
    png_key = artifact_key(job_id, MINIMAP_PNG)
    assert result["minimapPngKey"] == png_key == f"jobs/{job_id}/minimap.png"
    assert result["minimapPngUrl"] == services.artifacts.url_for(png_key, expires_in=ttl)
    assert result["expiresIn"] == ttl
    assert result["summary"] == "3 rooms, 2 doors"
    assert "sceneGraph" not in result and "asciiMinimap" not in result


def test_status_lists_only_the_artifacts_the_job_made(client, services, submit):
    """A job done before minimap.png existed (or whose producer skipped it) shows no minimapPng fields."""
    job_id = submit()
    finish(services.jobs, job_id, fields={"sceneGraph", "asciiMinimap"})
    result = client.get(f"/status/{job_id}").get_json()["result"]
    assert "sceneGraphUrl" in result and "asciiMinimapUrl" in result
    assert not {"minimapPngKey", "minimapPngUrl"} & set(result)
    assert_error(client.get(f"/jobs/{job_id}/artifacts/{MINIMAP_PNG}"), 404, "ARTIFACT_NOT_FOUND")


def test_status_of_done_job_inlines_artifacts_in_demo_mode(make_client):
    """Done (store without URLs, demo mode): the scene graph and minimap are inlined, no URLs."""
    client, services = make_client(artifacts=FakeArtifactStore(presign=False))
    job_id = post_json(client, {"prompt": "a"}).get_json()["jobId"]
    finish(services.jobs, job_id)
    scene = {"rooms": [{"id": "r1", "name": "Hall 👻"}], "stats": {"rooms": 1}}
    minimap = "+--+\n|👻|\n+--+\n"
    services.artifacts.put(artifact_key(job_id, SCENE_GRAPH), json.dumps(scene).encode(), "application/json")
    services.artifacts.put(artifact_key(job_id, ASCII_MINIMAP), minimap.encode(), "text/plain")
    result = client.get(f"/status/{job_id}").get_json()["result"]
    assert result["sceneGraph"] == scene
    assert result["asciiMinimap"] == minimap
    assert result["sceneGraphKey"] == artifact_key(job_id, SCENE_GRAPH)
    assert not {"sceneGraphUrl", "asciiMinimapUrl", "expiresIn", "minimapPng"} & set(result)
    # A binary artifact is not inlined: its URL is this API's own path, which serves the bytes.
    assert result["minimapPngUrl"] == f"/jobs/{job_id}/artifacts/{MINIMAP_PNG}"
    services.artifacts.put(artifact_key(job_id, MINIMAP_PNG), b"\x89PNG fake", "image/png")
    served = client.get(result["minimapPngUrl"])
    assert served.status_code == 200 and served.data == b"\x89PNG fake" and served.mimetype == "image/png"


def test_status_of_failed_job_shows_error_and_kept_steps(client, services, submit):
    """Failed: the stored {message, code, details} error, the completed steps kept, no result."""
    job_id = submit()
    record_steps(services.jobs, job_id, pipeline.STEPS[:1])
    services.jobs.mark_failed(job_id, JobError("layout_rooms failed", "STEP_FAILED", {"step": "layout_rooms"}))
    body = client.get(f"/status/{job_id}").get_json()
    assert body["state"] == "failed"
    assert body["error"] == {
        "message": "layout_rooms failed",
        "code": "STEP_FAILED",
        "details": {"step": "layout_rooms"},
    }
    assert len(body["steps"]) == 1 and body["result"] is None


# --- GET /jobs ----------------------------------------------------------------------


def add_jobs(store: FakeJobStore, submit, count: int) -> list[str]:
    """Submit ``count`` jobs and give them distinct creation times; ids returned oldest first."""
    ids = [submit(f"prompt {i}") for i in range(count)]
    for i, job_id in enumerate(ids):
        store.jobs[job_id] = replace(store.jobs[job_id], created_at=f"2026-01-01T00:00:{i:02d}.000Z")
    return ids


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=x", "limit=", "limit=1.5", "cursor="])
def test_list_query_out_of_bounds_is_422(client, query):
    """limit outside 1..100, not an integer, or an empty cursor is 422."""
    error = assert_error(client.get(f"/jobs?{query}"), 422, "VALIDATION_ERROR")
    assert query.split("=")[0] in error["details"]["fields"]


def test_list_unknown_query_param_is_422_naming_it(client):
    """An unknown query parameter is 422 and named."""
    error = assert_error(client.get("/jobs?sort=asc"), 422, "VALIDATION_ERROR")
    assert "sort" in error["message"] and "sort" in error["details"]["fields"]


@pytest.mark.parametrize("limit", [1, 100])
def test_list_limit_bounds_are_accepted(client, limit):
    """1 and 100 are valid limits."""
    assert client.get(f"/jobs?limit={limit}").status_code == 200


def test_list_is_newest_first_with_summary_shape(client, services, submit):
    """Jobs come newest first, each a summary with its status URL."""
    ids = add_jobs(services.jobs, submit, 3)
    body = client.get("/jobs").get_json()
    assert set(body) == {"jobs", "nextCursor"}
    assert [job["jobId"] for job in body["jobs"]] == ids[::-1]
    assert body["nextCursor"] is None
    first = body["jobs"][0]
    assert set(first) == {"jobId", "state", "progress", "promptPreview", "createdAt", "updatedAt", "statusUrl"}
    assert first["statusUrl"] == f"/status/{ids[-1]}" and first["promptPreview"] == "prompt 2"


def test_list_prompt_preview_is_80_chars(client, submit):
    """promptPreview is the first 80 characters of the prompt (never split inside one: test_model.py)."""
    submit("p" * 80 + "TAIL")
    assert client.get("/jobs").get_json()["jobs"][0]["promptPreview"] == "p" * 80


def test_list_default_limit_is_20(client, services, submit):
    """Without a limit, 20 jobs come back and a cursor says there are more."""
    add_jobs(services.jobs, submit, 21)
    body = client.get("/jobs").get_json()
    assert len(body["jobs"]) == 20 and body["nextCursor"]


def test_list_pages_through_every_job_once_with_the_cursor(client, services, submit):
    """Following nextCursor visits every job exactly once, newest first, and the last page has no cursor."""
    ids = add_jobs(services.jobs, submit, 5)
    seen, cursor, pages = [], None, 0
    while True:
        response = client.get("/jobs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = response.get_json()
        pages += 1
        seen += [job["jobId"] for job in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ids[::-1]


# --- dependencies and unexpected errors ------------------------------------------------


@pytest.mark.parametrize("path", [f"/status/{UNKNOWN_JOB}", "/jobs", f"/jobs/{UNKNOWN_JOB}/artifacts/result.json"])
def test_store_unavailable_is_503(make_client, path):
    """DependencyUnavailable from the job store is 503 DEPENDENCY_UNAVAILABLE on every read."""
    jobs = FakeJobStore()
    jobs.down = True
    client, _ = make_client(jobs=jobs)
    assert_error(client.get(path), 503, "DEPENDENCY_UNAVAILABLE")


def test_unexpected_exception_is_500_json_without_traceback(client, services, monkeypatch):
    """A bug in a view is 500 INTERNAL in the error shape; neither the message nor a traceback leaks."""

    def broken(job_id):
        raise RuntimeError("secret-db-password=hunter2")

    monkeypatch.setattr(services.jobs, "get", broken)
    response = client.get(f"/status/{uuid.uuid4()}")
    assert_error(response, 500, "INTERNAL")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text


def test_unmapped_project_error_is_500_without_its_message(client, services, monkeypatch):
    """A project error with no HTTP mapping is a plain 500 INTERNAL; its message stays in the log."""

    def broken(*, limit, cursor=None, state=None):
        raise ConfigError("JOBS_TABLE_NAME secret-ish detail")

    monkeypatch.setattr(services.jobs, "list_jobs", broken)
    response = client.get("/jobs")
    assert_error(response, 500, "INTERNAL")
    assert "secret-ish" not in response.get_data(as_text=True)


def test_dependency_error_mid_request_does_not_leave_request_id_unset(make_client):
    """Error responses carry X-Request-Id too (after_request runs for handled errors)."""
    jobs = FakeJobStore()
    jobs.down = True
    client, _ = make_client(jobs=jobs)
    response = client.get("/jobs", headers={"X-Request-Id": "req-503"})
    assert response.status_code == 503 and response.headers["X-Request-Id"] == "req-503"


# --- request ids --------------------------------------------------------------------


def test_request_id_is_echoed_and_sent_with_the_job(client, sent):
    """A well-formed X-Request-Id is echoed and travels with the enqueued job."""
    response = post_json(client, {"prompt": "a"}, headers={"X-Request-Id": "abc-123.x:y_z"})
    assert response.headers["X-Request-Id"] == "abc-123.x:y_z"
    assert sent == [(response.get_json()["jobId"], "abc-123.x:y_z")]


def test_request_id_comes_from_amzn_trace_root(client):
    """Without X-Request-Id, the Root of X-Amzn-Trace-Id is used."""
    trace = "Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    response = client.get("/healthz", headers={"X-Amzn-Trace-Id": trace})
    assert response.headers["X-Request-Id"] == "1-5759e988-bd862e3fe1be46a994272793"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "é"])
def test_request_id_is_generated_otherwise(client, given):
    """Without a usable id, a fresh one is generated per request (never the malformed input)."""
    headers = {"X-Request-Id": given} if given is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_given_request_id_wins_over_trace_header(client):
    """X-Request-Id takes precedence over X-Amzn-Trace-Id."""
    headers = {"X-Request-Id": "mine", "X-Amzn-Trace-Id": "Root=1-aaaa-bbbb"}
    assert client.get("/healthz", headers=headers).headers["X-Request-Id"] == "mine"


def test_request_id_is_on_error_responses(client):
    """404s carry the request id too."""
    assert client.get("/nope", headers={"X-Request-Id": "r-404"}).headers["X-Request-Id"] == "r-404"


# --- GET /jobs/<jobId>/artifacts/<name> -----------------------------------------------


@pytest.mark.parametrize("name", ARTIFACT_NAMES)
def test_artifact_of_done_job_redirects_to_presigned_url(client, services, settings, submit, name):
    """302 to the store's presigned URL for that artifact's key."""
    job_id = submit()
    finish(services.jobs, job_id)
    response = client.get(f"/jobs/{job_id}/artifacts/{name}")
    assert response.status_code == 302
    expected = services.artifacts.url_for(artifact_key(job_id, name), expires_in=settings.presign_ttl_seconds)
    assert response.headers["Location"] == expected


def test_artifact_is_served_in_demo_mode(make_client):
    """Without presigned URLs, the artifact's bytes are served with its content type."""
    client, services = make_client(artifacts=FakeArtifactStore(presign=False))
    job_id = post_json(client, {"prompt": "a"}).get_json()["jobId"]
    finish(services.jobs, job_id)
    services.artifacts.put(artifact_key(job_id, ASCII_MINIMAP), b"#..#\n", "text/plain")
    response = client.get(f"/jobs/{job_id}/artifacts/{ASCII_MINIMAP}")
    assert response.status_code == 200
    assert response.data == b"#..#\n"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize("state", ["queued", "running", "failed"])
def test_artifact_of_unfinished_job_is_409(client, services, submit, state):
    """A job that is not done has no artifacts yet: 409 JOB_NOT_DONE."""
    job_id = submit()
    if state in ("running", "failed"):
        record_steps(services.jobs, job_id, pipeline.STEPS[:1])
    if state == "failed":
        services.jobs.mark_failed(job_id, JobError("x", "STEP_FAILED"))
    assert_error(client.get(f"/jobs/{job_id}/artifacts/{SCENE_GRAPH}"), 409, "JOB_NOT_DONE")


@pytest.mark.parametrize("name", ["secrets.txt", "sceneGraph.JSON", "steps", "result.json.bak", "minimap.PNG"])
def test_unknown_artifact_name_is_404(client, services, submit, name):
    """Only the artifact names of tasks/artifacts.py (and result.json) exist: anything else is 404."""
    job_id = submit()
    finish(services.jobs, job_id)
    assert_error(client.get(f"/jobs/{job_id}/artifacts/{name}"), 404, "ARTIFACT_NOT_FOUND")


def test_artifact_of_unknown_or_malformed_job(client):
    """Unknown job: 404 JOB_NOT_FOUND; malformed id: 400 INVALID_JOB_ID."""
    assert_error(client.get(f"/jobs/{uuid.uuid4()}/artifacts/{RESULT}"), 404, "JOB_NOT_FOUND")
    assert_error(client.get(f"/jobs/nope/artifacts/{RESULT}"), 400, "INVALID_JOB_ID")


def test_dependency_unavailable_from_artifact_store_is_503(client, services, submit, monkeypatch):
    """An artifact store that cannot be reached while presenting a done job is 503, not 500."""
    job_id = submit()
    finish(services.jobs, job_id)

    def down(key, *, expires_in):
        raise DependencyUnavailable("s3 is unreachable")

    monkeypatch.setattr(services.artifacts, "url_for", down)
    assert_error(client.get(f"/status/{job_id}"), 503, "DEPENDENCY_UNAVAILABLE")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ([], "an array"),
        ([{"prompt": "x"}], "an array"),
        ("x", "a string"),
        (7, "a number"),
        (None, "null"),
        (True, "a boolean"),
    ],
)
def test_a_body_that_is_not_a_json_object_says_so(client, services, body, kind):
    """Not `_schema` (marshmallow's insides): the body must be a JSON object, and what it was instead."""
    response = client.post("/generate-scene", data=json.dumps(body), content_type="application/json")
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["message"] == "the body must be a JSON object"
    assert error["details"] == {"fields": {"body": [f"Expected a JSON object, got {kind}."]}}
    assert "_schema" not in json.dumps(error)
    assert services.jobs.jobs == {}


def test_a_lone_surrogate_in_an_array_body_names_the_body_not_schema(client):
    response = client.post("/generate-scene", data='["\\ud800"]', content_type="application/json")
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "_schema" not in json.dumps(error) and "body" in error["details"]["fields"]


def test_the_nil_uuid_is_refused_saying_a_version_4_uuid_is_required(client):
    """The nil UUID is a lower-case UUID; what is required is a version-4 one, and the message says so."""
    error = assert_error(client.get("/status/00000000-0000-0000-0000-000000000000"), 400, "INVALID_JOB_ID")
    assert "version-4 UUID" in error["message"] and "nil UUID is not one" in error["message"]

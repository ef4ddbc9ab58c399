"""The ghost-engine command line against the real Flask app on fakes of our stores (no network).

The CLI's HTTP session is handed to the app through a small requests adapter over Flask's test
client, so every answer the CLI prints or exits on is the API's own.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import shlex
import uuid
from datetime import UTC, datetime

import pytest
import requests
from requests.adapters import BaseAdapter
from rich.cells import cell_len

import pipeline
from api import cli
from storage.model import JobError, StepEvent, StepStatus, utc_now

TOKEN = "unit-token"


class FlaskAdapter(BaseAdapter):
    """requests -> Flask test client: the CLI's requests answered by the app in-process."""

    def __init__(self, app, wire: list) -> None:
        super().__init__()
        self.client = app.test_client()
        self.wire = wire

    def send(self, request, **_kwargs):
        self.wire.append(request)
        url = request.url.split("://", 1)[1]
        path = "/" + url.split("/", 1)[1] if "/" in url else "/"
        # Header bytes reach a WSGI app as latin-1 str (PEP 3333), as under gunicorn.
        headers = {name: v.decode("latin-1") if isinstance(v, bytes) else v for name, v in request.headers.items()}
        answer = self.client.open(path, method=request.method, headers=headers, data=request.body)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers.update(answer.headers)
        response._content = answer.get_data()
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def app(services, sent):
    from api import create_app
    from storage.settings import Settings

    settings = Settings.from_env({"ENV": "local", "FAULT_DRILLS": "1", "INTERNAL_TOKEN": TOKEN})
    services = type(services)(settings=settings, jobs=services.jobs, artifacts=services.artifacts)
    return create_app(services, enqueue=lambda job_id, request_id, **_: sent.append((job_id, request_id)))


class Clock:
    """time.monotonic and time.sleep for the CLI: a sleep moves the clock on at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(cli.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(cli.time, "sleep", clock.sleep)
    return clock


@pytest.fixture
def wire() -> list[requests.PreparedRequest]:
    """Every request the CLI sent to the app, in order."""
    return []


@pytest.fixture
def run(app, monkeypatch, clock, wire):
    """Run the CLI as its entry point does: (exit code, stdout, stderr), on an 80-column terminal."""
    adapter = FlaskAdapter(app, wire)
    real_init = cli.ApiClient.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.session.mount("http://", adapter)

    monkeypatch.setattr(cli.ApiClient, "__init__", init)

    def run_cli(*args: str, token: str | None = TOKEN, stdout: io.StringIO | None = None) -> tuple[int, str, str]:
        stdout, stderr = stdout or io.StringIO(), io.StringIO()
        monkeypatch.setattr(cli, "out", cli.Terminal(file=stdout, width=80, soft_wrap=True))
        monkeypatch.setattr(cli, "err", cli.Terminal(file=stderr, width=80, soft_wrap=True))
        argv = ["ghost-engine", "--api", "http://api.test", *(["--token", token] if token else []), *args]
        monkeypatch.setattr(cli.sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            cli.main()
            raise SystemExit(0)
        return exited.value.code or 0, stdout.getvalue(), stderr.getvalue()

    return run_cli


def submit(client, **body) -> str:
    response = client.post("/generate-scene", json={"prompt": "a spooky hallway", **body})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["jobId"]


def record(services, job_id: str, step: str, summary: str = "ok", duration_ms: int = 5) -> None:
    services_jobs = services.jobs
    services_jobs.mark_running(job_id)
    now = utc_now()
    services_jobs.record_step(
        job_id,
        StepEvent(
            step_id=f"{job_id}:{step}",
            name=step,
            started_at=now,
            ended_at=now,
            duration_ms=duration_ms,
            summary=summary,
            status=StepStatus.OK,
        ),
        total_steps=len(pipeline.STEPS),
    )


# --- exit codes -------------------------------------------------------------------------------


def test_exit_codes_0_ok_1_job_failed_2_usage_3_refused(run, client, services):
    job_id = submit(client)
    assert run("status", job_id)[0] == 0
    services.jobs.mark_failed(job_id, JobError("boom", "STEP_FAILED"))
    assert run("status", job_id)[0] == 1  # the job failed
    assert run("submit", "x", "--seed", "-1")[0] == 2  # usage
    assert run("retry", job_id, token=None)[0] == 2  # usage: no token

    unknown = run("status", str(uuid.uuid4()))
    assert unknown[0] == 3 and "JOB_NOT_FOUND" in unknown[2]
    refused = run("cancel", job_id)  # failed: cancel is a 409
    assert refused[0] == 3 and "JOB_TERMINAL" in refused[2]
    retried = run("retry", job_id)
    assert retried[0] == 0, retried
    again = run("retry", job_id)  # queued now: the retry is refused
    assert again[0] == 3 and "INVALID_TRANSITION" in again[2]
    assert run("retry", str(uuid.uuid4()))[0] == 3
    assert run("retry", job_id, token="wrong")[0] == 3  # 401
    bad_id = run("status", "00000000-0000-0000-0000-000000000000")  # refused before it is sent
    assert bad_id[0] == 2 and "version-4 UUID" in bad_id[2]
    for _, _, stderr in (unknown, refused, again, bad_id):
        assert len(stderr.strip().splitlines()) == 1, stderr


def test_a_5xx_or_an_unreachable_api_exits_2(run, services, monkeypatch):
    services.jobs.down = True
    code, _, stderr = run("jobs")
    assert code == 2 and "DEPENDENCY_UNAVAILABLE" in stderr

    def refuse(*_args, **_kwargs):
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(requests.Session, "request", refuse)
    code, _, stderr = run("jobs")
    assert code == 2 and "cannot reach the API" in stderr


# --- output -----------------------------------------------------------------------------------


def test_an_unknown_style_prints_the_styles_the_api_allows(run):
    code, _, stderr = run("submit", "a hall", "--style", "foo")
    assert code == 3
    assert "VALIDATION_ERROR: invalid style" in stderr
    assert all(style in stderr for style in pipeline.STYLES), stderr


def test_jobs_at_80_columns_never_cuts_a_job_id(run, client):
    ids = [submit(client, prompt="a very long prompt about " + "a sprawling haunted castle " * 8) for _ in range(3)]
    code, stdout, _ = run("jobs")
    assert code == 0
    assert all(len(line) <= 80 for line in stdout.splitlines()), stdout
    for job_id in ids:
        assert job_id in stdout, stdout
    assert "…" in stdout  # the prompt gave way
    assert "a very long prompt" in stdout


def test_job_lines_keep_ids_whole_at_any_width_and_show_the_age():
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    jobs = [
        {
            "jobId": str(uuid.uuid4()),
            "state": "cancelled",
            "progress": 0.5,
            "createdAt": "2026-12-06T11:57:00.000Z",
            "promptPreview": "漢字 " * 40,
        }
    ]
    for width in (40, 80, 200):
        lines = cli.job_lines(jobs, width=width, now=now)
        assert jobs[0]["jobId"] in lines[1]
        assert "3m" in lines[1] and "50%" in lines[1] and "cancelled" in lines[1]
    assert all(cell_len(line) <= 80 for line in cli.job_lines(jobs, width=80, now=now))


def test_status_of_a_cancelled_job_says_who_and_why(run, client):
    job_id = submit(client)
    assert run("cancel", job_id, "--reason", "wrong style")[0] == 0
    code, stdout, _ = run("status", job_id)
    assert code == 1
    assert re.search(r"cancelled by \S+ at \S+: wrong style", stdout), stdout


def test_progress_names_the_step_being_worked_on_not_the_last_done():
    body = {"state": "running", "steps": [{"name": "parse_prompt", "status": "ok", "summary": "Parsed"}]}
    assert cli.progress_line(body) == "running: layout_rooms"
    assert cli.progress_line({"state": "running", "steps": []}) == "running: parse_prompt"
    assert cli.progress_line({"state": "queued", "steps": []}) == "queued"
    done = [{"name": step, "status": "ok", "summary": "x"} for step in pipeline.STEPS]
    assert cli.progress_line({"state": "done", "steps": done}) == "done"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, "0 ms"), (0.3409, "340 ms"), (0.999, "999 ms"), (1.0, "1.0 s"), (12.34, "12.3 s"), (75, "1:15")],
)
def test_sub_second_durations_show_milliseconds(seconds, shown):
    assert cli.format_elapsed(seconds) == shown


def finish_job(services, job_id: str, summary: str = "A level of 9 rooms") -> None:
    for step in pipeline.STEPS:
        record(services, job_id, step, summary=summary if step == pipeline.STEPS[-1] else f"did {step}")
    services.artifacts.put(f"jobs/{job_id}/asciiMinimap.txt", b"#..#\n", "text/plain")
    services.artifacts.put(f"jobs/{job_id}/sceneGraph.json", b"{}", "application/json")
    services.jobs.mark_done(
        job_id,
        result_keys={
            "asciiMinimap": f"jobs/{job_id}/asciiMinimap.txt",
            "sceneGraph": f"jobs/{job_id}/sceneGraph.json",
            "result": f"jobs/{job_id}/result.json",
        },
        summary=summary,
    )


def test_wait_prints_the_final_summary_once_and_the_elapsed_time_in_ms(run, services, monkeypatch):
    """submit --wait on a job the fake finishes as soon as it is queued: well under a second."""
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    real_call = cli.ApiClient.call

    def call(self, method, path, **kwargs):
        body = real_call(self, method, path, **kwargs)
        if method == "POST" and path == "/generate-scene":
            finish_job(services, body["jobId"])
        return body

    monkeypatch.setattr(cli.ApiClient, "call", call)
    code, stdout, stderr = run("submit", "a hall", "--wait")
    assert code == 0, stderr
    assert stdout == "#..#\n"
    assert stderr.count("A level of 9 rooms") == 1, stderr
    assert re.search(r"\b\d+ ms\b", stderr) and "0:00:00" not in stderr, stderr


def test_retry_wait_follows_the_job_like_submit_wait(run, client, services, monkeypatch, tmp_path):
    job_id = submit(client)
    services.jobs.mark_failed(job_id, JobError("boom", "STEP_FAILED"))
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    real_call = cli.ApiClient.call

    def call(self, method, path, **kwargs):
        body = real_call(self, method, path, **kwargs)
        if method == "POST" and path.endswith("/retry"):
            finish_job(services, job_id, summary="Retried level")
        return body

    monkeypatch.setattr(cli.ApiClient, "call", call)
    code, stdout, stderr = run("retry", job_id, "--wait", "--timeout", "5", "--out", str(tmp_path))
    assert code == 0, stderr
    assert "attempt 2" in stderr and stderr.count("Retried level") == 1
    assert stdout == "#..#\n"
    assert (tmp_path / "asciiMinimap.txt").read_bytes() == b"#..#\n"


def after_post(monkeypatch, path_end: str, then) -> None:
    """``then(jobId)`` once the API has answered the CLI's POST to a path ending in ``path_end``."""
    real_call = cli.ApiClient.call

    def call(self, method, path, **kwargs):
        body = real_call(self, method, path, **kwargs)
        if method == "POST" and path.endswith(path_end):
            then(body["jobId"])
        return body

    monkeypatch.setattr(cli.ApiClient, "call", call)


def reply(status: int, body: dict | bytes = b"", content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if isinstance(body, dict) else body
    response.headers["Content-Type"] = content_type
    return response


def failing_status_polls(monkeypatch, failures) -> None:
    """The CLI's GETs of a job's status meet ``failures`` (exceptions to raise, responses to return) first."""
    real = requests.Session.request

    def request(self, method, url, **kwargs):
        failure = next(failures, None) if method == "GET" and "/status/" in url else None
        if isinstance(failure, Exception):
            raise failure
        return failure if failure is not None else real(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)


THROTTLED = {"error": {"code": "DEPENDENCY_THROTTLED", "message": "dynamodb is throttling"}}


# --- server text is shown, never acted on ------------------------------------------------------

EVIL = "evil \x1b]0;PWNED\x07\x1b[2J \x9b31m \x7f end"


def test_printable_shows_c0_del_and_c1_as_escapes():
    assert cli.printable(EVIL) == "evil \\x1b]0;PWNED\\x07\\x1b[2J \\x9b31m \\x7f end"
    assert cli.printable("two\nlines\tand a tab", keep="\n") == "two\nlines\\x09and a tab"
    assert cli.printable("café ✓ 漢字 [b]") == "café ✓ 漢字 [b]"


def test_prompts_and_messages_reach_the_terminal_without_control_characters(run, client, services):
    job_id = submit(client, prompt=EVIL)
    services.jobs.mark_failed(job_id, JobError(f"step said {EVIL}", "STEP_FAILED"))
    listed, shown = run("jobs"), run("status", job_id)
    for _, stdout, stderr in (listed, shown):
        assert not cli.CONTROL.search((stdout + stderr).replace("\n", "")), repr(stdout + stderr)
    assert "evil \\x1b]0;PWNED" in listed[1]
    assert "step said evil \\x1b]0;PWNED\\x07" in shown[1]


def test_server_text_is_never_read_as_markup(run, services, monkeypatch):
    failed = JobError("disk [/] full [bold]", "STEP_FAILED")
    after_post(monkeypatch, "/generate-scene", lambda job_id: services.jobs.mark_failed(job_id, failed))
    code, _, stderr = run("submit", "a hall", "--wait")
    assert code == 1, stderr
    assert re.search(r"job \S+ failed: STEP_FAILED: disk \[/\] full \[bold\]\n", stderr), stderr


# --- --wait: transient failures, the deadline, Ctrl-C ----------------------------------------


def test_wait_rides_out_transient_failures_of_the_api(run, services, monkeypatch):
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    after_post(monkeypatch, "/generate-scene", lambda job_id: finish_job(services, job_id))
    gateway = reply(502, b"<html>Bad Gateway</html>", "text/html")
    failures = [reply(503, THROTTLED), gateway, requests.ConnectionError("dropped"), requests.Timeout(), reply(429)]
    failing_status_polls(monkeypatch, iter(failures))
    code, stdout, stderr = run("submit", "a hall", "--wait")
    assert code == 0, stderr
    assert stdout == "#..#\n"
    assert stderr.count("trying again") == 1 and "DEPENDENCY_THROTTLED" in stderr, stderr


def test_wait_gives_up_at_the_timeout_and_says_how_to_follow_the_job(run, services, monkeypatch, clock):
    failing_status_polls(monkeypatch, itertools.repeat(reply(503, THROTTLED)))
    started = clock.now
    code, _, stderr = run("submit", "a hall", "--wait", "--timeout", "20")
    [job_id] = services.jobs.jobs
    assert code == 2
    assert clock.now == pytest.approx(started + 20)
    assert f"may still be queued: ghost-engine --api http://api.test status {job_id}" in stderr, stderr


def test_a_4xx_while_waiting_ends_the_wait_at_once(run, monkeypatch, clock):
    gone = reply(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no such job"}})
    failing_status_polls(monkeypatch, iter([gone]))
    started = clock.now
    code, _, stderr = run("submit", "a hall", "--wait")
    assert code == 3 and "JOB_NOT_FOUND" in stderr and clock.now == started


def test_ctrl_c_while_waiting_exits_130_and_says_how_to_follow_the_job(run, services, monkeypatch):
    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.time, "sleep", interrupt)
    code, _, stderr = run("submit", "a hall", "--wait")
    [job_id] = services.jobs.jobs
    assert code == 130
    assert f"job {job_id} is still queued; follow it with: ghost-engine --api http://api.test status {job_id}" in stderr


def test_ctrl_c_anywhere_else_exits_130_without_a_traceback(run, monkeypatch):
    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(requests.Session, "request", interrupt)
    assert run("jobs") == (130, "", "interrupted\n")


@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "inf"])
def test_a_timeout_that_is_not_seconds_above_0_is_a_usage_error_before_submitting(run, sent, wire, timeout):
    code, _, stderr = run("submit", "a hall", "--wait", "--timeout", timeout)
    assert code == 2 and "usage error" in stderr and "--timeout" in stderr, stderr
    assert wire == [] and sent == []


def test_wait_on_a_cancelled_job_says_who_cancelled_it_and_why(run, services, monkeypatch):
    def cancel(job_id):
        services.jobs.mark_cancelled(job_id, by="ops", reason="wrong style")

    after_post(monkeypatch, "/generate-scene", cancel)
    code, _, stderr = run("submit", "a hall", "--wait")
    assert code == 1 and re.search(r"job \S+ cancelled by ops: wrong style\n", stderr), stderr
    assert cli.how_it_ended({"state": "cancelled", "cancellation": None}) == ""
    assert cli.how_it_ended({"state": "failed", "error": None}) == ""


# --- --out ------------------------------------------------------------------------------------


def test_an_out_dir_that_cannot_be_made_is_a_usage_error_before_submitting(run, sent, wire, tmp_path):
    (tmp_path / "file").write_text("in the way")
    code, _, stderr = run("submit", "a hall", "--wait", "--out", str(tmp_path / "file" / "level"))
    assert code == 2 and "cannot make" in stderr and "--out" in stderr, stderr
    assert wire == [] and sent == []


def test_an_artifact_that_cannot_be_written_exits_4_not_1(run, services, monkeypatch, tmp_path):
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    after_post(monkeypatch, "/generate-scene", lambda job_id: finish_job(services, job_id))
    (tmp_path / "sceneGraph.json").mkdir()  # where the file would go
    code, stdout, stderr = run("submit", "a hall", "--wait", "--out", str(tmp_path))
    assert code == 4 and stdout == "#..#\n"
    assert re.search(r"is done, but \S+sceneGraph.json: Is a directory\n", stderr), stderr


def test_out_implies_wait_and_cannot_go_with_no_wait(run, services, monkeypatch, tmp_path, wire):
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    after_post(monkeypatch, "/generate-scene", lambda job_id: finish_job(services, job_id))
    code, stdout, stderr = run("submit", "a hall", "--out", str(tmp_path))
    assert code == 0 and stdout == "#..#\n", stderr
    assert (tmp_path / "asciiMinimap.txt").read_bytes() == b"#..#\n"
    wire.clear()
    code, _, stderr = run("submit", "a hall", "--no-wait", "--out", str(tmp_path))
    assert code == 2 and "--no-wait" in stderr and wire == []


# --- what is sent -----------------------------------------------------------------------------


def test_a_non_json_answer_names_the_url_and_is_not_taken_for_the_api(run):
    code, _, stderr = run("--api", "http://api.test/console", "jobs")
    assert code == 2
    assert "http://api.test/console/jobs?limit=20 answered HTTP 200 (text/html" in stderr, stderr
    assert "not the JSON of the ghost-engine API" in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("api", ["127.0.0.1:8110", "localhost:8000", "ftp://api.test", "http://", "http://api:port"])
def test_an_api_that_is_not_an_http_url_with_a_host_is_a_usage_error(run, wire, api):
    code, _, stderr = run("--api", api, "jobs")
    assert code == 2 and "usage error" in stderr and repr(api) in stderr, stderr
    assert wire == []


@pytest.mark.parametrize("given", ["../jobs", "{id}?x=1", "{id}/../../jobs", "{upper}", ""])
def test_a_job_id_is_checked_before_it_goes_in_a_path(run, client, wire, given):
    job_id = submit(client)
    for command in ("status", "retry", "cancel"):
        code, _, stderr = run(command, given.format(id=job_id, upper=job_id.upper()))
        assert code == 2 and "is not a job id" in stderr, stderr
    assert wire == []


def test_a_reason_goes_as_utf8_and_cannot_hold_a_control_character(run, client, wire):
    job_id = submit(client)
    code, _, stderr = run("cancel", job_id, "--reason", " café ✓ ")
    assert code == 0, stderr
    assert wire[-1].headers["X-Cancel-Reason"] == "café ✓".encode()
    assert re.search(r"cancelled by \S+ at \S+: café ✓\n", run("status", job_id)[1])
    wire.clear()
    for reason in ("two\nlines", "a\ttab", "esc\x1b[2J"):
        code, _, stderr = run("retry", job_id, "--reason", reason)
        assert code == 2 and "control characters" in stderr, stderr
    assert wire == []


def test_a_repeat_with_the_same_idempotency_key_gets_the_same_job(run, services, wire):
    first = run("submit", "a hall", "--idempotency-key", "nightly-42")
    again = run("submit", "a hall", "--idempotency-key", "nightly-42")
    assert first[0] == again[0] == 0 and first[1] == again[1], again
    assert len(services.jobs.jobs) == 1 and wire[0].headers["Idempotency-Key"] == "nightly-42"
    for bad in ("has space", "k1,k2", "x" * 256, "café"):
        code, _, stderr = run("submit", "a hall", "--idempotency-key", bad)
        assert code == 2 and "--idempotency-key" in stderr, stderr
    assert len(wire) == 2


@pytest.mark.parametrize("key", ["", "a b", "a,b", "é", "x" * 256])
def test_a_key_the_api_would_refuse_is_a_usage_error_before_anything_is_sent(run, wire, key):
    code, _, stderr = run("submit", "a hall", "--idempotency-key", key)
    assert code == 2 and "--idempotency-key" in stderr and wire == []


def test_submit_tries_a_lost_post_again_under_the_same_key_making_one_job(run, services, monkeypatch, wire):
    real = requests.Session.request
    answers = itertools.count()

    def request(self, method, url, **kwargs):
        response = real(self, method, url, **kwargs)
        if method == "POST" and next(answers) == 0:
            raise requests.ConnectionError("the answer was lost")
        return response

    monkeypatch.setattr(requests.Session, "request", request)
    code, stdout, stderr = run("submit", "a hall")
    assert code == 0, stderr
    assert list(services.jobs.jobs) == [stdout.strip()]
    first, second = (request.headers["Idempotency-Key"] for request in wire)
    assert first == second and "trying again" in stderr


def test_a_post_never_answered_names_the_key_to_try_again_with(run, monkeypatch, clock):
    def refuse(*_args, **_kwargs):
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(requests.Session, "request", refuse)
    started = clock.now
    code, _, stderr = run("submit", "a hall")
    assert code == 2 and clock.now == pytest.approx(started + cli.SUBMIT_PATIENCE_SECONDS)
    assert re.search(r"--idempotency-key [0-9a-f-]{36}\)", stderr), stderr


# --- jobs: pages, a closed pipe ---------------------------------------------------------------


def test_jobs_says_how_to_see_the_next_page(run, client):
    ids = {submit(client) for _ in range(3)}
    code, first, stderr = run("jobs", "--limit", "2")
    assert code == 0 and len(first.splitlines()) == 3
    more = shlex.split(stderr.removeprefix("more: "))
    assert more[:6] == ["ghost-engine", "--api", "http://api.test", "jobs", "--limit", "2"], stderr
    code, rest, stderr = run(*more[3:])
    assert code == 0 and stderr == ""
    assert {row.split()[0] for row in first.splitlines()[1:] + rest.splitlines()[1:]} == ids


class ClosedPipe(io.StringIO):
    """stdout once its reader has gone (``| head -1``)."""

    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_exits_141_quietly(run, client, monkeypatch):
    submit(client)
    monkeypatch.setattr(cli.sys, "stdout", io.StringIO())  # not a file: nothing to point at /dev/null
    assert run("jobs", stdout=ClosedPipe()) == (141, "", "")


# --- --json -----------------------------------------------------------------------------------


@pytest.fixture
def answers(monkeypatch) -> list:
    """Every JSON body the API answered the CLI's calls with, in order."""
    answered: list = []
    real_call = cli.ApiClient.call

    def call(self, method, path, **kwargs):
        answered.append(real_call(self, method, path, **kwargs))
        return answered[-1]

    monkeypatch.setattr(cli.ApiClient, "call", call)
    return answered


def one_document(text: str):
    """The one line of JSON ``text`` holds, with its trailing newline."""
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    return json.loads(text)


def test_status_json_is_the_apis_status_body_even_for_a_failed_job(run, client, services):
    job_id = submit(client)
    code, stdout, stderr = run("--json", "status", job_id)
    assert (code, stderr) == (0, "")
    body = client.get(f"/status/{job_id}").get_json()
    assert stdout == json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n"  # compact, one line
    services.jobs.mark_failed(job_id, JobError("boom", "STEP_FAILED"))
    code, stdout, stderr = run("--json", "status", job_id)
    assert (code, stderr) == (1, "")  # exit 1 as without --json, and nothing said on stderr
    assert one_document(stdout) == client.get(f"/status/{job_id}").get_json()


def test_jobs_json_is_the_apis_page_with_no_hint_on_stderr(run, client):
    for _ in range(3):
        submit(client)
    code, stdout, stderr = run("--json", "jobs", "--limit", "2")
    assert (code, stderr) == (0, "")
    page = one_document(stdout)
    assert page == client.get("/jobs?limit=2").get_json() and page["nextCursor"]


def test_submit_json_is_the_apis_202_body(run, answers, services):
    code, stdout, stderr = run("--json", "submit", "a hall", "--seed", "7")
    assert (code, stderr) == (0, "")
    [accepted] = answers
    assert one_document(stdout) == accepted and accepted["jobId"] in services.jobs.jobs


def test_submit_wait_json_prints_only_the_final_status_and_still_saves(run, client, services, monkeypatch, tmp_path):
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    after_post(monkeypatch, "/generate-scene", lambda job_id: finish_job(services, job_id))
    code, stdout, stderr = run("--json", "submit", "a hall", "--wait", "--out", str(tmp_path))
    assert (code, stderr) == (0, "")  # no progress bar, no notes, no "saved" line
    final = one_document(stdout)
    assert final["state"] == "done" and final == client.get(f"/status/{final['jobId']}").get_json()
    assert (tmp_path / "asciiMinimap.txt").read_bytes() == b"#..#\n"


def test_wait_json_on_a_failed_job_prints_its_status_and_exits_1(run, services, monkeypatch):
    after_post(monkeypatch, "/generate-scene", lambda job_id: services.jobs.mark_failed(job_id, JobError("x", "BOOM")))
    code, stdout, stderr = run("--json", "submit", "a hall", "--wait")
    assert (code, stderr) == (1, "")
    assert one_document(stdout)["error"]["code"] == "BOOM"


def test_retry_and_cancel_json_are_the_apis_bodies(run, client, services, answers):
    job_id = submit(client)
    code, stdout, stderr = run("--json", "cancel", job_id, "--reason", "wrong style")
    assert (code, stderr) == (0, "")
    assert one_document(stdout) == answers[-1] and answers[-1]["state"] == "cancelled"
    failed = submit(client)
    services.jobs.mark_failed(failed, JobError("boom", "STEP_FAILED"))
    code, stdout, stderr = run("--json", "retry", failed)
    assert (code, stderr) == (0, "")
    assert one_document(stdout) == answers[-1] and answers[-1]["attempt"] == 2


def test_a_refusal_in_json_is_the_apis_code_on_stderr_with_exit_3(run, client):
    code, stdout, stderr = run("--json", "status", str(uuid.uuid4()))
    assert (code, stdout) == (3, "")
    error = one_document(stderr)["error"]
    assert error["code"] == "JOB_NOT_FOUND" and "JOB_NOT_FOUND" in error["message"]
    job_id = submit(client)
    code, _, stderr = run("--json", "retry", job_id)  # queued: not retryable
    assert code == 3 and one_document(stderr)["error"]["code"] == "INVALID_TRANSITION"


@pytest.mark.parametrize(
    "args",
    [
        ("--json", "submit", "x", "--seed", "-1"),
        ("--json", "status", "not-a-job-id"),
        ("--api", "ftp://api.test", "--json", "jobs"),  # --json is read first, whatever comes before it
        ("--json", "cancel", "00000000-0000-4000-8000-000000000000"),  # no token
    ],
)
def test_a_usage_error_in_json_is_code_usage_with_exit_2(run, wire, args):
    code, stdout, stderr = run(*args, token=None)
    assert (code, stdout, wire) == (2, "", [])
    error = one_document(stderr)["error"]
    assert error["code"] == "USAGE" and not error["message"].startswith("usage error"), error


def test_each_failure_of_the_cli_has_its_code_in_json(run, services, monkeypatch):
    services.jobs.down = True
    code, _, stderr = run("--json", "jobs")
    assert code == 2 and one_document(stderr)["error"]["code"] == "UNREACHABLE"
    services.jobs.down = False
    code, _, stderr = run("--json", "--api", "http://api.test/console", "jobs")
    assert code == 2 and one_document(stderr)["error"]["code"] == "NOT_THE_API"
    failing_status_polls(monkeypatch, itertools.repeat(reply(503, THROTTLED)))
    code, _, stderr = run("--json", "submit", "a hall", "--wait", "--timeout", "5")
    assert code == 2 and one_document(stderr)["error"]["code"] == "GAVE_UP"  # one line: no "trying again" note

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.time, "sleep", interrupt)
    code, _, stderr = run("--json", "submit", "a hall", "--wait")
    assert code == 130 and one_document(stderr)["error"]["code"] == "INTERRUPTED"


def test_an_artifact_not_saved_in_json_is_not_saved_with_exit_4(run, services, monkeypatch, tmp_path):
    monkeypatch.setattr(cli.ApiClient, "download", lambda self, url: b"#..#\n")
    after_post(monkeypatch, "/generate-scene", lambda job_id: finish_job(services, job_id))
    (tmp_path / "sceneGraph.json").mkdir()
    code, stdout, stderr = run("--json", "submit", "a hall", "--out", str(tmp_path))
    assert code == 4 and one_document(stdout)["state"] == "done"
    assert one_document(stderr)["error"]["code"] == "NOT_SAVED"


def test_ghost_json_1_in_the_environment_is_json(run, client, monkeypatch):
    job_id = submit(client)
    monkeypatch.setenv("GHOST_JSON", "1")
    code, stdout, _ = run("status", job_id)
    assert code == 0 and one_document(stdout) == client.get(f"/status/{job_id}").get_json()


def test_json_escapes_every_control_character_and_keeps_the_text(run, client):
    submit(client, prompt=f"{EVIL} café")
    code, stdout, _ = run("--json", "jobs")
    assert code == 0 and not cli.CONTROL.search(stdout.rstrip("\n")), repr(stdout)
    assert "\\u009b31m" in stdout and "\\u007f" in stdout and "café" in stdout  # DEL and C1 escaped too
    assert one_document(stdout) == client.get("/jobs").get_json()


def test_a_closed_stdout_in_json_exits_141_quietly(run, client, monkeypatch):
    submit(client)
    monkeypatch.setattr(cli.sys, "stdout", io.StringIO())
    assert run("--json", "jobs", stdout=ClosedPipe()) == (141, "", "")

"""The ghost-engine command line against the real Flask app on fakes of our stores (no network).

The CLI's HTTP session is handed to the app through a small requests adapter over Flask's test
client, so every answer the CLI prints or exits on is the API's own.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime

import pytest
import requests
from requests.adapters import BaseAdapter
from rich.cells import cell_len
from rich.console import Console

import pipeline
from api import cli
from storage.model import JobError, StepEvent, StepStatus, utc_now

TOKEN = "unit-token"


class FlaskAdapter(BaseAdapter):
    """requests -> Flask test client: the CLI's requests answered by the app in-process."""

    def __init__(self, app) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request, **_kwargs):
        url = request.url.split("://", 1)[1]
        path = "/" + url.split("/", 1)[1] if "/" in url else "/"
        answer = self.client.open(path, method=request.method, headers=dict(request.headers), data=request.body)
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


@pytest.fixture
def run(app, monkeypatch):
    """Run the CLI as its entry point does: (exit code, stdout, stderr), on an 80-column terminal."""
    adapter = FlaskAdapter(app)
    real_init = cli.ApiClient.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.session.mount("http://", adapter)

    monkeypatch.setattr(cli.ApiClient, "__init__", init)
    monkeypatch.setattr(cli.time, "sleep", lambda _s: None)

    def run_cli(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        monkeypatch.setattr(cli, "out", Console(file=stdout, width=80, soft_wrap=True))
        monkeypatch.setattr(cli, "err", Console(file=stderr, width=80, soft_wrap=True))
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
    bad_id = run("status", "00000000-0000-0000-0000-000000000000")
    assert bad_id[0] == 3 and "version-4 UUID" in bad_id[2]
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

"""The ghost-engine command line against the running API, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pipeline
from pipeline.picture import render_png
from tasks.artifacts import doom_map
from tasks.doom_nodes import node_builder

pytestmark = pytest.mark.integration


def ghost(live, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**live.stack.env, "GHOST_API_URL": live.url}
    env.pop("INTERNAL_TOKEN", None)
    if token:
        env["INTERNAL_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        cwd=live.stack_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cli_stack(make_stack):
    return make_stack({"FAULT_DRILLS": "1", "INTERNAL_TOKEN": "cli-token"})


def test_submit_wait_shows_progress_prints_the_minimap_and_saves_artifacts(cli_stack, tmp_path):
    result = ghost(
        cli_stack, "submit", "a spooky hallway", "--seed", "123", "--style", "doom", "--wait", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    data: dict = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    assert result.stdout == data["asciiMinimap"]
    # The progress bar's last frame (live only on a terminal) says done; the summary comes once, after it.
    assert "done" in result.stderr and result.stderr.count("Drew a") == 1, result.stderr
    assert (tmp_path / "asciiMinimap.txt").read_text() == data["asciiMinimap"]
    assert (tmp_path / "sceneGraph.json").read_bytes() == pipeline.encode_json(data["sceneGraph"])
    assert (tmp_path / "minimap.png").read_bytes() == render_png(data["sceneGraph"])
    # map.wad too, where the worker has zdbsp (it is skipped without).
    saved = ["asciiMinimap.txt", *(["map.wad"] if node_builder() else []), "minimap.png", "sceneGraph.json"]
    assert f"saved {', '.join(saved)} in" in result.stderr
    if node_builder():
        assert (tmp_path / "map.wad").read_bytes() == doom_map(data)


def test_a_failed_job_exits_1_and_status_and_jobs_show_it(cli_stack):
    job_id = cli_stack.submit(headers={"X-Fault-Drill": "fail:populate"})["jobId"]
    cli_stack.wait_terminal(job_id)

    status = ghost(cli_stack, "status", job_id)
    assert status.returncode == 1 and "FAULT_DRILL" in status.stdout
    listed = ghost(cli_stack, "jobs", "--state", "failed", "--limit", "100")
    assert listed.returncode == 0 and job_id[:8] in listed.stdout

    assert ghost(cli_stack, "retry", job_id).returncode == 2  # operators only: no token
    retried = ghost(cli_stack, "retry", job_id, "--wait", "--reason", "drill over", token="cli-token")
    assert retried.returncode == 0, retried.stderr
    assert "attempt 2" in retried.stderr
    assert cli_stack.status(job_id)["attempts"][0]["reason"] == "drill over"


def test_cancel_from_the_cli(cli_stack):
    job_id = cli_stack.submit(headers={"X-Fault-Drill": "slow:parse_prompt"})["jobId"]
    result = ghost(cli_stack, "cancel", job_id, "--reason", "wrong style", token="cli-token")
    assert result.returncode == 0 and "cancelled" in result.stdout
    status = ghost(cli_stack, "status", job_id)
    assert status.returncode == 1
    assert "cancelled by " in status.stdout and ": wrong style" in status.stdout, status.stdout
    assert cli_stack.status(job_id)["cancellation"]["reason"] == "wrong style"
    # The API refuses (409, 404): exit 3, apart from usage and connection errors (2).
    refused = ghost(cli_stack, "retry", job_id, token="cli-token")
    assert refused.returncode == 3 and "INVALID_TRANSITION" in refused.stderr, refused.stderr
    unknown = ghost(cli_stack, "status", "4f0c7b1e-1d2a-4b3c-8d4e-5f6a7b8c9d0e")
    assert unknown.returncode == 3 and "JOB_NOT_FOUND" in unknown.stderr


def test_usage_and_connection_errors_exit_2_with_one_line(cli_stack):
    bad_seed = ghost(cli_stack, "submit", "x", "--seed", "-5")
    assert bad_seed.returncode == 2 and len(bad_seed.stderr.strip().splitlines()) == 1
    invalid = ghost(cli_stack, "submit", " ")
    assert invalid.returncode == 3 and "VALIDATION_ERROR" in invalid.stderr  # the API refused it
    env = {**cli_stack.stack.env, "GHOST_API_URL": "http://127.0.0.1:9"}
    down = subprocess.run(
        [sys.executable, "-m", "api.cli", "jobs"],
        env=env,
        cwd=cli_stack.stack_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 2
    assert down.stderr.strip().splitlines() == [down.stderr.strip()] and "cannot reach the API" in down.stderr

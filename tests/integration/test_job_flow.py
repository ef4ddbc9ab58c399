"""A job through the real parts: gunicorn API -> Celery over SQS -> DynamoDB -> S3, on the emulator."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import pipeline
from pipeline.picture import render_png
from tasks.checkpoints import checkpoint_key

pytestmark = pytest.mark.integration


def test_default_job_reaches_done_with_one_entry_per_step(live):
    started = time.monotonic()
    accepted = live.submit()
    body = live.wait_terminal(accepted["jobId"], timeout=10)
    elapsed = time.monotonic() - started

    assert body["state"] == "done", body
    assert [step["name"] for step in body["steps"]] == list(pipeline.STEPS)
    assert [step["stepId"] for step in body["steps"]] == [f"{accepted['jobId']}:{s}" for s in pipeline.STEPS]
    assert all(step["status"] == "ok" and step["summary"] for step in body["steps"])
    assert body["progress"] == 1.0
    assert body["request"] == {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
    item = live.raw_item(accepted["jobId"])
    assert sorted(item["stepIds"]["SS"]) == sorted(f"{accepted['jobId']}:{s}" for s in pipeline.STEPS)
    assert elapsed < 10, f"a default job took {elapsed:.1f}s"


def test_presigned_urls_return_the_artifact_bytes(live):
    job_id = live.submit()["jobId"]
    result = live.wait_terminal(job_id)["result"]

    scene = requests.get(result["sceneGraphUrl"], timeout=10)
    minimap = requests.get(result["asciiMinimapUrl"], timeout=10)
    assert scene.status_code == 200 and minimap.status_code == 200
    # Byte-identical to what the pure pipeline gives for the same request.
    data: dict = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    assert scene.content == pipeline.encode_json(data["sceneGraph"])
    assert minimap.content.decode() == data["asciiMinimap"]
    png = requests.get(result["minimapPngUrl"], timeout=10)
    assert png.status_code == 200 and png.content == render_png(data["sceneGraph"])
    assert result["minimapPngKey"] == f"jobs/{job_id}/minimap.png"
    assert result["sceneGraphKey"] == f"jobs/{job_id}/sceneGraph.json"
    assert result["asciiMinimapKey"] == f"jobs/{job_id}/asciiMinimap.txt"
    expires = parse_qs(urlsplit(result["sceneGraphUrl"]).query)["X-Amz-Expires"]
    assert expires == ["900"]
    # A default level's checkpoints were each kept by its step's record, in the job's item, never
    # in S3; the last record removed the last of them. result.json names the artifacts.
    for step in pipeline.STEPS:
        assert not live.services.artifacts.exists(checkpoint_key(job_id, step))
    assert "checkpoint" not in live.raw_item(job_id)
    stored = json.loads(live.services.artifacts.get(f"jobs/{job_id}/result.json"))
    assert stored["artifacts"]["sceneGraph"] == result["sceneGraphKey"]


def test_artifact_route_redirects_to_the_presigned_url(live):
    job_id = live.submit()["jobId"]
    live.wait_terminal(job_id)
    response = requests.get(f"{live.url}/jobs/{job_id}/artifacts/asciiMinimap.txt", timeout=10)
    assert response.status_code == 200
    assert "@" in response.text and ">" in response.text and "Legend" in response.text


def test_worker_log_lines_carry_the_request_id_of_the_submission(live):
    request_id = "smoke-req-4242"
    job_id = live.submit(headers={"X-Request-Id": request_id})["jobId"]
    live.wait_terminal(job_id)
    lines = [json.loads(line) for line in live.log_lines("worker1") if line.startswith("{")]
    mine = [line for line in lines if line.get("jobId") == job_id and "event" in line]  # not EMF lines
    recorded = [line for line in mine if line.get("event") == "step.recorded"]
    assert len(recorded) == len(pipeline.STEPS)
    assert all(line["requestId"] == request_id for line in mine)
    assert all(line["service"] == "worker" and line["timestamp"] and line["level"] for line in mine)
    api_lines = [json.loads(line) for line in live.log_lines("api") if line.startswith("{")]
    assert any(line.get("requestId") == request_id and line.get("service") == "api" for line in api_lines)


def test_each_pool_process_builds_its_stores_as_it_is_forked(live):
    """Not in its first step (tasks/celery_app.py: WarmPoolStep), so a fresh worker's first job
    does not wait for boto3 to load its models in each process."""
    live.wait_terminal(live.submit()["jobId"])
    lines = [json.loads(line) for line in live.log_lines("worker1") if line.startswith("{")]
    warmed = {line["pid"] for line in lines if line.get("event") == "worker.process_warmed"}
    assert len(warmed) >= live.stack.config.worker_concurrency, warmed
    assert not [line for line in lines if line.get("event") == "worker.process_warm_failed"]


def test_every_worker_and_api_process_freezes_what_it_holds_once_started(live):
    """tasks/heap.py: the worker's main process before its pool forks and once its consumer is set
    up; each pool process once it has built its clients; each API worker once it has built the app
    and what it sends jobs with. A full collection then walks none of it."""
    live.wait_terminal(live.submit()["jobId"])
    events = live.log_events("worker1")
    frozen = {e["stage"]: e["frozenObjects"] for e in events if e.get("event") == "worker.heap_frozen"}
    assert frozen.keys() == {"before its pool forks", "once its consumer is set up"}, frozen
    warmed = [e for e in events if e.get("event") == "worker.process_warmed"]
    assert len(warmed) >= live.stack.config.worker_concurrency
    # Its own freeze, beyond what it inherited: the boto3 clients it built (about 90,000 objects).
    assert all(e["frozenObjects"] > frozen["before its pool forks"] + 50_000 for e in warmed), (frozen, warmed)
    api = [e for e in live.log_events("api") if e.get("event") == "api.heap_frozen"]
    assert len({e["pid"] for e in api}) == live.stack.config.api_workers, api
    assert all(e["frozenObjects"] > 100_000 for e in api), api
    # ...having built the producer and SQS client its first submission sends with.
    warmed = [e for e in live.log_events("api") if e.get("event", "").startswith("api.sender_warm")]
    assert {e["event"] for e in warmed} == {"api.sender_warmed"}, warmed
    assert {e["pid"] for e in warmed} == {e["pid"] for e in api}


def test_the_api_opens_no_control_socket_another_stack_could_take(live):
    """gunicorn's control socket has one path per user: two stacks on a machine shared it
    (api/gunicorn_conf.py turns it off)."""
    gunicorn = [e["event"] for e in live.log_events("api") if e.get("logger") == "gunicorn.error"]
    assert any(event.startswith("Booting worker") for event in gunicorn), gunicorn  # its lines are read
    assert not [event for event in gunicorn if "ontrol socket" in event], gunicorn


def test_forced_step_failure_ends_failed_with_earlier_steps_intact(live):
    job_id = live.submit(headers={"X-Fault-Drill": "fail:connect_doors"})["jobId"]
    body = live.wait_terminal(job_id)

    assert body["state"] == "failed"
    assert body["error"]["code"] == "FAULT_DRILL"
    assert body["error"]["details"]["step"] == "connect_doors"
    assert [(s["name"], s["status"]) for s in body["steps"]] == [
        ("parse_prompt", "ok"),
        ("layout_rooms", "ok"),
        ("connect_doors", "error"),
    ]
    assert body["result"] is None
    assert body["progress"] == pytest.approx(2 / len(pipeline.STEPS), abs=1e-5)  # two steps of six


def test_the_worker_writes_emf_metrics_for_steps_and_outcomes(live):
    ok = live.submit()["jobId"]
    bad = live.submit(headers={"X-Fault-Drill": "fail:layout_rooms"})["jobId"]
    live.wait_terminal(ok)
    live.wait_terminal(bad)
    emf = [e for e in live.worker_events() if "_aws" in e]

    def of(job_id: str, name: str) -> list[dict]:
        return [e for e in emf if e.get("jobId") == job_id and name in e]

    assert sorted(e["Step"] for e in of(ok, "StepDurationMs")) == sorted(pipeline.STEPS)
    assert len(of(ok, "JobSucceeded")) == 1 and of(ok, "JobSucceeded")[0]["JobDurationMs"] > 0
    assert [e["Step"] for e in of(bad, "StepErrors")] == ["layout_rooms"]
    assert len(of(bad, "JobFailed")) == 1 and of(bad, "JobFailed")[0]["code"] == "FAULT_DRILL"
    namespaces = {d["Namespace"] for e in emf for d in e["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"GhostEngine"}

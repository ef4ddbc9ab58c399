"""Behaviour that needs its own processes: restarts, a broken broker, demo mode, listing over HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from pipeline.picture import render_png

pytestmark = pytest.mark.integration


def test_status_survives_restarting_the_api_and_the_worker(make_stack):
    live = make_stack()
    job_id = live.submit()["jobId"]
    before = live.wait_terminal(job_id)
    assert before["state"] == "done"

    live.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{live.url}/healthz", timeout=2)
    time.sleep(1.5)  # let the stopped worker's last long poll (1 s here) expire
    live.start_worker()
    live.start_api()

    after = live.status(job_id)
    for key in ("state", "steps", "progress", "createdAt", "updatedAt", "request", "error"):
        assert after[key] == before[key]
    assert after["result"]["sceneGraphKey"] == before["result"]["sceneGraphKey"]
    # And the restarted pair still runs new jobs.
    assert live.wait_terminal(live.submit()["jobId"])["state"] == "done"


def test_a_send_failure_fails_the_job_with_enqueue_failed(make_stack):
    # The queue URL points at a closed port: every send fails, quickly.
    live = make_stack(
        {"SQS_QUEUE_URL": "http://127.0.0.1:9/000000000000/nowhere", "BROKER_URL": "sqs://test:test@127.0.0.1:9"},
        worker=False,
    )
    response = requests.post(f"{live.url}/generate-scene", json={"prompt": "a spooky hallway"}, timeout=30)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "ENQUEUE_FAILED"
    job = live.status(error["details"]["jobId"])
    assert job["state"] == "failed"  # never left queued with no message
    assert job["error"]["code"] == "ENQUEUE_FAILED"


def test_demo_mode_inlines_the_artifacts(make_stack):
    live = make_stack({"ARTIFACTS_BUCKET": ""})
    job_id = live.submit()["jobId"]
    result = live.wait_terminal(job_id)["result"]
    assert "sceneGraphUrl" not in result
    assert result["sceneGraph"]["prompt"] == "a spooky hallway"
    assert "@" in result["asciiMinimap"] and ">" in result["asciiMinimap"]
    served = requests.get(f"{live.url}/jobs/{job_id}/artifacts/asciiMinimap.txt", timeout=10)
    assert served.status_code == 200 and served.text == result["asciiMinimap"]
    # minimap.png is not inlined: its URL is the API's own path, which serves the bytes.
    assert result["minimapPngUrl"] == f"/jobs/{job_id}/artifacts/minimap.png"
    png = requests.get(f"{live.url}{result['minimapPngUrl']}", timeout=10)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content == render_png(result["sceneGraph"])


def test_demo_mode_fails_a_scene_too_large_to_inline(make_stack):
    live = make_stack({"ARTIFACTS_BUCKET": "", "INLINE_ARTIFACT_MAX_BYTES": "1024"})
    body = live.wait_terminal(live.submit()["jobId"])
    assert body["state"] == "failed"
    assert body["error"]["code"] == "ARTIFACT_TOO_LARGE"
    assert body["error"]["details"]["limit"] == 1024
    # The step whose output first passed the limit is the error; those before it stay ok.
    statuses = [s["status"] for s in body["steps"]]
    assert statuses[-1] == "error" and set(statuses[:-1]) <= {"ok"}
    assert body["steps"][-1]["name"] == body["error"]["details"]["step"]


def test_listing_pages_45_jobs_over_http(make_stack):
    live = make_stack(worker=False)
    submitted = [live.submit({"prompt": f"job {i}"})["jobId"] for i in range(45)]
    seen, cursor, sizes = [], None, []
    while True:
        params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{live.url}/jobs", params=params, timeout=10).json()
        sizes.append(len(page["jobs"]))
        seen += [job["jobId"] for job in page["jobs"]]
        if (cursor := page["nextCursor"]) is None:
            break
    assert sizes == [20, 20, 5]
    assert seen == list(reversed(submitted))
    forged = requests.get(f"{live.url}/jobs", params={"cursor": "not-a-cursor"}, timeout=10)
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "INVALID_CURSOR"

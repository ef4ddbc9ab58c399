"""Many jobs at once: 300 submissions from 20 concurrent clients, 2 workers, none lost, none stuck."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import pipeline
from storage.model import JobState

pytestmark = pytest.mark.integration

JOBS, CLIENTS = 300, 20


def test_300_jobs_from_20_clients_all_finish_with_one_entry_per_step(make_stack):
    live = make_stack(worker=False)
    live.start_worker(concurrency=2)
    live.start_worker(concurrency=2)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CLIENTS))

    def submit(i: int) -> str:
        response = session.post(
            f"{live.url}/generate-scene", json={"prompt": f"load {i}", "seed": i}, timeout=30
        )
        assert response.status_code == 202, response.text
        return response.json()["jobId"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        job_ids = list(pool.map(submit, range(JOBS)))
    submitted = time.monotonic() - started
    assert len(set(job_ids)) == JOBS

    # Watch the state index, a few Queries a second, not every job: 300 reads a second would
    # load the emulator more than the jobs themselves do.
    pending, deadline = set(job_ids), time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        time.sleep(1)
        pending = unfinished(live) & pending
    elapsed = time.monotonic() - started
    assert not pending, f"{len(pending)} jobs not finished after {elapsed:.0f}s"

    for job_id in job_ids:
        job = live.services.jobs.get(job_id)
        assert job.state.value == "done", (job_id, job.state, job.error)
        assert [s.name for s in job.steps] == list(pipeline.STEPS)
        assert len(job.step_ids) == len(pipeline.STEPS)
    print(f"\n{JOBS} jobs: submitted in {submitted:.1f}s, all done in {elapsed:.1f}s "
          f"({JOBS / elapsed:.1f} jobs/s on this machine)")


def unfinished(live) -> set[str]:
    """Ids of the stack's queued and running jobs, from the state index."""
    ids: set[str] = set()
    for state in (JobState.QUEUED, JobState.RUNNING):
        cursor = None
        while True:
            page = live.services.jobs.list_jobs(limit=100, cursor=cursor, state=state)
            ids |= {job.job_id for job in page.jobs}
            if (cursor := page.cursor) is None:
                break
    return ids

"""The stall sweeper fails only jobs that stopped moving, and never one that moved meanwhile."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from storage.model import JobState, StepEvent, step_id
from storage.ports import each_job
from tasks.dispatch import submit_job
from tasks.sweeper import sweep_stalled

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def job_at(services, updated_at: str, state: JobState = JobState.RUNNING) -> str:
    job, _ = submit_job(services.jobs, {"prompt": "p", "seed": 1, "style": "doom"}, ttl_days=1, enqueue=lambda *a: None)
    services.jobs.jobs[job.job_id] = dataclasses.replace(job, state=state, updated_at=updated_at)
    return job.job_id


def test_stalled_queued_and_running_jobs_end_failed_with_stalled(services):
    old_running = job_at(services, "2026-11-22T11:00:00.000Z")
    old_queued = job_at(services, "2026-11-22T11:00:00.000Z", JobState.QUEUED)
    fresh = job_at(services, "2026-11-22T11:59:00.000Z")
    done = job_at(services, "2026-11-01T00:00:00.000Z", JobState.DONE)

    failed = sweep_stalled(services, stall_after_seconds=1800, now=NOW)

    assert sorted(failed) == sorted([old_running, old_queued])
    for job_id in failed:
        job = services.jobs.get(job_id)
        assert job.state is JobState.FAILED and job.error.code == "STALLED"
    assert services.jobs.get(fresh).state is JobState.RUNNING
    assert services.jobs.get(done).state is JobState.DONE


def test_a_job_that_moved_after_it_was_listed_is_left_alone(services, monkeypatch):
    job_id = job_at(services, "2026-11-22T11:00:00.000Z")
    real_list = services.jobs.list_jobs

    def list_then_progress(**kwargs):
        page = real_list(**kwargs)
        # A step lands between the sweeper's read and its write.
        current = services.jobs.jobs[job_id]
        services.jobs.jobs[job_id] = dataclasses.replace(current, updated_at="2026-11-22T11:59:59.000Z")
        return page

    monkeypatch.setattr(services.jobs, "list_jobs", list_then_progress)
    assert sweep_stalled(services, stall_after_seconds=1800, now=NOW) == []
    assert services.jobs.get(job_id).state is JobState.RUNNING


def test_the_error_names_the_steps_the_job_recorded_though_the_index_copies_none(services, monkeypatch):
    job_id = job_at(services, "2026-11-22T11:00:00.000Z")
    recorded = StepEvent(step_id(job_id, "parse_prompt", 1), "parse_prompt", "t0", "t1", 3, "parsed")
    stored = services.jobs.jobs[job_id]
    services.jobs.jobs[job_id] = dataclasses.replace(stored, steps=(recorded,))
    real_list = services.jobs.list_jobs

    def as_the_index_has_them(**kwargs):
        # The state index copies the listing's attributes (storage/dynamo_items.py), not the steps.
        page = real_list(**kwargs)
        return dataclasses.replace(page, jobs=tuple(dataclasses.replace(job, steps=()) for job in page.jobs))

    monkeypatch.setattr(services.jobs, "list_jobs", as_the_index_has_them)
    assert sweep_stalled(services, stall_after_seconds=1800, now=NOW) == [job_id]
    assert services.jobs.get(job_id).error.details["completedSteps"] == ["parse_prompt"]


def test_each_job_pages_through_every_listed_job_once_newest_first(services):
    """storage/ports.py: each_job, which the sweeper and `retry-job --all-failed` page with."""
    running = [job_at(services, "2026-11-22T11:00:00.000Z") for _ in range(5)]
    for minute, job_id in enumerate(running):  # created in this order
        services.jobs.jobs[job_id] = dataclasses.replace(
            services.jobs.jobs[job_id], created_at=f"2026-11-22T10:0{minute}:00.000Z"
        )
    queued = job_at(services, "2026-11-22T11:00:00.000Z", JobState.QUEUED)
    listed = [job.job_id for job in each_job(services.jobs, state=JobState.RUNNING, page_size=2)]
    assert listed == running[::-1]  # three pages
    assert {job.job_id for job in each_job(services.jobs, page_size=4)} == {*running, queued}

"""The job store's conditional-write contract, on two DynamoDB implementations: moto and dynalite.

Every test runs once per backend (ids ``[moto]``, ``[dynalite]``; see dynamo_backends.py).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.dynamo import DynamoJobStore
from storage.errors import InvalidCursor, InvalidTransition, JobExists, JobNotFound, JobTerminal
from storage.model import (
    ClaimOutcome,
    Completion,
    HandedLease,
    Job,
    JobError,
    JobState,
    RecordOutcome,
    StepEvent,
    StepLease,
    StepStatus,
    handed_owner,
    lease_owner,
    new_job_id,
    step_id,
    utc_now,
)
from storage.ports import each_job

pytestmark = pytest.mark.integration

STEPS = 5


@pytest.fixture(scope="module")
def store(job_store_factory) -> DynamoJobStore:
    """A DynamoJobStore on a table of its own, so listings see only this module's jobs."""
    return job_store_factory()


def new_job(store: DynamoJobStore, **overrides) -> Job:
    now = utc_now()
    fields = {
        "job_id": new_job_id(),
        "state": JobState.QUEUED,
        "created_at": now,
        "updated_at": now,
        "request": {"prompt": "p", "seed": 1, "style": "doom"},
        "total_steps": STEPS,
        "ttl": int(time.time()) + 86400,
        **overrides,
    }
    job = Job(**fields)
    store.create(job)
    return job


def event(job_id: str, name: str, status: StepStatus = StepStatus.OK) -> StepEvent:
    now = utc_now()
    return StepEvent(step_id(job_id, name), name, now, now, 3, f"did {name}", status)


def test_recording_a_step_moves_queued_to_running_and_counts_progress(store):
    job = new_job(store)
    assert store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS) is RecordOutcome.RECORDED
    after = store.get(job.job_id)
    assert after.state is JobState.RUNNING
    assert [s.name for s in after.steps] == ["a"]
    assert after.step_ids == {step_id(job.job_id, "a")}
    assert after.progress == pytest.approx(0.2)


def test_recording_a_duplicate_step_is_a_no_op(store):
    job = new_job(store)
    first = event(job.job_id, "a")
    store.record_step(job.job_id, first, total_steps=STEPS)
    before = store.get(job.job_id)
    later = dataclasses.replace(first, summary="a second delivery", duration_ms=99)

    assert store.record_step(job.job_id, later, total_steps=STEPS) is RecordOutcome.DUPLICATE
    after = store.get(job.job_id)
    assert after == before  # not even updatedAt moved


def test_concurrent_deliveries_of_one_step_record_it_once(store):
    job = new_job(store)
    same = event(job.job_id, "a")
    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(lambda _: store.record_step(job.job_id, same, total_steps=STEPS), range(20)))
    assert outcomes.count(RecordOutcome.RECORDED) == 1
    assert outcomes.count(RecordOutcome.DUPLICATE) == 19
    after = store.get(job.job_id)
    assert len(after.steps) == 1 and after.progress == pytest.approx(0.2)


def test_done_is_terminal_for_every_write(store):
    job = new_job(store)
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    assert store.mark_done(job.job_id, result_keys={"result": "k"}, summary="s") is True
    assert store.mark_done(job.job_id, result_keys={"result": "k"}, summary="s") is False  # idempotent
    done = store.get(job.job_id)

    with pytest.raises(JobTerminal):
        store.mark_running(job.job_id)  # done -> running is refused
    assert store.record_step(job.job_id, event(job.job_id, "late"), total_steps=STEPS) is RecordOutcome.TERMINAL
    assert store.mark_failed(job.job_id, JobError("late", "LATE")) is False
    assert store.get(job.job_id) == done
    assert done.state is JobState.DONE and done.progress == 1.0 and done.result_summary == "s"


def test_a_queued_job_cannot_jump_to_done(store):
    job = new_job(store)
    with pytest.raises(InvalidTransition) as caught:
        store.mark_done(job.job_id, result_keys={}, summary="s")
    assert not isinstance(caught.value, JobTerminal)
    assert store.get(job.job_id).state is JobState.QUEUED


def test_failed_keeps_completed_steps_and_the_error(store):
    job = new_job(store)
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    store.record_step(job.job_id, event(job.job_id, "b", StepStatus.ERROR), total_steps=STEPS)
    assert store.mark_failed(job.job_id, JobError("b broke", "STEP_FAILED", {"step": "b"})) is True
    failed = store.get(job.job_id)
    assert failed.state is JobState.FAILED
    assert [(s.name, s.status) for s in failed.steps] == [("a", StepStatus.OK), ("b", StepStatus.ERROR)]
    assert failed.error == JobError("b broke", "STEP_FAILED", {"step": "b"})
    assert failed.progress == pytest.approx(0.2)  # an error step adds no progress


def test_unknown_job(store):
    missing = new_job_id()
    with pytest.raises(JobNotFound):
        store.get(missing)
    with pytest.raises(JobNotFound):
        store.record_step(missing, event(missing, "a"), total_steps=STEPS)
    with pytest.raises(JobNotFound):
        store.mark_running(missing)


def test_create_never_overwrites(store):
    job = new_job(store)
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    with pytest.raises(JobExists):
        store.create(job)
    assert len(store.get(job.job_id).steps) == 1


def test_listing_pages_through_45_jobs_newest_first(store):
    # Make this module's table hold exactly 45 more jobs with distinct, known timestamps.
    existing = _all_ids(store)
    created = []
    for i in range(45):
        stamp = f"2030-01-01T00:00:{i:02d}.000Z"
        created.append(new_job(store, created_at=stamp, updated_at=stamp).job_id)
    pages, cursor = [], None
    while True:
        page = store.list_jobs(limit=20, cursor=cursor)
        pages.append([job.job_id for job in page.jobs])
        cursor = page.cursor
        if cursor is None:
            break
    listed = [job_id for page in pages for job_id in page]
    new = [job_id for job_id in listed if job_id not in existing]
    assert new == list(reversed(created))  # newest first, none lost, none twice
    assert len(listed) == len(set(listed)) == len(existing) + 45
    assert all(len(page) == 20 for page in pages[:-1]) and 0 < len(pages[-1]) <= 20


def test_listing_by_state_uses_the_state_index(store):
    job = new_job(store)
    store.mark_failed(job.job_id, JobError("x", "X"))
    failed = store.list_jobs(limit=100, state=JobState.FAILED)
    assert job.job_id in [j.job_id for j in failed.jobs]
    assert all(j.state is JobState.FAILED for j in failed.jobs)


def test_the_indexes_copy_what_a_listing_shows_and_not_the_steps(store):
    """Both indexes project INCLUDE (storage/dynamo_items.py: INDEXED_ATTRIBUTES): a listed job has
    what GET /jobs and the console's list show, and none of the rest (each write of the item is
    billed again in each index, on its entry's size)."""
    job = new_job(store, request={"prompt": "a listed hall", "seed": 7, "style": "cave"})
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    whole = store.get(job.job_id)
    for listing in (list(each_job(store)), store.list_jobs(limit=100, state=JobState.RUNNING).jobs):
        (listed,) = [j for j in listing if j.job_id == job.job_id]
        shown = ("state", "progress", "prompt_preview", "created_at", "updated_at", "request", "result_keys")
        assert {f: getattr(listed, f) for f in shown} == {f: getattr(whole, f) for f in shown}
        assert whole.steps and listed.steps == () and listed.total_steps == 0  # not copied


def test_a_forged_cursor_is_refused(store):
    for cursor in ["garbage", "eyJrIjoiMSJ9", "e30"]:
        with pytest.raises(InvalidCursor):
            store.list_jobs(limit=5, cursor=cursor)


def _all_ids(store: DynamoJobStore) -> set[str]:
    ids, cursor = set(), None
    while True:
        page = store.list_jobs(limit=100, cursor=cursor)
        ids |= {job.job_id for job in page.jobs}
        if (cursor := page.cursor) is None:
            return ids


def test_mark_failed_can_be_made_conditional_on_no_progress(store):
    job = new_job(store)
    assert (
        store.mark_failed(job.job_id, JobError("stalled", "STALLED"), if_updated_at="1999-01-01T00:00:00.000Z") is False
    )
    assert store.get(job.job_id).state is JobState.QUEUED
    assert store.mark_failed(job.job_id, JobError("stalled", "STALLED"), if_updated_at=job.updated_at) is True
    assert store.get(job.job_id).error.code == "STALLED"


def test_mark_failed_can_be_made_conditional_on_the_job_still_queued(store):
    # What a send answered with an error writes (tasks/dispatch.py: _enqueue_or_fail): a job whose
    # message was taken after all, and claimed or recorded, is not failed under its run.
    running = new_job(store)
    store.record_step(running.job_id, event(running.job_id, "a"), total_steps=STEPS)
    assert store.mark_failed(running.job_id, JobError("not sent", "ENQUEUE_FAILED"), if_queued=True) is False
    assert store.get(running.job_id).state is JobState.RUNNING and store.get(running.job_id).error is None
    queued = new_job(store)
    assert store.mark_failed(queued.job_id, JobError("not sent", "ENQUEUE_FAILED"), if_queued=True) is True
    assert store.get(queued.job_id).error.code == "ENQUEUE_FAILED"
    assert store.mark_failed(queued.job_id, JobError("not sent", "ENQUEUE_FAILED"), if_queued=True) is False


# --- the step lease: one write that claims, moves to running and returns the job ----------


def claim(store: DynamoJobStore, job: Job, name: str, *, attempt: int = 1, lease: float = 60, owner: str = "run-1"):
    return store.claim_step(
        job.job_id, step_id(job.job_id, name, attempt), attempt=attempt, owner=owner, lease_seconds=lease
    )


def test_the_first_claim_moves_the_job_to_running_and_returns_it(store):
    job = new_job(store)
    taken = claim(store, job, "a")
    assert taken.outcome is ClaimOutcome.CLAIMED and taken.resumed is False
    assert taken.job.job_id == job.job_id and taken.job.request == job.request
    assert taken.job.state is JobState.QUEUED  # as it stood before the claim
    assert store.get(job.job_id).state is JobState.RUNNING


def test_a_job_whose_send_failed_is_queued_again_as_the_same_attempt_once(store):
    job_id = new_job_id()
    handed = StepLease(step_id(job_id, "a"), handed_owner("lost-message"), int(time.time() * 1000) + 60_000)
    job = new_job(store, job_id=job_id, leases=(handed,))
    assert store.get(job_id).leases == (handed,)  # the lease the item handed its first message
    store.mark_failed(job.job_id, JobError("could not send the job", "ENQUEUE_FAILED"))
    at = utc_now()
    assert store.mark_resent(job.job_id, attempt=1, at=at) is True
    resent = store.get(job.job_id)
    assert (resent.state, resent.attempt, resent.error, resent.attempts) == (JobState.QUEUED, 1, None, ())
    assert resent.updated_at == at and resent.leases == ()
    # Its own retry (applied, answered with an error, refused on botocore's retry) is still its own;
    # another's, at another time, is told the job is queued already.
    assert store.mark_resent(job.job_id, attempt=1, at=at) is True
    time.sleep(0.002)  # another write's time
    assert store.mark_resent(job.job_id, attempt=1, at=utc_now()) is False
    assert claim(store, job, "a").outcome is ClaimOutcome.CLAIMED  # no lease of the lost message in the way
    # Refused, changing nothing, for a job that runs, failed another way, or failed after a step ran.
    with pytest.raises(InvalidTransition):
        store.mark_resent(job.job_id, attempt=1, at=utc_now())
    store.mark_failed(job.job_id, JobError("broken", "STEP_FAILED"))
    with pytest.raises(InvalidTransition):
        store.mark_resent(job.job_id, attempt=1, at=utc_now())
    ran = new_job(store)
    store.record_step(ran.job_id, event(ran.job_id, "a"), total_steps=STEPS)
    store.mark_failed(ran.job_id, JobError("could not send the job", "ENQUEUE_FAILED"))
    with pytest.raises(InvalidTransition):
        store.mark_resent(ran.job_id, attempt=1, at=utc_now())
    assert store.get(ran.job_id).state is JobState.FAILED


def test_a_claim_is_refused_while_its_lease_is_held_and_taken_over_once_it_lapses(store):
    job = new_job(store)
    assert claim(store, job, "a", lease=-1, owner="dead").outcome is ClaimOutcome.CLAIMED
    held = claim(store, new_job(store), "a")  # another job's step: unaffected
    assert held.outcome is ClaimOutcome.CLAIMED
    first = claim(store, job, "b", lease=60)
    second = claim(store, job, "b", lease=60, owner="run-2")
    assert first.outcome is ClaimOutcome.CLAIMED
    assert second.outcome is ClaimOutcome.HELD and second.expires_at_ms == first.expires_at_ms
    resumed = claim(store, job, "a", owner="run-3")  # "dead"'s lease lapsed at once
    assert resumed.outcome is ClaimOutcome.CLAIMED and resumed.resumed is True


def test_a_renewed_lease_is_held_past_its_first_term_and_only_its_owner_renews_it(store):
    job = new_job(store)
    first = claim(store, job, "a", lease=60)
    assert store.renew_lease(job.job_id, step_id(job.job_id, "a"), owner="run-1", lease_seconds=600) is True
    assert store.renew_lease(job.job_id, step_id(job.job_id, "a"), owner="run-1", lease_seconds=600) is True  # a retry
    held = claim(store, job, "a", owner="run-2")
    assert held.outcome is ClaimOutcome.HELD and held.expires_at_ms >= first.expires_at_ms + 500_000
    # Another run cannot renew it, and nobody renews a lease that lapsed into someone else's hands.
    assert store.renew_lease(job.job_id, step_id(job.job_id, "a"), owner="run-2", lease_seconds=600) is False
    assert store.renew_lease(job.job_id, step_id(job.job_id, "b"), owner="run-1", lease_seconds=600) is False
    # Recorded: the record removes the lease, and a late renewal does not bring it back.
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    assert store.renew_lease(job.job_id, step_id(job.job_id, "a"), owner="run-1", lease_seconds=600) is False
    assert store.get(job.job_id).leases == ()
    missing = new_job_id()
    assert store.renew_lease(missing, step_id(missing, "a"), owner="run-1", lease_seconds=600) is False


def test_a_record_hands_the_next_step_its_lease_and_a_later_try_of_that_message_owns_it(store):
    job = new_job(store)
    handed = handed_owner("message-b")
    lease = HandedLease(step_id(job.job_id, "b"), handed, 60)
    recorded = store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS, attempt=1, next_lease=lease)
    assert recorded is RecordOutcome.RECORDED
    [held] = store.get(job.job_id).leases
    assert (held.step_id, held.owner) == (step_id(job.job_id, "b"), handed)
    assert held.expires_at_ms > time.time() * 1000 + 50_000
    # Held for the message it was handed to: another message's claim waits; that message's own
    # later try (Celery's retry of it) owns it; its run renews it; its record removes it.
    assert claim(store, job, "b", owner="other/0000/x").outcome is ClaimOutcome.HELD
    assert claim(store, job, "b", owner=lease_owner("message-b", 1, "n")).outcome is ClaimOutcome.CLAIMED
    assert store.renew_lease(job.job_id, step_id(job.job_id, "b"), owner=handed, lease_seconds=60) is False  # taken
    store.record_step(job.job_id, event(job.job_id, "b"), total_steps=STEPS, attempt=1)
    assert store.get(job.job_id).leases == ()


def test_a_record_of_another_attempt_is_stale_and_writes_nothing(store):
    job = new_job(store)
    lease = HandedLease(step_id(job.job_id, "b", 2), handed_owner("m"), 60)
    stale = store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS, attempt=2, next_lease=lease)
    assert stale is RecordOutcome.STALE
    after = store.get(job.job_id)
    assert after.steps == () and after.leases == () and after.state is JobState.QUEUED
    store.mark_failed(job.job_id, JobError("x", "X"))
    assert store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS, attempt=2) is RecordOutcome.TERMINAL


def test_a_claim_tells_duplicate_terminal_stale_and_missing_apart(store):
    job = new_job(store)
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    duplicate = claim(store, job, "a")
    assert duplicate.outcome is ClaimOutcome.DUPLICATE and step_id(job.job_id, "a") in duplicate.job.step_ids
    assert claim(store, job, "b", attempt=2).outcome is ClaimOutcome.STALE
    store.mark_failed(job.job_id, JobError("x", "X"))
    assert claim(store, job, "b").outcome is ClaimOutcome.TERMINAL
    missing = dataclasses.replace(job, job_id=new_job_id())
    assert claim(store, missing, "a").outcome is ClaimOutcome.MISSING
    assert store.get(job.job_id).steps == store.get(job.job_id).steps[:1]  # nothing written by a refusal


def test_the_last_record_marks_the_job_done_in_the_same_write(store):
    job = new_job(store)
    store.record_step(job.job_id, event(job.job_id, "a"), total_steps=STEPS)
    done = Completion(result_keys={"result": "jobs/x/result.json"}, summary="all done")
    assert store.record_step(job.job_id, event(job.job_id, "e"), total_steps=STEPS, done=done) is RecordOutcome.RECORDED
    after = store.get(job.job_id)
    assert after.state is JobState.DONE and after.progress == 1.0
    assert after.result_keys == done.result_keys and after.result_summary == "all done"
    assert [s.name for s in after.steps] == ["a", "e"]


def test_an_error_record_fails_the_job_in_the_same_write_once(store):
    job = new_job(store)
    error = JobError("e broke", "E_BROKE", {"step": "e"})
    assert (
        store.record_step(job.job_id, event(job.job_id, "e", StepStatus.ERROR), total_steps=STEPS, error=error)
        is RecordOutcome.RECORDED
    )
    other = JobError("again", "AGAIN")
    assert (
        store.record_step(job.job_id, event(job.job_id, "e", StepStatus.ERROR), total_steps=STEPS, error=other)
        is RecordOutcome.DUPLICATE
    )
    failed = store.get(job.job_id)
    assert failed.state is JobState.FAILED and failed.error == error and len(failed.steps) == 1

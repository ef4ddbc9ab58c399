"""Each write, applied by the emulator but answered with a 500, a reset or too late, and retried by botocore.

The proxy faults exactly one request of one operation; botocore's standard retry sends the same
request again, and the store must take what it finds as its own write: no lease waited out,
no duplicate, no refusal. Real boto3 clients and the real emulator, through the fault proxy.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

import pipeline
from storage.bootstrap import aws_client, build_services
from storage.errors import DependencyThrottled, DependencyUnavailable
from storage.model import (
    ClaimOutcome,
    Completion,
    Job,
    JobError,
    JobState,
    RecordOutcome,
    StepEvent,
    StepStatus,
    lease_owner,
    new_job_id,
    retry_record,
    step_id,
    utc_now,
)
from storage.provision import _create_bucket
from tests.integration.dynamo_backends import create_jobs_table

pytestmark = pytest.mark.integration

AMBIGUOUS = ["applied_500", "applied_reset", "slow"]


@pytest.fixture(scope="module")
def module_services(emulator_and_proxy):
    """Stores on a new table and bucket, every request through the proxy (1 s timeout, 2 retries)."""
    emulator, proxy = emulator_and_proxy
    suffix = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        emulator.settings,
        aws_endpoint_url=proxy.url,
        jobs_table_name=f"jobs-{suffix}",
        artifacts_bucket=f"artifacts-{suffix}",
        aws_timeout_seconds=1.0,
        aws_max_attempts=3,
    )
    create_jobs_table(aws_client(emulator.settings, "dynamodb"), settings.jobs_table_name)
    _create_bucket(aws_client(emulator.settings, "s3"), settings.artifacts_bucket, settings.region)
    return build_services(settings)


@pytest.fixture
def services(module_services, proxy):
    """The module's stores; each test makes its own jobs (new ids), the proxy's plan fresh."""
    return module_services


def queued_job() -> Job:
    now = utc_now()
    return Job(
        job_id=new_job_id(),
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
        request={"prompt": "p", "seed": 1, "style": "doom"},
        total_steps=len(pipeline.STEPS),
        ttl=2_000_000_000,
    )


def event(job_id: str, step: str) -> StepEvent:
    now = utc_now()
    return StepEvent(step_id(job_id, step), step, now, now, 1, "ok", StepStatus.OK)


def faulted_once(proxy, operation: str, kind: str, service: str = "dynamodb"):
    fault = proxy.script(service, operation, kind)
    return fault


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_put_of_a_new_job_retried_after_it_was_applied_is_not_refused(services, proxy, kind):
    job = queued_job()
    fault = faulted_once(proxy, "PutItem", kind)
    services.jobs.create(job)  # not JobExists
    assert fault.remaining == 0 and proxy.faults[("dynamodb", kind)] == 1
    assert services.jobs.get(job.job_id).created_at == job.created_at


def test_a_put_over_another_submissions_job_is_still_refused(services, proxy):
    from storage.errors import JobExists

    job = queued_job()
    services.jobs.create(job)
    with pytest.raises(JobExists):
        services.jobs.create(dataclasses.replace(job, created_at=utc_now() + "x"))


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_claim_retried_after_it_was_applied_is_granted_not_held(services, proxy, kind):
    job = queued_job()
    services.jobs.create(job)
    sid = step_id(job.job_id, pipeline.STEPS[0])
    fault = faulted_once(proxy, "UpdateItem", kind)
    claim = services.jobs.claim_step(job.job_id, sid, attempt=1, owner=lease_owner("t", 0, "n"), lease_seconds=60)
    assert fault.remaining == 0
    # Before: HELD by its own lease, "retry in 65 s".
    assert claim.outcome is ClaimOutcome.CLAIMED and not claim.resumed


def test_a_claim_whose_retries_ran_out_is_the_next_trys_own_and_nobody_elses(services, proxy):
    job = queued_job()
    services.jobs.create(job)
    sid = step_id(job.job_id, pipeline.STEPS[0])
    # Every one of botocore's tries (AWS_MAX_ATTEMPTS = 3: the first and two retries).
    fault = proxy.script("dynamodb", "UpdateItem", "applied_500", times=3)
    with pytest.raises(DependencyUnavailable):
        services.jobs.claim_step(job.job_id, sid, attempt=1, owner=lease_owner("t", 0, "a"), lease_seconds=60)
    assert fault.remaining == 0
    held = services.jobs.claim_step(job.job_id, sid, attempt=1, owner=lease_owner("u", 0, "b"), lease_seconds=60)
    twin = services.jobs.claim_step(job.job_id, sid, attempt=1, owner=lease_owner("t", 0, "c"), lease_seconds=60)
    assert held.outcome is ClaimOutcome.HELD and twin.outcome is ClaimOutcome.HELD
    mine = services.jobs.claim_step(job.job_id, sid, attempt=1, owner=lease_owner("t", 1, "d"), lease_seconds=60)
    assert mine.outcome is ClaimOutcome.CLAIMED and mine.resumed


@pytest.mark.parametrize("kind", AMBIGUOUS)
@pytest.mark.parametrize("end", ["running", "done", "failed"])
def test_a_record_retried_after_it_was_applied_is_recorded_once(services, proxy, kind, end):
    job = queued_job()
    services.jobs.create(job)
    step = pipeline.STEPS[-1] if end == "done" else pipeline.STEPS[0]
    record = event(job.job_id, step)
    faulted_once(proxy, "UpdateItem", kind)
    outcome = services.jobs.record_step(
        job.job_id,
        record,
        total_steps=len(pipeline.STEPS),
        done=Completion({"result": "k"}, "s") if end == "done" else None,
        error=JobError("m", "C") if end == "failed" else None,
    )
    assert outcome is RecordOutcome.RECORDED  # not DUPLICATE: the write was its own
    stored = services.jobs.get(job.job_id)
    assert [s.step_id for s in stored.steps] == [record.step_id] and stored.state is JobState(end)
    # An equal event sent again by someone else is a duplicate, as before.
    assert services.jobs.record_step(job.job_id, record, total_steps=6) is not RecordOutcome.RECORDED


@pytest.mark.parametrize("kind", AMBIGUOUS)
@pytest.mark.parametrize("write", ["cancel", "done", "failed", "retry"])
def test_a_state_change_retried_after_it_was_applied_reports_that_it_changed_the_job(services, proxy, kind, write):
    job = queued_job()
    services.jobs.create(job)
    jobs = services.jobs
    if write in ("done", "retry"):
        jobs.mark_running(job.job_id)
    if write == "retry":
        jobs.mark_failed(job.job_id, JobError("m", "C"))
    faulted_once(proxy, "UpdateItem", kind)
    if write == "cancel":
        assert jobs.mark_cancelled(job.job_id, by="op", reason="r") is True
    elif write == "done":
        assert jobs.mark_done(job.job_id, result_keys={"a": "b"}, summary="s") is True
    elif write == "failed":
        assert jobs.mark_failed(job.job_id, JobError("m", "C")) is True
    else:
        entry = retry_record(job.job_id, attempt=2, at=utc_now(), reason="r", by="op", from_step="parse_prompt")
        assert jobs.mark_retry(job.job_id, attempt=entry) == 2  # not InvalidTransition
        assert len(jobs.get(job.job_id).attempts) == 1
    # Asked again later, by another writer, nothing changes and it says so.
    if write == "cancel":
        assert jobs.mark_cancelled(job.job_id, by="op", reason="r") is False


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_an_artifact_put_retried_after_it_was_applied_leaves_the_same_bytes(services, proxy, kind):
    body = b"\x00\x01 the same bytes every time" * 100
    faulted_once(proxy, "PutObject", kind, service="s3")
    services.artifacts.put("jobs/x/sceneGraph.json", body, "application/json")
    assert services.artifacts.get("jobs/x/sceneGraph.json") == body
    assert proxy.faults[("s3", kind)] == 1


@pytest.mark.parametrize(
    ("service", "operation", "error"),
    [("dynamodb", "GetItem", DependencyThrottled), ("s3", "GetObject", DependencyThrottled)],
)
def test_a_throttle_is_the_services_own_answer(services, proxy, service, operation, error):
    proxy.script(service, operation, "throttle", times=3)  # the first try and both retries
    with pytest.raises(error):
        if service == "dynamodb":
            services.jobs.get(new_job_id())
        else:
            services.artifacts.get("jobs/x/none")

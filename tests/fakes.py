"""In-memory fakes of our own storage ports, for the unit tier (no boto3, no network)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

from storage.errors import (
    ArtifactNotFound,
    AttemptsExhausted,
    DependencyUnavailable,
    EnqueueFailed,
    InvalidTransition,
    JobExists,
    JobNotFound,
    JobTerminal,
)
from storage.model import (
    MAX_ATTEMPTS,
    TERMINAL_STATES,
    ArtifactInfo,
    Claim,
    ClaimOutcome,
    Completion,
    HandedLease,
    Job,
    JobError,
    JobPage,
    JobState,
    RecordedCheckpoint,
    RecordOutcome,
    StepEvent,
    StepLease,
    StepStatus,
    artifact_prefix,
    cancel_record,
    job_of_artifact,
    owns_lease,
    sources_of,
    utc_now,
)


class AppliedThenFails:
    """Wrap one method of a store: the next ``times`` calls are applied, then raise DependencyUnavailable."""

    def __init__(self, store, method: str, times: int = 1) -> None:
        self.store, self.method, self.times = store, method, times
        self.real = getattr(store, method)
        setattr(store, method, self)

    def __call__(self, *args, **kwargs):
        result = self.real(*args, **kwargs)
        if self.times > 0:
            self.times -= 1
            raise DependencyUnavailable("dynamodb is unavailable (InternalError)")
        return result


class FakeJobStore:
    """JobStore with the same conditional semantics as DynamoJobStore."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.down = False
        self.leases: dict[tuple[str, str], tuple[str, int]] = {}
        self.calls: Counter[str] = Counter()  # operation -> calls, as the requests DynamoDB would see
        self._lock = threading.Lock()

    def _check_up(self, operation: str | None = None) -> None:
        if operation:
            self.calls[operation] += 1
        if self.down:
            raise DependencyUnavailable("dynamodb is unreachable")

    def create(self, job: Job) -> None:
        self._check_up()
        with self._lock:
            if job.job_id in self.jobs:
                raise JobExists(f"job {job.job_id} already exists")
            self.jobs[job.job_id] = replace(job, leases=())
            for lease in job.leases:  # the first step's, handed with the job's first message
                self.leases[(job.job_id, lease.step_id)] = (lease.owner, lease.expires_at_ms)

    def claim_step(self, job_id: str, step_id: str, *, attempt: int, owner: str, lease_seconds: float) -> Claim:
        self._check_up("claim_step")
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return Claim(ClaimOutcome.MISSING)
            job = self._leased(job)  # the item as it stood, leases and all
            if job.state in TERMINAL_STATES:
                return Claim(ClaimOutcome.TERMINAL, job=job)
            if job.attempt != attempt:
                return Claim(ClaimOutcome.STALE, job=job)
            if step_id in job.step_ids:
                return Claim(ClaimOutcome.DUPLICATE, job=job)
            now_ms = int(time.time() * 1000)
            held = self.leases.get((job_id, step_id))
            if held and held[1] >= now_ms and not owns_lease(owner, held[0]):
                return Claim(ClaimOutcome.HELD, expires_at_ms=held[1], job=job)
            expires = now_ms + int(lease_seconds * 1000)
            self.leases[(job_id, step_id)] = (owner, expires)
            self.jobs[job_id] = replace(job, state=JobState.RUNNING, updated_at=utc_now(), leases=())
            resumed = held is not None and held[0] != owner
            return Claim(ClaimOutcome.CLAIMED, expires_at_ms=expires, job=job, resumed=resumed)

    def renew_lease(self, job_id: str, step_id: str, *, owner: str, lease_seconds: float) -> bool:
        self._check_up("renew_lease")
        with self._lock:
            held = self.leases.get((job_id, step_id))
            job = self.jobs.get(job_id)
            if held is None or held[0] != owner or job is None or step_id in job.step_ids:
                return False
            self.leases[(job_id, step_id)] = (owner, int(time.time() * 1000) + int(lease_seconds * 1000))
            return True

    def get(self, job_id: str) -> Job:
        self._check_up("get")
        return self._leased(self._item(job_id))

    def _leased(self, job: Job) -> Job:
        """``job`` with the leases held on its steps, as the store's item has them."""
        held = sorted((sid, lease) for (jid, sid), lease in self.leases.items() if jid == job.job_id)
        return replace(job, leases=tuple(StepLease(sid, owner, expires) for sid, (owner, expires) in held))

    def _item(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no job {job_id}") from None

    def list_jobs(self, *, limit: int, cursor: str | None = None, state: JobState | None = None) -> JobPage:
        self._check_up()
        ordered = sorted(self.jobs.values(), key=lambda j: (j.created_at, j.job_id), reverse=True)
        ordered = [j for j in ordered if state is None or j.state is state]
        start = 0
        if cursor is not None:
            start = next(i for i, j in enumerate(ordered) if j.job_id == cursor) + 1
        page = ordered[start : start + limit]
        more = len(ordered) > start + limit
        return JobPage(jobs=tuple(page), cursor=page[-1].job_id if more else None)

    def record_step(
        self,
        job_id: str,
        event: StepEvent,
        *,
        total_steps: int,
        done: Completion | None = None,
        error: JobError | None = None,
        attempt: int | None = None,
        next_lease: HandedLease | None = None,
        checkpoint: RecordedCheckpoint | None = None,
        drop_checkpoint: bool = False,
    ) -> RecordOutcome:
        self._check_up("record_step")
        with self._lock:
            job = self._item(job_id)
            if event.step_id in job.step_ids:
                return RecordOutcome.DUPLICATE
            if job.state in TERMINAL_STATES:
                return RecordOutcome.TERMINAL
            if attempt is not None and job.attempt != attempt:
                return RecordOutcome.STALE
            self.leases.pop((job_id, event.step_id), None)
            if next_lease is not None and done is None and error is None:
                expires = int(time.time() * 1000) + int(next_lease.lease_seconds * 1000)
                self.leases[(job_id, next_lease.step_id)] = (next_lease.owner, expires)
            share = 1 / total_steps if event.status is StepStatus.OK else 0
            changes: dict = {"state": JobState.RUNNING, "progress": min(1.0, job.progress + share)}
            if checkpoint is not None or drop_checkpoint:
                changes["checkpoint"] = None if drop_checkpoint else checkpoint
            if done is not None:
                changes = {
                    "state": JobState.DONE,
                    "progress": 1.0,
                    "result_keys": done.result_keys,
                    "result_summary": done.summary,
                    "checkpoint": None,
                }
            elif error is not None:
                changes = {"state": JobState.FAILED, "error": error}
            self.jobs[job_id] = replace(
                job,
                steps=(*job.steps, event),
                step_ids=job.step_ids | {event.step_id},
                updated_at=utc_now(),
                **changes,
            )
            return RecordOutcome.RECORDED

    def _transition(self, job_id: str, target: JobState, *, only_from: tuple[JobState, ...] = (), **fields) -> bool:
        self._check_up(target.value)
        with self._lock:
            job = self._item(job_id)
            if job.state is target:
                return False
            if job.state not in (only_from or sources_of(target)):
                if job.state in TERMINAL_STATES:
                    raise JobTerminal(f"job is {job.state}")
                raise InvalidTransition(f"{job.state} -> {target}")
            self.jobs[job_id] = replace(job, state=target, updated_at=utc_now(), **fields)
            return True

    def mark_running(self, job_id: str) -> bool:
        return self._transition(job_id, JobState.RUNNING)

    def mark_done(self, job_id: str, *, result_keys: dict, summary: str) -> bool:
        return self._transition(
            job_id, JobState.DONE, result_keys=result_keys, result_summary=summary, progress=1.0, checkpoint=None
        )

    def mark_retry(self, job_id: str, *, attempt: dict) -> int:
        self._check_up()
        with self._lock:
            job = self.get(job_id)
            if job.attempts and job.attempts[-1] == attempt:
                return attempt["attempt"]  # this very retry, written already
            if job.state is not JobState.FAILED or job.attempt != attempt["attempt"] - 1:
                raise InvalidTransition(f"job is {job.state} (attempt {job.attempt})")
            if job.attempt >= MAX_ATTEMPTS:
                raise AttemptsExhausted(f"job has used all {MAX_ATTEMPTS} attempts")
            self.jobs[job_id] = replace(
                job,
                state=JobState.QUEUED,
                attempt=attempt["attempt"],
                attempts=(*job.attempts, attempt),
                error=None,
                updated_at=utc_now(),
            )
            return attempt["attempt"]

    def mark_resent(self, job_id: str, *, attempt: int, at: str) -> bool:
        self._check_up("mark_resent")
        with self._lock:
            job = self._item(job_id)
            if job.state is JobState.QUEUED and job.attempt == attempt:
                return job.updated_at == at  # this very write, retried; else another's
            unsent = job.error is not None and job.error.code == EnqueueFailed.code and not job.steps
            if job.state is not JobState.FAILED or job.attempt != attempt or not unsent:
                raise InvalidTransition(f"job is {job.state} (attempt {job.attempt})")
            self.jobs[job_id] = replace(job, state=JobState.QUEUED, error=None, updated_at=at)
            for key in [key for key in self.leases if key[0] == job_id]:
                del self.leases[key]
            return True

    def mark_cancelled(self, job_id: str, *, by: str, reason: str) -> bool:
        record = cancel_record(job_id, at=utc_now(), by=by, reason=reason)
        return self._transition(job_id, JobState.CANCELLED, cancellation=record)

    def mark_failed(
        self, job_id: str, error: JobError, *, if_updated_at: str | None = None, if_queued: bool = False
    ) -> bool:
        if if_updated_at is not None and self.get(job_id).updated_at != if_updated_at:
            return False
        try:
            return self._transition(
                job_id, JobState.FAILED, only_from=(JobState.QUEUED,) if if_queued else (), error=error
            )
        except JobTerminal:
            return False
        except InvalidTransition:
            if not if_queued:
                raise
            return False

    def check(self) -> None:
        self._check_up()


class FakeArtifactStore:
    """ArtifactStore in a dict; ``presign`` False behaves like demo mode."""

    def __init__(self, *, presign: bool = True) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.puts: list[str] = []
        self.gets: list[str] = []
        self.presign = presign

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.puts.append(key)
        self.blobs[key] = body
        self.content_types[key] = content_type

    def admit(self, key: str, size: int) -> None:
        pass  # no limit of its own

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> bool:
        if key in self.blobs:
            return False
        self.put(key, body, content_type)
        return True

    def artifacts_of(self, job_id: str) -> list[ArtifactInfo]:
        return [
            ArtifactInfo(key, job_of_artifact(key), self.content_types[key], len(body))
            for key, body in sorted(self.blobs.items())
            if key.startswith(artifact_prefix(job_id))
        ]

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        try:
            return self.blobs[key]
        except KeyError:
            raise ArtifactNotFound(f"no artifact {key}") from None

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        return f"https://artifacts.example/{key}?X-Amz-Expires={expires_in}" if self.presign else None

    def check(self) -> None:
        pass

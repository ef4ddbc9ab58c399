"""What the rest of the code needs from storage, as protocols; adapters implement them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from storage.model import (
    ArtifactInfo,
    Claim,
    Completion,
    HandedLease,
    Job,
    JobError,
    JobPage,
    JobState,
    RecordedCheckpoint,
    RecordOutcome,
    StepEvent,
)


class JobStore(Protocol):
    """Durable job items. Every state change and step record is one conditional write."""

    def create(self, job: Job) -> None:
        """Write a new job item; JobExists, and nothing written, if the id is taken.

        An item equal to ``job`` found there is this write's own (a retry of a put that was
        applied but answered with an error): no JobExists then.
        """

    def claim_step(self, job_id: str, step_id: str, *, attempt: int, owner: str, lease_seconds: float) -> Claim:
        """Take the lease to compute a step of ``attempt`` and move the job to running, in one write.

        Refused (and nothing written) when the step is recorded, its lease is held by a live run,
        the job ended, or it is in another attempt; the Claim says which, with the job as it stood.
        A lease held by ``owner`` itself, or by an earlier try of its message (model.owns_lease),
        is this run's own: the claim is granted, not refused as held.
        """

    def renew_lease(self, job_id: str, step_id: str, *, owner: str, lease_seconds: float) -> bool:
        """Push the lease ``owner`` holds on a step out to ``lease_seconds`` from now.

        False, and nothing written, when ``owner`` no longer holds it: the step was recorded (which
        removes the lease), or the lease lapsed and another run took it. Idempotent, so a retry
        of a renewal that was applied but answered with an error is granted too.
        """

    def get(self, job_id: str) -> Job:
        """The job, or JobNotFound."""

    def list_jobs(self, *, limit: int, cursor: str | None = None, state: JobState | None = None) -> JobPage:
        """Jobs newest first, ``limit`` at a time; InvalidCursor for a cursor we did not issue.

        A listed job carries what a listing shows (on DynamoDB, what the indexes copy:
        storage/dynamo_items.py, INDEXED_ATTRIBUTES), not its steps, attempts or error: get() it
        for those."""

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
        """Append a step once per stepId; terminal jobs are untouched.

        In the same write the job becomes running, or done with ``done`` (which drops the item's
        checkpoint), or failed with ``error``. With ``attempt``, only in that attempt (STALE, and
        nothing written, in another). With ``next_lease`` (and neither ``done`` nor ``error``), the
        same write takes the next step's lease for the message that will carry it, as a claim by
        that message would; with ``checkpoint``, it keeps the step's checkpoint in the item, in
        place of the one there, and with ``drop_checkpoint`` (the step's went to S3) it removes
        the one there, as ``done`` does. A step event's record leaves it as it is.
        """

    def mark_running(self, job_id: str) -> bool:
        """queued -> running; False when the job was already running. JobTerminal after the end."""

    def mark_done(self, job_id: str, *, result_keys: dict[str, Any], summary: str) -> bool:
        """running -> done, dropping the item's checkpoint; False when it already was done.
        JobTerminal otherwise."""

    def mark_retry(self, job_id: str, *, attempt: dict[str, Any]) -> int:
        """failed -> queued as ``attempt`` (a retry_record), appended to the history.

        InvalidTransition unless failed; AttemptsExhausted after MAX_ATTEMPTS.
        """

    def mark_resent(self, job_id: str, *, attempt: int, at: str) -> bool:
        """failed -> queued again as the same ``attempt``, for a job whose send failed before any
        step of it ran (error ENQUEUE_FAILED, no step recorded): a send that never happened is
        not an attempt. Drops the error and any lease (the lease a lost message was handed);
        ``at`` becomes the item's updatedAt, and tells this write from another: True again for this
        very write, retried after it was applied; False when another queued it already;
        InvalidTransition otherwise.
        """

    def mark_cancelled(self, job_id: str, *, by: str, reason: str) -> bool:
        """queued|running -> cancelled, recording who and why.

        False when it already was; JobTerminal after done or failed.
        """

    def mark_failed(
        self, job_id: str, error: JobError, *, if_updated_at: str | None = None, if_queued: bool = False
    ) -> bool:
        """queued|running -> failed; False when already terminal, or changed since ``if_updated_at``,
        or, with ``if_queued``, no longer queued (a run of its message claimed or recorded a step)."""

    def check(self) -> None:
        """Raise DependencyUnavailable when the store cannot be reached."""


def each_job(jobs: JobStore, *, state: JobState | None = None, page_size: int = 100) -> Iterator[Job]:
    """Every job ``list_jobs`` lists (in ``state`` only, if given), newest first, a page at a time."""
    cursor = None
    while True:
        page = jobs.list_jobs(limit=page_size, cursor=cursor, state=state)
        yield from page.jobs
        if (cursor := page.cursor) is None:
            return


class ArtifactStore(Protocol):
    """Blobs: step checkpoints and the final artifacts."""

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` under ``key`` (overwriting: the same step writes the same bytes)."""

    def admit(self, key: str, size: int) -> None:
        """ArtifactTooLarge if a blob of ``size`` bytes could not be put under ``key``; no request."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``, or ArtifactNotFound."""

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> bool:
        """Store ``body`` under ``key`` unless something is there; True when it was written (import)."""

    def exists(self, key: str) -> bool:
        """True when something is stored under ``key``."""

    def artifacts_of(self, job_id: str) -> list[ArtifactInfo]:
        """What is stored under the job's prefix ``jobs/{jobId}/``, by key."""

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        """A time-limited GET URL, or None when this store cannot hand out URLs."""

    def check(self) -> None:
        """Raise DependencyUnavailable when the store cannot be reached."""

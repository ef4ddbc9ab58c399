"""The safety net under at-least-once delivery: jobs that stopped moving end failed.

Redelivery recovers every step a worker started and lost. What it cannot
recover is a message that is gone — sent to the dead-letter queue after its
receives ran out, or a failure that could not be recorded because DynamoDB was
down at that moment. Such a job would stay queued or running for ever. Every
worker sweeps for jobs whose ``updatedAt`` is older than STALL_AFTER_SECONDS
and fails them with code STALLED; the write is conditional on ``updatedAt``
being unchanged, so a job that moved meanwhile, or a second worker sweeping
at the same time, changes nothing.

The same thread also sweeps the control queues that killed processes left behind
(tasks/control_sweep.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from storage.bootstrap import Services, aws_client
from storage.errors import GhostEngineError, JobNotFound
from storage.model import Job, JobError, JobState
from storage.ports import JobStore, each_job
from tasks import metrics
from tasks.control_sweep import control_plane, sweep_control_queues
from tasks.logs import get_logger

log = get_logger(__name__)


def stalled_jobs(jobs: JobStore, cutoff: str) -> Iterator[Job]:
    """Queued, then running jobs not updated since ``cutoff``, newest first.

    Found on the state index, which copies only what listings read (storage/dynamo_items.py:
    INDEXED_ATTRIBUTES), so each is read whole before it is yielded: its steps go into the error,
    and the index lags the table, so a job that moved meanwhile is left alone.
    """
    for state in (JobState.QUEUED, JobState.RUNNING):
        for listed in each_job(jobs, state=state):
            if listed.updated_at >= cutoff:
                continue
            try:
                job = jobs.get(listed.job_id)
            except JobNotFound:
                continue  # expired and deleted since it was listed
            if job.state in (JobState.QUEUED, JobState.RUNNING) and job.updated_at < cutoff:
                yield job


def sweep_stalled(services: Services, *, stall_after_seconds: int, now: datetime | None = None) -> list[str]:
    """Fail every queued or running job not updated for ``stall_after_seconds``; return their ids."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(seconds=stall_after_seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    failed = []
    for job in list(stalled_jobs(services.jobs, cutoff)):
        error = JobError(
            f"job made no progress for {stall_after_seconds} s while {job.state}",
            "STALLED",
            {
                "state": job.state.value,
                "updatedAt": job.updated_at,
                "completedSteps": [s.name for s in job.steps if s.status.value == "ok"],
            },
        )
        if services.jobs.mark_failed(job.job_id, error, if_updated_at=job.updated_at):
            log.error("job.stalled", jobId=job.job_id, state=job.state.value, updatedAt=job.updated_at)
            metrics.job_failed("STALLED", job.job_id)
            failed.append(job.job_id)
    return failed


class Sweeper(threading.Thread):
    """Runs sweep_stalled and the control-queue sweep every ``interval`` seconds until stopped."""

    def __init__(self, services: Services, *, interval: float, stall_after_seconds: int) -> None:
        super().__init__(name="stall-sweeper", daemon=True)
        self._services = services
        self._interval = interval
        self._stall_after = stall_after_seconds
        self._stopped = threading.Event()

    def run(self) -> None:
        settings = self._services.settings
        plane = control_plane(settings, aws_client(settings, "sqs"), aws_client(settings, "sns"))
        while not self._stopped.wait(self._interval):
            try:
                sweep_stalled(self._services, stall_after_seconds=self._stall_after)
            except GhostEngineError as exc:
                # DynamoDB is down: the next round tries again.
                log.warning("sweep.failed", error=exc.message)
            try:
                sweep_control_queues(plane, heartbeat_seconds=settings.control_heartbeat_seconds)
            except GhostEngineError as exc:
                log.warning("control_sweep.failed", error=exc.message, details=exc.details)

    def stop(self) -> None:
        self._stopped.set()

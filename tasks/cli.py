"""Operator commands plugged into the celery CLI (``celery -A tasks retry-job|cancel-job ...``).

Registered through the ``celery.commands`` entry point group in pyproject.toml,
which is how Celery discovers subcommands. They act on the job items directly,
through the same stores and conditional writes as the API.

Every ``celery`` command in an environment where ghost-engine is installed
imports this module, whatever app it runs, so importing it must do nothing:
the project's modules are imported inside the commands, when one of ours runs.
"""

from __future__ import annotations

import getpass
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click
from celery.bin.base import CeleryCommand

if TYPE_CHECKING:
    from storage.model import Job
    from storage.ports import JobStore
    from tasks.dispatch import Look

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d`` as a timedelta."""
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter("use a number and a unit, e.g. 30m, 2h or 7d", param_hint="--since")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def failed_since(jobs: JobStore, since: timedelta | None, *, now: datetime | None = None) -> list[str]:
    """Ids of failed jobs (that failed within ``since`` of ``now``), newest first, from the state index."""
    from storage.model import JobState
    from storage.ports import each_job

    cutoff = None
    if since is not None:
        cutoff = ((now or datetime.now(UTC)) - since).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [job.job_id for job in each_job(jobs, state=JobState.FAILED) if cutoff is None or job.updated_at >= cutoff]


def _operator() -> str:
    """Who runs this command, as recorded in the job's operator actions."""
    return f"celery-cli:{getpass.getuser()}@{socket.gethostname()}"


def _jobs() -> JobStore:
    from storage.bootstrap import build_services
    from tasks import metrics

    services = build_services()
    # Metrics belong in the services' logs, not on the operator's screen (tasks/metrics.py).
    metrics.configure(services.settings.metrics_namespace, operator=True)
    return services.jobs


@click.command(cls=CeleryCommand, name="retry-job")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed job (see --since).")
@click.option("--since", "since", default=None, help="With --all-failed: only jobs that failed within this, e.g. 2h.")
@click.option("--dry-run", is_flag=True, help="Print what would be retried; change nothing.")
@click.option("--reason", default="retried by an operator", show_default=True, help="Recorded in the job's attempts.")
@click.pass_context
def retry_job(ctx: click.Context, job_ids, all_failed: bool, since: str | None, dry_run: bool, reason: str) -> None:
    """Re-run failed jobs from their first incomplete step, reusing the checkpoints of completed steps."""
    from storage.errors import GhostEngineError
    from storage.model import is_job_id
    from tasks import dispatch

    if job_ids and all_failed:
        raise click.UsageError("give JOB_ID... or --all-failed, not both")
    if not job_ids and not all_failed:
        raise click.UsageError("give the JOB_ID... of the jobs to retry, or --all-failed")
    if since and not all_failed:
        raise click.UsageError("--since goes with --all-failed")
    jobs = _jobs()
    targets = list(job_ids) or failed_since(jobs, parse_since(since) if since else None)
    by = _operator()
    failures = 0
    looks: list[dispatch.Look] = []
    for job_id in targets:
        if not is_job_id(job_id):
            click.echo(f"{job_id}: not a job id", err=True)
            failures += 1
            continue
        try:
            if dry_run:
                job = jobs.get(job_id)
                first = dispatch.first_incomplete_step(job)
                click.echo(f"{job_id}: would retry from {first} as attempt {job.attempt + 1} ({job.state})")
                continue
            asked = len(looks)
            job = dispatch.retry_job(jobs, job_id, reason=reason, by=by, looks=looks)
        except GhostEngineError as exc:
            if len(looks) > asked:
                click.echo(f"{job_id}: {exc.message}: finding out whether the retry was written...", err=True)
            else:
                click.echo(f"{job_id}: not retried: {exc.message}", err=True)
                failures += 1
            continue
        click.echo(f"{job_id}: {_queued(job)}")
    failures += _settled(jobs, looks)
    if not targets:
        click.echo("no failed jobs to retry")
    ctx.exit(1 if failures else 0)


def _queued(job: Job) -> str:
    return f"queued as attempt {job.attempt} from {job.attempts[-1]['fromStep']}"


def _settled(jobs: JobStore, looks: list[Look]) -> int:
    """Wait for the looks at retries answered with an error (tasks/dispatch.py: _settle), which die
    with this process, and say what each found; how many jobs were not retried."""
    from storage.errors import GhostEngineError
    from tasks import dispatch

    # Each look's reads may each take a botocore retry cycle on top of its pauses.
    deadline = time.monotonic() + sum(dispatch.SETTLE_PAUSES) + 30
    failures = 0
    for look in looks:
        outcome = look.wait(max(0.0, deadline - time.monotonic())) or dispatch.Settled.UNKNOWN
        if outcome in (dispatch.Settled.SENT, dispatch.Settled.UNDER_WAY):
            try:
                job = jobs.get(look.job_id)
            except GhostEngineError:
                click.echo(f"{look.job_id}: retried: the retry was written after all")
                continue
            if outcome is dispatch.Settled.SENT:
                click.echo(f"{look.job_id}: {_queued(job)} (the retry was written after all)")
            else:
                click.echo(f"{look.job_id}: {_queued(job)} (written after all, sent already), now {job.state.value}")
            continue
        failures += 1
        if outcome is dispatch.Settled.UNKNOWN:
            # Asked again, retry-job sends a retry already written (not repeating it) or makes it.
            click.echo(
                f"{look.job_id}: not known whether retried: run retry-job again once the store answers", err=True
            )
        else:
            click.echo(f"{look.job_id}: not retried: {outcome.value}", err=True)
    return failures


@click.command(cls=CeleryCommand, name="cancel-job")
@click.argument("job_ids", nargs=-1, required=True)
@click.option(
    "--reason", default="cancelled by an operator", show_default=True, help="Recorded in the job's cancellation."
)
@click.pass_context
def cancel_job(ctx: click.Context, job_ids: tuple[str, ...], reason: str) -> None:
    """Cancel jobs that have not ended: steps not started never run; one in flight changes nothing."""
    from storage.errors import GhostEngineError
    from storage.model import is_job_id
    from tasks import dispatch

    jobs = _jobs()
    by = _operator()
    failures = 0
    for job_id in job_ids:
        if not is_job_id(job_id):
            click.echo(f"{job_id}: not a job id", err=True)
            failures += 1
            continue
        try:
            changed = dispatch.cancel_job(jobs, job_id, by=by, reason=reason)
        except GhostEngineError as exc:
            click.echo(f"{job_id}: not cancelled: {exc.message}", err=True)
            failures += 1
            continue
        click.echo(f"{job_id}: {'cancelled' if changed else 'already cancelled'}")
    ctx.exit(1 if failures else 0)

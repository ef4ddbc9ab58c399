"""Operator commands plugged into the celery CLI (``celery -A tasks retry-job|cancel-job ...``).

Registered through the ``celery.commands`` entry point group in pyproject.toml,
which is how Celery discovers subcommands. They act on the job items directly,
through the same stores and conditional writes as the API.

Every ``celery`` command in an environment where ghost-engine is installed
imports this module, whatever app it runs, so importing it must do nothing:
the project's modules are imported inside the commands, when one of ours runs.

Exit codes (README, "Operators"): 0 done, 1 a job was refused or the store failed (a line
saying why), 2 a usage error: a bad option, a malformed job id or a bad setting, with
nothing done. The Celery app is built only when a retry sends its chain, so a bad setting
reaches the command (ghost-engine-admin words it, and every failure, the same way).
"""

from __future__ import annotations

import getpass
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

import click
from celery.bin.base import CeleryCommand

if TYPE_CHECKING:
    from storage.bootstrap import Services
    from storage.errors import GhostEngineError
    from storage.model import Job
    from storage.ports import JobStore
    from storage.settings import Settings
    from tasks.dispatch import Look

_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# JOB_TTL_DAYS is at most 365 (storage/settings.py): no failed job is older.
SINCE_MAX = timedelta(days=365)


class BadSettings(click.ClickException):
    """A setting the command cannot run with: one line naming it, and nothing done."""

    exit_code = 2


def parse_since(value: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d`` as a timedelta, more than nothing and at most SINCE_MAX."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r}: use a number and a unit, e.g. 30m, 2h or 7d", param_hint="--since")
    # A length check first: int() refuses numbers of thousands of digits, timedelta far fewer.
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]] if len(match[1]) <= 12 else None
    if seconds is None or seconds > SINCE_MAX.total_seconds():
        raise click.BadParameter(
            f"{value}: at most {SINCE_MAX.days}d, as no job is kept longer (JOB_TTL_DAYS)", param_hint="--since"
        )
    if seconds == 0:
        raise click.BadParameter(f"{value}: a window of nothing matches no job", param_hint="--since")
    return timedelta(seconds=seconds)


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


def _check_job_ids(job_ids: tuple[str, ...]) -> None:
    """A usage error, before anything is done, for any argument that is not a job id at all."""
    from storage.model import is_job_id

    malformed = [job_id for job_id in job_ids if not is_job_id(job_id)]
    if malformed:
        raise click.BadParameter(f"not a job id: {', '.join(malformed)}; nothing was done", param_hint="JOB_ID")


def _services() -> Services:
    from storage.bootstrap import build_services
    from storage.errors import ConfigError
    from tasks import metrics

    try:
        services = build_services()
    except ConfigError as exc:
        raise BadSettings(exc.message) from None
    # Metrics belong in the services' logs, not on the operator's screen (tasks/metrics.py).
    metrics.configure(services.settings.metrics_namespace, operator=True)
    return services


class _Explainer:
    """Words the store's failures as ghost-engine-admin does, naming the table or the endpoint; and
    when nothing answers at the local default, says once, after every job's line, where to look."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._hint: str | None = None

    def __call__(self, exc: GhostEngineError) -> str:
        from storage.admin import explained, local_stack_hint

        self._hint = self._hint or local_stack_hint(exc, self.settings)
        return explained(exc, self.settings)

    def exit(self, ctx: click.Context, failures: int) -> NoReturn:
        """Exit 1 if any job was not acted on, else 0."""
        if self._hint:
            click.echo(self._hint, err=True)
        ctx.exit(1 if failures else 0)


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
    from tasks import dispatch

    if job_ids and all_failed:
        raise click.UsageError("give JOB_ID... or --all-failed, not both")
    if not job_ids and not all_failed:
        raise click.UsageError("give the JOB_ID... of the jobs to retry, or --all-failed")
    # `is not None`: an empty --since (a script's unset variable) is refused, not taken as "ever".
    if since is not None and not all_failed:
        raise click.UsageError("--since goes with --all-failed")
    window = parse_since(since) if since is not None else None
    _check_job_ids(job_ids)
    services = _services()
    jobs = services.jobs
    explain = _Explainer(services.settings)
    try:
        targets = list(job_ids) or failed_since(jobs, window)
    except GhostEngineError as exc:
        click.echo(f"failed jobs not listed: {explain(exc)}", err=True)
        explain.exit(ctx, 1)
    by = _operator()
    failures = 0
    looks: list[dispatch.Look] = []
    for job_id in targets:
        asked = len(looks)
        try:
            if dry_run:
                job = jobs.get(job_id)
                first = dispatch.first_incomplete_step(job)
                click.echo(f"{job_id}: would retry from {first} as attempt {job.attempt + 1} ({job.state})")
                continue
            job = dispatch.retry_job(jobs, job_id, reason=reason, by=by, looks=looks)
        except GhostEngineError as exc:
            if len(looks) > asked and looks[-1].written:
                click.echo(f"{job_id}: {explain(exc)}, nor could the job be failed: sending it again...", err=True)
            elif len(looks) > asked:
                click.echo(f"{job_id}: {explain(exc)}: finding out whether the retry was written...", err=True)
            else:
                click.echo(f"{job_id}: not retried: {explain(exc)}", err=True)
                failures += 1
            continue
        click.echo(f"{job_id}: {_queued(job)}")
    failures += _settled(jobs, looks)
    if not targets:
        click.echo("no failed jobs to retry")
    explain.exit(ctx, failures)


def _queued(job: Job) -> str:
    return f"queued as attempt {job.attempt} from {job.attempts[-1]['fromStep']}"


def _settled(jobs: JobStore, looks: list[Look]) -> int:
    """Wait for the looks at retries answered with an error, or written but neither sent nor failed
    (tasks/dispatch.py: _settle), which die with this process, and say what each found; how many
    jobs were not retried."""
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
            if outcome is dispatch.Settled.SENT and look.written:
                click.echo(f"{look.job_id}: {_queued(job)} (sent at a later try)")
            elif outcome is dispatch.Settled.SENT:
                click.echo(f"{look.job_id}: {_queued(job)} (the retry was written after all)")
            elif look.written:
                click.echo(f"{look.job_id}: {_queued(job)} (on its way after all), now {job.state.value}")
            else:
                click.echo(f"{look.job_id}: {_queued(job)} (written after all, sent already), now {job.state.value}")
            continue
        failures += 1
        if outcome is dispatch.Settled.UNKNOWN:
            # Asked again, retry-job sends a retry already written (not repeating it) or makes it.
            click.echo(
                f"{look.job_id}: not known whether retried: run retry-job again once the store answers", err=True
            )
        elif outcome is dispatch.Settled.SEND_FAILED and look.written:
            click.echo(f"{look.job_id}: not retried: its messages could not be sent: the job is failed again", err=True)
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
    from tasks import dispatch

    _check_job_ids(job_ids)
    services = _services()
    explain = _Explainer(services.settings)
    by = _operator()
    failures = 0
    for job_id in job_ids:
        try:
            changed = dispatch.cancel_job(services.jobs, job_id, by=by, reason=reason)
        except GhostEngineError as exc:
            click.echo(f"{job_id}: not cancelled: {explain(exc)}", err=True)
            failures += 1
            continue
        click.echo(f"{job_id}: {'cancelled' if changed else 'already cancelled'}")
    explain.exit(ctx, failures)

"""ghost-engine-admin: take the execution state with you — export, import, load into PostgreSQL.

    ghost-engine-admin export --out state.jsonl [--with-artifacts DIR]
    ghost-engine-admin import state.jsonl [--artifacts DIR] [--table NAME] [--bucket NAME]
    ghost-engine-admin to-postgres state.jsonl --dsn postgresql://...
    ghost-engine-admin create-table NAME          (the local emulator only: Terraform's shape)

It talks to DynamoDB and S3 directly, with the services' settings (JOBS_TABLE_NAME,
ARTIFACTS_BUCKET, AWS_*; docs/schema.md describes the file). Exit codes: 0 done,
1 the operation failed (with a one-line message), 2 usage error (a bad setting too).

The operators' celery commands (tasks/cli.py) word their failures with the functions here, so
both tools say the same thing about the same problem.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from storage import entities
from storage.aws_errors import translated
from storage.bootstrap import aws_client, build_services
from storage.errors import ConfigError, DependencyUnavailable, GhostEngineError
from storage.export import ExportSource, export_entities
from storage.importer import import_entities
from storage.settings import LOCAL_ENDPOINT, TABLE_NAME, TABLE_NAME_RULE, Settings, is_loopback

err = Console(stderr=True, soft_wrap=True)

_NO_BUCKET = frozenset({"404", "NoSuchBucket", "NotFound"})


def _settings(table: str | None = None, bucket: str | None = None) -> Settings:
    """The services' settings, ``table`` and ``bucket`` over them; ConfigError naming a bad one."""
    settings = Settings.from_env()
    if table is not None:
        settings = dataclasses.replace(settings, jobs_table_name=table)
    if bucket is not None:
        settings = dataclasses.replace(settings, artifacts_bucket=bucket or None)
    return settings


def missing_target(exc: GhostEngineError, settings: Settings) -> str | None:
    """``table NAME`` or ``bucket NAME`` when ``exc`` says the call found no such table or bucket."""
    service, code = exc.details.get("service"), exc.details.get("awsCode")
    if service == "dynamodb" and code == "ResourceNotFoundException":
        return f"table {settings.jobs_table_name}"
    if service == "s3" and code in _NO_BUCKET:
        return f"bucket {settings.artifacts_bucket}"
    return None


def _unreachable(exc: GhostEngineError) -> bool:
    # No answer at all (translated() from a BotoCoreError), not an error response.
    return isinstance(exc, DependencyUnavailable) and "reason" in exc.details and "awsCode" not in exc.details


def explained(exc: GhostEngineError, settings: Settings) -> str:
    """The one line an operator reads for ``exc``: a missing table or bucket, or the endpoint not answering, named."""
    if (missing := missing_target(exc, settings)) is not None:
        return f"{missing} does not exist"
    if _unreachable(exc):
        where = settings.aws_endpoint_url or f"AWS ({settings.region})"
        return f"{exc.message} at {where}"
    return exc.message


def local_stack_hint(exc: GhostEngineError, settings: Settings) -> str | None:
    """For nothing answering at the default endpoint: where the endpoint of a running local stack is found."""
    if not (_unreachable(exc) and settings.aws_endpoint_url == LOCAL_ENDPOINT):
        return None
    return (
        f"hint: {LOCAL_ENDPOINT} is the default endpoint: start the local stack (make run), or paste the export "
        "lines it printed under 'Operators'"
    )


@contextmanager
def _explaining(settings: Settings) -> Iterator[None]:
    """A failure of the project's own, as one line (two with the local stack's hint) naming what failed."""
    try:
        yield
    except ConfigError:
        raise
    except GhostEngineError as exc:
        hint = local_stack_hint(exc, settings)
        raise click.ClickException(explained(exc, settings) + (f"\n{hint}" if hint else "")) from None


def _table_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not TABLE_NAME.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a table name: a table name is {TABLE_NAME_RULE}")
    return value


def _writable_file(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    # Checked before the table is read: a scan of a large table ends in a file it cannot write.
    if not value.parent.is_dir():
        raise click.BadParameter(f"{value}: there is no directory {value.parent}")
    return value


def _progress(verb: str) -> tuple[Progress, TaskID]:
    """A live count of entities on stderr, by type."""
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err)
    return progress, progress.add_task(f"{verb}…", total=None)


def _tally(counts: Counter[Any]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"


def _require_targets(settings: Settings) -> None:
    """Refuse, before anything is written, a table or bucket that is not there (one line, exit 1)."""
    try:
        with translated("dynamodb", "DescribeTable"):
            aws_client(settings, "dynamodb").describe_table(TableName=settings.jobs_table_name)
        if settings.artifacts_bucket:
            with translated("s3", "HeadBucket"):
                aws_client(settings, "s3").head_bucket(Bucket=settings.artifacts_bucket)
    except GhostEngineError as exc:
        missing = missing_target(exc, settings)
        if missing is None:
            raise
        how = (
            f" (Terraform; on the local emulator: ghost-engine-admin create-table {settings.jobs_table_name})"
            if exc.details.get("service") == "dynamodb"
            else ""
        )
        raise click.ClickException(f"{missing} does not exist: create it first{how}; nothing was written") from None


_TABLE = click.option("--table", default=None, callback=_table_name, help="Jobs table (default: JOBS_TABLE_NAME).")
_BUCKET = click.option("--bucket", default=None, help="Artifacts bucket; '' for demo mode (default: ARTIFACTS_BUCKET).")


@click.group()
def cli() -> None:
    """Administer ghost-engine's execution state."""


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_writable_file,
    help="The export file.",
)
@click.option(
    "--with-artifacts",
    "artifact_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also copy every artifact's bytes into this directory, by key.",
)
@click.option(
    "--segments", type=click.IntRange(1, 64), default=4, show_default=True, help="Scan segments read in parallel."
)
@_TABLE
@_BUCKET
def export(out: Path, artifact_dir: Path | None, segments: int, table: str | None, bucket: str | None) -> None:
    """Write every durable entity as versioned JSON Lines."""
    settings = _settings(table, bucket)
    source = ExportSource(
        dynamodb=aws_client(settings, "dynamodb"),
        table=settings.jobs_table_name,
        s3=aws_client(settings, "s3") if settings.artifacts_bucket else None,
        bucket=settings.artifacts_bucket,
    )
    counts: Counter[str] = Counter()
    partial = out.with_name(out.name + ".partial")  # renamed once complete: no half file under the name
    progress, task = _progress("exporting")

    def seen(entity: dict[str, Any]) -> None:
        counts[entity["type"]] += 1
        progress.update(task, description=f"exporting: {_tally(counts)}")

    try:
        with _explaining(settings), progress, partial.open("w", encoding="utf-8") as file:
            for entity in export_entities(source, artifact_dir=artifact_dir, segments=segments, progress=seen):
                file.write(json.dumps(entity, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    err.print(f"exported {_tally(counts)} from {settings.jobs_table_name} to {out}", markup=False, highlight=False)


@cli.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--artifacts",
    "artifact_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The directory written by export --with-artifacts.",
)
@_TABLE
@_BUCKET
def import_(file: Path, artifact_dir: Path | None, table: str | None, bucket: str | None) -> None:
    """Load an export into the table (and bucket); what is already there stays as it is."""
    # Read the whole file once before writing: a file cut short, damaged or of another version
    # is refused with nothing written (the import itself checks as it goes, and learns of a
    # missing end line only at the end).
    with file.open(encoding="utf-8") as lines:
        for _ in entities.read_export(lines):
            pass
    settings = _settings(table, bucket)
    services = build_services(settings)
    progress, task = _progress("importing")
    counts: Counter[str] = Counter()

    def seen(entity: dict[str, Any]) -> None:
        counts[entity["type"]] += 1
        progress.update(task, description=f"importing: {_tally(counts)}")

    with _explaining(settings):
        _require_targets(settings)
        with progress, file.open(encoding="utf-8") as lines:
            report = import_entities(lines, services.jobs, services.artifacts, artifact_dir=artifact_dir, progress=seen)
    target = services.settings.jobs_table_name
    err.print(
        f"imported into {target}: wrote {_tally(report.written)}; already there: {_tally(report.present)}",
        markup=False,
        highlight=False,
    )
    if report.without_bytes:
        err.print(
            f"{report.without_bytes} artifacts listed without bytes (export with --with-artifacts, "
            "import with --artifacts to restore them)",
            markup=False,
            highlight=False,
        )


@cli.command(name="create-table")
@click.argument("name", callback=_table_name)
def create_table(name: str) -> None:
    """Make an empty jobs table NAME as Terraform makes one (keys, indexes, TTL): the local emulator only.

    So the restore runbook, which imports into an empty table Terraform made, can be rehearsed on
    `make run`'s emulator as written. Refused unless ENV=local and AWS_ENDPOINT_URL is on loopback:
    elsewhere Terraform owns the tables, and ENV=local alone would still reach AWS itself (an empty
    AWS_ENDPOINT_URL) or another host's endpoint.
    """
    from storage.provision import create_jobs_table

    # Before the settings: elsewhere they may lack what only a deployed service needs.
    env = os.environ.get("ENV") or "local"
    if env != "local":
        raise click.ClickException(
            f"create-table is for the local emulator only (ENV=local); ENV is {env}: "
            "there, Terraform makes the tables (docs/operations.md)"
        )
    settings = _settings(table=name)
    if not is_loopback(settings.aws_endpoint_url):
        endpoint = settings.aws_endpoint_url or "empty (AWS itself)"
        raise click.ClickException(
            "create-table is for the local emulator only (AWS_ENDPOINT_URL on loopback); "
            f"AWS_ENDPOINT_URL is {endpoint}: there, Terraform makes the tables (docs/operations.md)"
        )
    with _explaining(settings), translated("dynamodb", "CreateTable"):
        created = create_jobs_table(aws_client(settings, "dynamodb"), name)
    if not created:
        raise click.ClickException(f"table {name} already exists; nothing changed")
    err.print(f"created table {name} on {settings.aws_endpoint_url}", markup=False, highlight=False)


@cli.command(name="to-postgres")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dsn", required=True, envvar="GHOST_POSTGRES_DSN", help="PostgreSQL connection string.")
def to_postgres(file: Path, dsn: str) -> None:
    """Create the relational schema (storage/sql/schema.sql) and load an export into it."""
    try:
        import psycopg

        from storage.sql.postgres import apply_schema, load_export
    except ImportError:
        raise click.ClickException("to-postgres needs psycopg: pip install 'ghost-engine[postgres]'") from None
    try:
        with psycopg.connect(dsn) as conn, file.open(encoding="utf-8") as lines:
            apply_schema(conn)
            inserted = load_export(conn, lines)
    except psycopg.Error as exc:
        raise click.ClickException(f"PostgreSQL: {str(exc).strip().splitlines()[0]}") from None
    err.print(f"loaded into PostgreSQL: {_tally(+inserted)}", markup=False, highlight=False)


def main() -> None:
    """Entry point: usage errors and bad settings exit 2, failures exit 1, each with a one-line message."""
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as exc:
        err.print(f"usage error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(2)
    except ConfigError as exc:
        # Nothing was tried: as a usage error, the command line (its environment) must change.
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        sys.exit(2)
    except click.ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(1)
    except GhostEngineError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(2)


if __name__ == "__main__":
    main()

"""The ghost-engine command line: submit a job and watch it, list, retry and cancel jobs.

    ghost-engine submit "a spooky hallway" --seed 123 --style doom --wait --out ./level
    ghost-engine status JOB_ID
    ghost-engine jobs [--state failed] [--cursor CURSOR]
    ghost-engine retry JOB_ID / ghost-engine cancel JOB_ID     (operators: need INTERNAL_TOKEN)

It talks to the API only (``--api``, or GHOST_API_URL, default the local stack).
Exit codes (README, "The command line"), each failure with a one-line message:

    0    done, or the command succeeded
    1    the job ended failed or cancelled
    2    usage error (nothing was sent); or the API could not be reached, answered 5xx or 429, or is not the
         ghost-engine API (its answer is not JSON); or --wait gave up at --timeout (the job goes on)
    3    the API refused the request: a 4xx such as 404 JOB_NOT_FOUND, 409 INVALID_TRANSITION,
         422 VALIDATION_ERROR, 401 without a valid token
    4    the job is done, but --out could not be written
    130  interrupted (Ctrl-C); a job being waited for goes on
    141  stdout closed before the end (``ghost-engine jobs | head -1``), as for a program stopped by SIGPIPE

Everything the API sends (prompts, messages, reasons, ids) is printed through ``printable``: as text,
never as rich markup, with control characters shown as escapes (api/cli/text.py). With ``--json`` (or
GHOST_JSON=1) each answer is instead the API's body as one line of JSON, and a failure one on stderr
(api/cli/output.py). The HTTP client and the failures that set the exit codes are api/cli/client.py.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import click
from click.core import ParameterSource
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

import pipeline
from api.cli.client import (
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OUTPUT_CLOSED,
    EXIT_USAGE_OR_CONNECTION,
    ApiClient,
    CliError,
    GaveUp,
    Interrupted,
    NotSaved,
    Unreachable,
)
from api.cli.output import Output, json_option, quiet_stdout
from api.cli.text import (
    CONTROL,
    TERMINAL,
    ElapsedColumn,
    OutputClosed,
    Terminal,
    format_elapsed,
    how_it_ended,
    job_lines,
    line,
    printable,
    progress_line,
    status_lines,
)
from api.routes import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY, JOB_ID_RULE
from storage.model import is_job_id

__all__ = [  # what the tests and the entry point use besides the commands
    "CONTROL",
    "ApiClient",
    "Terminal",
    "format_elapsed",
    "how_it_ended",
    "job_lines",
    "main",
    "printable",
    "progress_line",
]

DEFAULT_API = "http://127.0.0.1:8000"
POLL_SECONDS = 0.3
SUBMIT_PATIENCE_SECONDS = 30.0  # how long submit keeps trying a POST the API did not take

err = Terminal(stderr=True, soft_wrap=True)
out = Terminal(soft_wrap=True)


def _api_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--api, if it is an http(s) URL with a host (``127.0.0.1:8000``, without a scheme, would fail each call)."""
    try:
        parts = urlsplit(value)
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # .port of a port that is not a number
        usable = False
    if not usable:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL with a host, such as {DEFAULT_API}")
    return value


@dataclass(frozen=True)
class Run:
    """What each command is handed (click's ctx.obj): the API client, and where its answers go."""

    client: ApiClient
    output: Output


@click.group()
@click.option(
    "--api",
    envvar="GHOST_API_URL",
    default=DEFAULT_API,
    show_default=True,
    callback=_api_url,
    help="API base URL (GHOST_API_URL).",
)
@click.option(
    "--token", envvar="INTERNAL_TOKEN", default=None, help="Operator token for retry/cancel (INTERNAL_TOKEN)."
)
@json_option
@click.pass_context
def cli(ctx: click.Context, api: str, token: str | None) -> None:
    """ghost-engine: generate levels from prompts, as asynchronous jobs.

    Exit codes: 0 ok; 1 the job failed or was cancelled; 2 usage error, API unreachable or not the
    API, or --wait gave up at --timeout; 3 the API refused (4xx); 4 the job is done but --out could
    not be written; 130 interrupted (a job being waited for goes on); 141 stdout closed early.
    """
    output: Output = ctx.obj
    ctx.obj = Run(ApiClient(api, token, note=output.note), output)


class JobId(click.ParamType):
    """A job id as the API issues them: anything else is a usage error, never a path to request."""

    name = "JOB_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not (isinstance(value, str) and is_job_id(value)):
            self.fail(f"{value!r} is not a job id: {JOB_ID_RULE}", param, ctx)
        return value


def _seconds(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    """--timeout: seconds above 0 and finite (0 would end the wait at once, nan or inf never)."""
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a number of seconds above 0")
    return value


def _reason(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--reason, trimmed: one line of any Unicode, as it travels in an HTTP header (no control characters)."""
    if value is None:
        return None
    if CONTROL.search(value.strip()):
        raise click.BadParameter("must be one line of text: no newlines, tabs or other control characters")
    return value.strip() or None


def _reason_header(name: str, reason: str | None) -> dict[str, str | bytes]:
    # UTF-8 bytes: a str header value must be latin-1, and the API decodes these headers as UTF-8.
    return {name: reason.encode("utf-8")} if reason else {}


def _idempotency_key(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--idempotency-key, by the API's rule, before anything is sent."""
    if value is not None and not IDEMPOTENCY_KEY.fullmatch(value):
        raise click.BadParameter("must be 1-255 printable ASCII characters, no space or comma")
    return value


def wait_options(command):
    """--wait, --out and --timeout, shared by submit and retry."""
    for option in reversed(
        (
            click.option(
                "--wait/--no-wait", default=None, help="Show live progress until the job ends (implied by --out)."
            ),
            click.option(
                "--out",
                "out_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help="Save the artifacts into this directory, made if need be; implies --wait.",
            ),
            click.option(
                "--timeout",
                type=float,
                default=120,
                show_default=True,
                callback=_seconds,
                help="Seconds to wait for the job; the API failing for a moment is tried again until then.",
            ),
        )
    ):
        command = option(command)
    return command


def _will_wait(wait: bool | None, out_dir: Path | None) -> bool:
    """Whether to follow the job: --wait, or --out (artifacts come at the end). --out's directory is
    made here, so that one that cannot be is a usage error before anything is sent."""
    if out_dir is None:
        return bool(wait)
    if wait is False:
        raise click.UsageError("--out saves the artifacts once the job is done: it cannot go with --no-wait")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot make {out_dir}: {exc.strerror or exc}", param_hint="'--out'") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in {out_dir}", param_hint="'--out'")
    return True


def command_line(*args: str) -> str:
    """The ghost-engine command that runs ``args`` against this API: what to run next, for a hint."""
    root = click.get_current_context().find_root()
    api = ["--api", root.params["api"]] if root.get_parameter_source("api") is ParameterSource.COMMANDLINE else []
    return shlex.join(["ghost-engine", *api, *args])


@cli.command()
@click.argument("prompt")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None, help="Chosen at random when absent.")
@click.option("--style", default=None, help=f"{', '.join(pipeline.STYLES)} (default {pipeline.DEFAULT_STYLE}).")
@click.option(
    "--rooms",
    type=click.IntRange(pipeline.MIN_ROOMS, pipeline.MAX_ROOMS),
    default=None,
    help="Rooms to build (corridors not counted); default: the prompt and style decide.",
)
@click.option(
    "--idempotency-key",
    default=None,
    callback=_idempotency_key,
    help="Submitting again with the same key gets the same job, not a second one (default: a new key).",
)
@wait_options
@click.pass_obj
def submit(
    run: Run,
    prompt: str,
    seed: int | None,
    style: str | None,
    rooms: int | None,
    idempotency_key: str | None,
    wait: bool | None,
    out_dir: Path | None,
    timeout: float,
) -> None:
    """Submit PROMPT as a job; with --wait, follow it and print its minimap."""
    wait = _will_wait(wait, out_dir)
    deadline = time.monotonic() + timeout
    body: dict = {"prompt": prompt}
    if seed is not None:
        body["seed"] = seed
    if style is not None:
        body["style"] = style
    if rooms is not None:
        body["rooms"] = rooms
    # A key on every submit: a POST tried again after its answer was lost then gets the job the first
    # one made, never a second job.
    key = idempotency_key or str(uuid.uuid4())
    patience = min(deadline, time.monotonic() + SUBMIT_PATIENCE_SECONDS)
    try:
        accepted = run.client.call(
            "POST", "/generate-scene", json=body, headers={IDEMPOTENCY_HEADER: key}, retry_until=patience
        )
    except Unreachable as exc:
        raise Unreachable(
            f"{exc.message} (to try again without risking a second job: --idempotency-key {key})"
        ) from None
    job_id = accepted["jobId"]
    said = f" {accepted.get('state', 'queued')} (seed {accepted['seed']}, style {accepted['style']})"
    run.output.note("job ", (job_id, "bold"), said)
    if not wait:
        run.output.show(accepted, lambda: out.print(line(job_id)))
        return
    _finish(run, _follow(run, job_id, deadline), out_dir)


@cli.command()
@click.argument("job_id", type=JobId())
@click.pass_obj
def status(run: Run, job_id: str) -> None:
    """Show a job's state, steps and result."""
    body = run.client.call("GET", f"/status/{job_id}")
    run.output.show(body, lambda: out.print(*status_lines(body), sep="\n"))
    if body["state"] in {"failed", "cancelled"}:
        sys.exit(EXIT_JOB_FAILED)


@cli.command()
@click.option("--state", type=click.Choice(sorted(TERMINAL | {"queued", "running"})), default=None)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", default=None, help="Go on after an earlier page: the cursor its 'more:' line printed.")
@click.pass_obj
def jobs(run: Run, state: str | None, limit: int, cursor: str | None) -> None:
    """List jobs, newest first, a page at a time."""
    params = {"limit": limit, **({"state": state} if state else {}), **({"cursor": cursor} if cursor else {})}
    page = run.client.call("GET", "/jobs", params=params)
    run.output.show(page, lambda: _print_jobs(page["jobs"]))
    if next_cursor := page.get("nextCursor"):
        more = ["jobs", *(["--state", state] if state else []), "--limit", str(limit), "--cursor", next_cursor]
        run.output.note(f"more: {command_line(*more)}")


@cli.command()
@click.argument("job_id", type=JobId())
@wait_options
@click.option("--reason", default=None, callback=_reason, help="Why, in one line: recorded with the retry.")
@click.pass_obj
def retry(run: Run, job_id: str, wait: bool | None, out_dir: Path | None, timeout: float, reason: str | None) -> None:
    """Re-run a failed job from its first incomplete step (operators)."""
    wait = _will_wait(wait, out_dir)
    deadline = time.monotonic() + timeout
    body = run.client.call(
        "POST", f"/jobs/{job_id}/retry", operator=True, headers=_reason_header("X-Retry-Reason", reason)
    )
    run.output.note(f"job {job_id} queued again as attempt {body['attempt']}")
    if not wait:
        run.output.show(body)
        return
    _finish(run, _follow(run, job_id, deadline), out_dir)


@cli.command()
@click.argument("job_id", type=JobId())
@click.option("--reason", default=None, callback=_reason, help="Why, in one line: recorded with the cancellation.")
@click.pass_obj
def cancel(run: Run, job_id: str, reason: str | None) -> None:
    """Cancel a job that has not ended (operators)."""
    body = run.client.call(
        "POST", f"/jobs/{job_id}/cancel", operator=True, headers=_reason_header("X-Cancel-Reason", reason)
    )
    run.output.show(body, lambda: out.print(line(f"job {job_id} is {body['state']}")))


def _follow(run: Run, job_id: str, deadline: float) -> dict:
    """Poll until the job ends, with a progress bar naming the current step (none with --json). The API
    failing for a moment is tried again until ``deadline`` (time.monotonic()); then, or on Ctrl-C, the job goes on."""
    path = f"/status/{quote(job_id, safe='')}"
    follow = command_line("status", job_id)
    state = "queued"
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        ElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=False, disable=run.output.json) as progress:
            bar = progress.add_task("queued", total=len(pipeline.STEPS))
            while True:
                try:
                    body = run.client.call("GET", path, retry_until=deadline)
                except Unreachable as exc:
                    raise GaveUp(
                        f"{exc.message}; gave up at --timeout. Job {job_id} may still be {state}: {follow}"
                    ) from None
                state = body["state"]
                done = sum(1 for step in body["steps"] if step["status"] == "ok")
                progress.update(
                    bar, completed=min(done, len(pipeline.STEPS)), description=printable(progress_line(body))
                )
                if state in TERMINAL:
                    progress.stop_task(bar)
                    return body
                if time.monotonic() >= deadline:
                    raise GaveUp(f"job {job_id} still {state} at --timeout; follow it with: {follow}")
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: job {job_id} is still {state}; follow it with: {follow}") from None


def _finish(run: Run, body: dict, out_dir: Path | None) -> None:
    """Print an ended job's minimap and summary (--json: its status), save its artifacts; or exit 1 if it failed."""
    if body["state"] != "done":
        ended = line((f"job {body['jobId']} {body['state']}", "red"), how_it_ended(body))
        run.output.show(body, lambda: err.print(ended))
        sys.exit(EXIT_JOB_FAILED)
    result = body["result"]
    artifact = functools.cache(functools.partial(_artifact, run.client, result))  # the minimap is fetched once
    run.output.show(body, lambda: _print_level(artifact("asciiMinimap"), result.get("summary") or ""))
    if out_dir is None:
        return
    # Every artifact the result names (…Key), under its own file name.
    names = []
    for field in sorted(name.removesuffix("Key") for name in result if name.endswith("Key") and name != "resultKey"):
        name = result[f"{field}Key"].rsplit("/", 1)[-1]
        try:
            (out_dir / name).write_bytes(artifact(field))
        except OSError as exc:
            raise NotSaved(f"job {body['jobId']} is done, but {out_dir / name}: {exc.strerror or exc}") from None
        names.append(name)
    run.output.note(f"saved {', '.join(names)} in {out_dir}")


def _artifact(client: ApiClient, result: dict, field: str) -> bytes:
    """An artifact's bytes: from its URL, or inlined in the result (demo mode)."""
    if f"{field}Url" in result:
        return client.download(result[f"{field}Url"])
    if isinstance(result[field], str):
        return result[field].encode("utf-8")
    # Inlined JSON, written back in the store's canonical form: the same bytes as sceneGraph.json.
    return pipeline.encode_json(result[field])


def _print_jobs(jobs: list[dict]) -> None:
    out.print(*job_lines(jobs, width=out.width), sep="\n", markup=False, highlight=False, crop=False)


def _print_level(minimap: bytes, summary: str) -> None:
    out.print(Text(printable(minimap.decode("utf-8", "replace"), keep="\n")), end="")
    err.print(line(summary))


def main() -> None:
    """Entry point: the exit codes of the module docstring, each failure with a one-line message."""
    output = Output(out, err)
    try:
        cli.main(standalone_mode=False, obj=output)
        sys.stdout.flush()  # here, where a reader gone (`| head`) is still OutputClosed's case
    except Interrupted as exc:
        output.fail(exc.exit_code, exc.code, exc.format_message())
    except click.UsageError as exc:
        output.fail(EXIT_USAGE_OR_CONNECTION, "USAGE", exc.format_message(), said="usage error: ")
    except click.ClickException as exc:
        failure = exc if isinstance(exc, CliError) else CliError(exc.format_message())
        output.fail(failure.exit_code, failure.code, failure.format_message(), said="error: ")
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        output.fail(EXIT_INTERRUPTED, Interrupted.code, "interrupted")
    except (OutputClosed, BrokenPipeError):
        quiet_stdout()
        sys.exit(EXIT_OUTPUT_CLOSED)

"""The ghost-engine command line: submit a job and watch it, list, retry and cancel jobs.

    ghost-engine submit "a spooky hallway" --seed 123 --style doom --wait --out ./level
    ghost-engine status JOB_ID
    ghost-engine jobs [--state failed]
    ghost-engine retry JOB_ID / ghost-engine cancel JOB_ID     (operators: need INTERNAL_TOKEN)

It talks to the API only (``--api``, or GHOST_API_URL, default the local stack).
Exit codes (README, "The command line"), each failure with a one-line message:

    0  done, or the command succeeded
    1  the job ended failed or cancelled
    2  usage error, or the API could not be reached or answered 5xx (try again later)
    3  the API refused the request: a 4xx such as 404 JOB_NOT_FOUND, 409 INVALID_TRANSITION,
       422 VALIDATION_ERROR, 401 without a valid token
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

import pipeline

DEFAULT_API = "http://127.0.0.1:8000"
TERMINAL = {"done", "failed", "cancelled"}

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

EXIT_JOB_FAILED = 1
EXIT_USAGE_OR_CONNECTION = 2
EXIT_REFUSED = 3


class Unreachable(click.ClickException):
    """The API could not be reached, timed out, or answered 5xx: nothing was decided (exit 2)."""

    exit_code = EXIT_USAGE_OR_CONNECTION


class Refused(click.ClickException):
    """The API answered 4xx: it understood and said no (exit 3)."""

    exit_code = EXIT_REFUSED


def error_message(body: Any) -> str | None:
    """``CODE: message`` of an API error body, with what each refused field must be (the API's words)."""
    try:
        error = body["error"]
        message = f"{error['code']}: {error['message']}"
    except (KeyError, TypeError):
        return None
    fields = (error.get("details") or {}).get("fields") if isinstance(error.get("details"), dict) else None
    if isinstance(fields, dict) and fields:
        said = "; ".join(f"{name}: {_words(why)}" for name, why in sorted(fields.items(), key=lambda kv: str(kv[0])))
        message = f"{message} ({said})"
    return message


def _words(why: Any) -> str:
    if isinstance(why, list):
        return " ".join(_words(item) for item in why)
    if isinstance(why, dict):
        return "; ".join(f"{name}: {_words(inner)}" for name, inner in why.items())
    return str(why)


class ApiClient:
    """The few HTTP calls the CLI makes, with errors turned into one-line messages."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, path: str, *, operator: bool = False, **kwargs) -> Any:
        headers = kwargs.pop("headers", {})
        if operator:
            if not self.token:
                raise click.UsageError("this command needs --token or INTERNAL_TOKEN")
            headers["X-INTERNAL-TOKEN"] = self.token
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise Unreachable(f"cannot reach the API at {self.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = error_message(response.json()) or f"HTTP {response.status_code}"
            except ValueError:
                message = f"HTTP {response.status_code}"
            failure = Refused if response.status_code < 500 else Unreachable
            raise failure(f"{method} {path} failed: {message}")
        return response.json() if response.content else None

    def download(self, url: str) -> bytes:
        target = url if url.startswith("http") else f"{self.base_url}{url}"
        try:
            response = self.session.get(target, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise Unreachable(f"cannot download an artifact: {type(exc).__name__}") from None
        return response.content


@click.group()
@click.option(
    "--api", envvar="GHOST_API_URL", default=DEFAULT_API, show_default=True, help="API base URL (GHOST_API_URL)."
)
@click.option(
    "--token", envvar="INTERNAL_TOKEN", default=None, help="Operator token for retry/cancel (INTERNAL_TOKEN)."
)
@click.pass_context
def cli(ctx: click.Context, api: str, token: str | None) -> None:
    """ghost-engine: generate levels from prompts, as asynchronous jobs."""
    ctx.obj = ApiClient(api, token)


def wait_options(command):
    """--wait, --out and --timeout, shared by submit and retry."""
    for option in reversed(
        (
            click.option("--wait/--no-wait", default=False, help="Show live progress until the job ends."),
            click.option(
                "--out",
                "out_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help="With --wait: save the artifacts into this directory.",
            ),
            click.option("--timeout", type=float, default=120, show_default=True, help="Seconds to wait for the job."),
        )
    ):
        command = option(command)
    return command


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
@wait_options
@click.pass_obj
def submit(
    client: ApiClient,
    prompt: str,
    seed: int | None,
    style: str | None,
    rooms: int | None,
    wait: bool,
    out_dir: Path | None,
    timeout: float,
) -> None:
    """Submit PROMPT as a job; with --wait, follow it and print its minimap."""
    body: dict = {"prompt": prompt}
    if seed is not None:
        body["seed"] = seed
    if style is not None:
        body["style"] = style
    if rooms is not None:
        body["rooms"] = rooms
    accepted = client.call("POST", "/generate-scene", json=body)
    err.print(f"job [bold]{accepted['jobId']}[/] queued (seed {accepted['seed']}, style {accepted['style']})")
    if not wait:
        out.print(accepted["jobId"])
        return
    status = _follow(client, accepted["statusUrl"], timeout)
    _finish(client, status, out_dir)


@cli.command()
@click.argument("job_id")
@click.pass_obj
def status(client: ApiClient, job_id: str) -> None:
    """Show a job's state, steps and result."""
    body = client.call("GET", f"/status/{job_id}")
    _print_status(body)
    if body["state"] in {"failed", "cancelled"}:
        sys.exit(1)


@cli.command()
@click.option("--state", type=click.Choice(sorted(TERMINAL | {"queued", "running"})), default=None)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.pass_obj
def jobs(client: ApiClient, state: str | None, limit: int) -> None:
    """List jobs, newest first."""
    params = {"limit": limit, **({"state": state} if state else {})}
    page = client.call("GET", "/jobs", params=params)
    for line in job_lines(page["jobs"], width=out.width):
        out.print(line, markup=False, highlight=False, crop=False)


@cli.command()
@click.argument("job_id")
@wait_options
@click.option("--reason", default=None, help="Why: recorded with the retry.")
@click.pass_obj
def retry(client: ApiClient, job_id: str, wait: bool, out_dir: Path | None, timeout: float, reason: str | None) -> None:
    """Re-run a failed job from its first incomplete step (operators)."""
    headers = {"X-Retry-Reason": reason} if reason else {}
    body = client.call("POST", f"/jobs/{job_id}/retry", operator=True, headers=headers)
    err.print(f"job {job_id} queued again as attempt {body['attempt']}")
    if not wait:
        return
    _finish(client, _follow(client, f"/status/{job_id}", timeout), out_dir)


@cli.command()
@click.argument("job_id")
@click.option("--reason", default=None, help="Why: recorded with the cancellation.")
@click.pass_obj
def cancel(client: ApiClient, job_id: str, reason: str | None) -> None:
    """Cancel a job that has not ended (operators)."""
    headers = {"X-Cancel-Reason": reason} if reason else {}
    body = client.call("POST", f"/jobs/{job_id}/cancel", operator=True, headers=headers)
    out.print(f"job {job_id} is {body['state']}")


def job_lines(jobs: list[dict], *, width: int, now: datetime | None = None) -> list[str]:
    """The jobs as a table ``width`` columns wide: a job id is never cut (one copies it into
    status, retry or cancel); the prompt gives way, ending in an ellipsis."""
    now = now or datetime.now(UTC)
    rows = [("jobId", "state", "progress", "age", "prompt")] + [
        (
            job["jobId"],
            job["state"],
            f"{job['progress']:.0%}",
            _age(job["createdAt"], now),
            " ".join(str(job.get("promptPreview") or "").split()),
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    room = max(width - sum(widths) - 2 * len(widths), 10)
    lines = []
    for row in rows:
        prompt = Text(row[4])
        prompt.truncate(room, overflow="ellipsis")
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3].rjust(widths[3])]
        lines.append(("  ".join([*cells, prompt.plain])).rstrip())
    return lines


def _age(created_at: str, now: datetime) -> str:
    """How long ago, in the largest whole unit: ``45s``, ``12m``, ``3h``, ``9d``."""
    try:
        seconds = max(0, int((now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds()))
    except ValueError:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_elapsed(seconds: float) -> str:
    """A duration for people: ``340 ms`` under a second, ``12.3 s`` under a minute, else ``m:ss``."""
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


class ElapsedColumn(ProgressColumn):
    """Time since the wait began; milliseconds while under a second (rich's own shows 0:00:00)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        return Text(format_elapsed(elapsed or 0.0), style="progress.elapsed")


def progress_line(body: dict) -> str:
    """What the progress bar says of a status: the step being worked on now, not the last one done."""
    state = body["state"]
    if state in TERMINAL or state == "queued":
        return state
    done = {step["name"] for step in body["steps"] if step["status"] == "ok"}
    current = next((step for step in pipeline.STEPS if step not in done), None)
    return f"{state}: {current}" if current else state


def _follow(client: ApiClient, status_url: str, timeout: float) -> dict:
    """Poll until the job ends, with a progress bar naming the current step."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        ElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task("queued", total=len(pipeline.STEPS))
        while True:
            body = client.call("GET", status_url)
            done = sum(1 for step in body["steps"] if step["status"] == "ok")
            progress.update(bar, completed=min(done, len(pipeline.STEPS)), description=progress_line(body))
            if body["state"] in TERMINAL:
                progress.stop_task(bar)
                return body
            if time.monotonic() > deadline:
                raise Unreachable(f"job {body['jobId']} still {body['state']} after {timeout:.0f}s")
            time.sleep(0.3)


def _finish(client: ApiClient, body: dict, out_dir: Path | None) -> None:
    if body["state"] != "done":
        error = body.get("error") or {}
        err.print(f"[red]job {body['jobId']} {body['state']}[/]: {error.get('code', '')} {error.get('message', '')}")
        sys.exit(1)
    result = body["result"]
    fetched = {"asciiMinimap": _artifact(client, result, "asciiMinimap")}
    out.print(fetched["asciiMinimap"].decode("utf-8"), end="", markup=False, highlight=False)
    err.print(result.get("summary") or "")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Every artifact the result names (…Key), under its own file name; the minimap is fetched once.
        names = []
        for field in sorted(
            name.removesuffix("Key") for name in result if name.endswith("Key") and name != "resultKey"
        ):
            name = result[f"{field}Key"].rsplit("/", 1)[-1]
            if field not in fetched:
                fetched[field] = _artifact(client, result, field)
            (out_dir / name).write_bytes(fetched[field])
            names.append(name)
        err.print(f"saved {', '.join(names)} in {out_dir}")


def _artifact(client: ApiClient, result: dict, field: str) -> bytes:
    """An artifact's bytes: from its URL, or inlined in the result (demo mode)."""
    if f"{field}Url" in result:
        return client.download(result[f"{field}Url"])
    if isinstance(result[field], str):
        return result[field].encode("utf-8")
    # Inlined JSON, written back in the store's canonical form: the same bytes as sceneGraph.json.
    return pipeline.encode_json(result[field])


def _print_status(body: dict) -> None:
    out.print(f"[bold]{body['jobId']}[/]  {body['state']}  {body['progress']:.0%}  attempt {body.get('attempt', 1)}")
    for step in body["steps"]:
        out.print(
            f"  {step['status']:>5}  {step['name']:<15} {step['durationMs']:>6} ms  {step['summary']}",
            markup=False,
            highlight=False,
        )
    if body.get("error"):
        out.print(f"  error {body['error']['code']}: {body['error']['message']}", markup=False)
    if cancellation := body.get("cancellation"):
        out.print(
            f"  cancelled by {cancellation.get('by', '?')} at {cancellation.get('at', '?')}: "
            f"{cancellation.get('reason') or 'no reason given'}",
            markup=False,
            highlight=False,
        )
    if body.get("result"):
        out.print(f"  {body['result'].get('summary', '')}", markup=False)


def main() -> None:
    """Entry point: the exit codes of the module docstring, each failure with a one-line message."""
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as exc:
        err.print(f"usage error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE_OR_CONNECTION)
    except click.ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(exc.exit_code if isinstance(exc, Refused | Unreachable) else EXIT_USAGE_OR_CONNECTION)
    except click.exceptions.Abort:
        sys.exit(EXIT_USAGE_OR_CONNECTION)


if __name__ == "__main__":
    main()

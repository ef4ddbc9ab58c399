"""The ghost-engine command line: submit a job and watch it, list, retry and cancel jobs.

    ghost-engine submit "a spooky hallway" --seed 123 --style doom --wait --out ./level
    ghost-engine status JOB_ID
    ghost-engine jobs [--state failed]
    ghost-engine retry JOB_ID / ghost-engine cancel JOB_ID     (operators: need INTERNAL_TOKEN)

It talks to the API only (``--api``, or GHOST_API_URL, default the local stack).
Exit codes: 0 done (or the command succeeded), 1 job failed or cancelled,
2 usage or connection error, with a one-line message.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import pipeline

DEFAULT_API = "http://127.0.0.1:8000"
TERMINAL = {"done", "failed", "cancelled"}

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


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
            raise click.ClickException(f"cannot reach the API at {self.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code}"
            raise click.ClickException(f"{method} {path} failed: {message}")
        return response.json() if response.content else None

    def download(self, url: str) -> bytes:
        target = url if url.startswith("http") else f"{self.base_url}{url}"
        try:
            response = self.session.get(target, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot download an artifact: {type(exc).__name__}") from None
        return response.content


@click.group()
@click.option("--api", envvar="GHOST_API_URL", default=DEFAULT_API, show_default=True, help="API base URL (GHOST_API_URL).")
@click.option("--token", envvar="INTERNAL_TOKEN", default=None, help="Operator token for retry/cancel (INTERNAL_TOKEN).")
@click.pass_context
def cli(ctx: click.Context, api: str, token: str | None) -> None:
    """ghost-engine: generate levels from prompts, as asynchronous jobs."""
    ctx.obj = ApiClient(api, token)


@cli.command()
@click.argument("prompt")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None, help="Chosen at random when absent.")
@click.option("--style", default=None, help=f"{', '.join(pipeline.STYLES)} (default {pipeline.DEFAULT_STYLE}).")
@click.option("--rooms", type=click.IntRange(pipeline.MIN_ROOMS, pipeline.MAX_ROOMS), default=None,
              help="Rooms to build (corridors not counted); default: the prompt and style decide.")
@click.option("--wait/--no-wait", default=False, help="Show live progress until the job ends.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --wait: save the artifacts into this directory.")
@click.option("--timeout", type=float, default=120, show_default=True, help="Seconds to wait for the job.")
@click.pass_obj
def submit(client: ApiClient, prompt: str, seed: int | None, style: str | None, rooms: int | None, wait: bool,
           out_dir: Path | None, timeout: float) -> None:
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
    table = Table("jobId", "state", "progress", "created", "prompt")
    for job in page["jobs"]:
        table.add_row(job["jobId"], job["state"], f"{job['progress']:.0%}", job["createdAt"], job["promptPreview"])
    out.print(table)


@cli.command()
@click.argument("job_id")
@click.option("--wait/--no-wait", default=False)
@click.option("--reason", default=None, help="Why: recorded with the retry.")
@click.pass_obj
def retry(client: ApiClient, job_id: str, wait: bool, reason: str | None) -> None:
    """Re-run a failed job from its first incomplete step (operators)."""
    headers = {"X-Retry-Reason": reason} if reason else {}
    body = client.call("POST", f"/jobs/{job_id}/retry", operator=True, headers=headers)
    err.print(f"job {job_id} queued again as attempt {body['attempt']}")
    if wait:
        _finish(client, _follow(client, f"/status/{job_id}", 120), None)


@cli.command()
@click.argument("job_id")
@click.option("--reason", default=None, help="Why: recorded with the cancellation.")
@click.pass_obj
def cancel(client: ApiClient, job_id: str, reason: str | None) -> None:
    """Cancel a job that has not ended (operators)."""
    headers = {"X-Cancel-Reason": reason} if reason else {}
    body = client.call("POST", f"/jobs/{job_id}/cancel", operator=True, headers=headers)
    out.print(f"job {job_id} is {body['state']}")


def _follow(client: ApiClient, status_url: str, timeout: float) -> dict:
    """Poll until the job ends, with a progress bar naming the current step."""
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task("queued", total=len(pipeline.STEPS))
        while True:
            body = client.call("GET", status_url)
            done = [s for s in body["steps"] if s["status"] == "ok"]
            current = done[-1]["summary"] if done else body["state"]
            progress.update(bar, completed=min(len(done), len(pipeline.STEPS)), description=f"{body['state']}: {current}")
            if body["state"] in TERMINAL:
                return body
            if time.monotonic() > deadline:
                raise click.ClickException(f"job {body['jobId']} still {body['state']} after {timeout:.0f}s")
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
        for field in sorted(name.removesuffix("Key") for name in result if name.endswith("Key") and name != "resultKey"):
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
        out.print(f"  {step['status']:>5}  {step['name']:<15} {step['durationMs']:>6} ms  {step['summary']}",
                  markup=False, highlight=False)
    if body.get("error"):
        out.print(f"  error {body['error']['code']}: {body['error']['message']}", markup=False)
    if body.get("result"):
        out.print(f"  {body['result'].get('summary', '')}", markup=False)


def main() -> None:
    """Entry point: click's usage errors exit 2; ClickException is remapped from 1 to 2."""
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as exc:
        err.print(f"usage error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(2)
    except click.ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(2)


if __name__ == "__main__":
    main()

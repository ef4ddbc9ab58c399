"""How the ghost-engine CLI shows what the API sends: as text, never markup, control characters escaped.

Prompts, messages and reasons are anyone's text: printed raw, an escape sequence could retitle,
clear or rewrite an operator's terminal, and a line cut to width could end in half of one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text

import pipeline

TERMINAL = {"done", "failed", "cancelled"}
# C0, DEL and C1: characters a terminal acts on rather than shows.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class OutputClosed(Exception):
    """Whoever read our output went away (``| head``): exit 141 quietly (a plain exception, which click passes on)."""


class Terminal(Console):
    """rich's Console, except that a closed pipe raises OutputClosed where rich would exit 1 (a failed job's code)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise OutputClosed


def printable(text: object, *, keep: str = "") -> str:
    """``text`` with each control character but those in ``keep`` shown as an escape, ESC as ``\\x1b``.

    Prompts, messages and reasons are anyone's text: printed raw, an escape sequence could retitle,
    clear or rewrite an operator's terminal, and a line cut to width could end in half of one.
    """
    return CONTROL.sub(lambda found: found[0] if found[0] in keep else f"\\x{ord(found[0]):02x}", str(text))


def line(*parts: str | tuple[str, str]) -> Text:
    """A line to print: ``parts`` are text or (text, style), each made printable, none read as markup."""
    return Text.assemble(
        *((printable(part[0]), part[1]) if isinstance(part, tuple) else printable(part) for part in parts)
    )


def job_lines(jobs: list[dict], *, width: int, now: datetime | None = None) -> list[str]:
    """The jobs as a table ``width`` columns wide: a job id is never cut (one copies it into
    status, retry or cancel); the prompt gives way, ending in an ellipsis. Every cell is printable."""
    now = now or datetime.now(UTC)
    rows = [("jobId", "state", "progress", "age", "prompt")] + [
        (
            printable(job["jobId"]),
            printable(job["state"]),
            f"{job['progress']:.0%}",
            _age(job["createdAt"], now),
            printable(" ".join(str(job.get("promptPreview") or "").split())),
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


def status_lines(body: dict) -> list[Text]:
    """A job's status as lines: the job, each step, then how it ended and its result, as far as it has them."""
    lines = [
        line((body["jobId"], "bold"), f"  {body['state']}  {body['progress']:.0%}  attempt {body.get('attempt', 1)}")
    ]
    for step in body["steps"]:
        lines.append(line(f"  {step['status']:>5}  {step['name']:<15} {step['durationMs']:>6} ms  {step['summary']}"))
    if body.get("error"):
        lines.append(line(f"  error {body['error']['code']}: {body['error']['message']}"))
    if cancellation := body.get("cancellation"):
        lines.append(
            line(
                f"  cancelled by {cancellation.get('by', '?')} at {cancellation.get('at', '?')}: "
                f"{cancellation.get('reason') or 'no reason given'}"
            )
        )
    if body.get("result"):
        lines.append(line(f"  {body['result'].get('summary', '')}"))
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


def how_it_ended(body: dict) -> str:
    """What a status says of why its job did not finish: `` by WHO: REASON``, ``: CODE: message``, or nothing."""
    if body["state"] == "cancelled":
        cancellation = body.get("cancellation") or {}
        who, reason = cancellation.get("by"), cancellation.get("reason")
        return (f" by {who}" if who else "") + (f": {reason}" if reason else "")
    error = body.get("error") or {}
    said = ": ".join(str(error[key]) for key in ("code", "message") if error.get(key))
    return f": {said}" if said else ""

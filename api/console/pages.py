"""The console's pages: submit, the jobs list, a job (its steps, its level, its files)."""

from __future__ import annotations

import json
from datetime import datetime

from flask import abort, current_app, redirect, render_template, request, url_for

import pipeline
from api import presenters
from api.console import bp
from api.console.level import build_level
from api.errors import STATUS_FOR, ApiError
from api.routes import load, services
from api.schemas import PROMPT_MAX, SEED_MAX, ListJobsQuery
from storage.errors import GhostEngineError, JobNotFound
from storage.model import TERMINAL_STATES, Job, JobState, is_job_id, parse_step_id
from tasks.artifacts import ARTIFACTS

STATES = tuple(state.value for state in JobState)
# State as text and an icon, never colour alone.
STATE_ICONS = {"queued": "◷", "running": "▶", "done": "✓", "failed": "✕", "cancelled": "⊘"}
STYLE_DESCRIPTIONS = {
    "doom": "Rooms and halls in a jittered lattice, joined by corridors; many loops.",
    "scifi": "Doom's lattice with bigger blocks, smaller rooms, long straight corridors; bright.",
    "dungeon": "Rooms and crosses attached one at a time through doors or short corridors; few loops.",
    "haunted": "A dungeon of small, tightly packed rooms with few corridors; dark.",
    "cave": "Caverns grown by a cellular automaton, cut into chambers.",
    "maze": "Rooms in a labyrinth of one-cell passages, with extra connectors and some dead ends.",
}
PAGE_SIZE = 20


@bp.app_template_global()
def asset(name: str) -> str:
    """The URL of a static file under its content-hashed name."""
    hashed = current_app.extensions["ghost_engine"]["console_assets"].url_name(name)
    return url_for("console.static_file", hashed_name=hashed)


@bp.app_template_filter("duration")
def duration(ms: int | float | None) -> str:
    """340 ms, 2.4 s, 3 min 5 s."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


@bp.app_template_filter("when")
def when(timestamp: str | None) -> str:
    """An ISO timestamp as ``2026-12-06 04:52:22 UTC``."""
    parsed = _parse(timestamp)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else (timestamp or "—")


@bp.app_template_filter("size")
def size(n: int | None) -> str:
    """A byte count as people read it: 812 bytes, 14.2 KB, 1.3 MB."""
    if n is None:
        return "—"
    if n < 1024:
        return f"{n} bytes"
    kib = n / 1024
    return f"{kib:.1f} KB" if kib < 1024 else f"{kib / 1024:.1f} MB"


def _parse(timestamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(timestamp) if timestamp else None
    except ValueError:
        return None


def job_duration_ms(job: Job) -> int | None:
    """Created to last update, once the job has ended; None while it runs."""
    start, end = _parse(job.created_at), _parse(job.updated_at)
    if job.state not in TERMINAL_STATES or not start or not end:
        return None
    return int((end - start).total_seconds() * 1000)


@bp.get("/")
def root():
    """The API's front page points people at the console; programs read /openapi.json."""
    return redirect(url_for("console.submit"), code=302)


@bp.get("/console/")
def submit():
    return render_template(
        "console/submit.html",
        styles=[(name, STYLE_DESCRIPTIONS.get(name, "")) for name in pipeline.STYLES],
        default_style=pipeline.DEFAULT_STYLE,
        prompt_max=PROMPT_MAX,
        seed_max=SEED_MAX,
        rooms_min=pipeline.MIN_ROOMS,
        rooms_max=pipeline.MAX_ROOMS,
    )


@bp.get("/console/jobs")
def jobs():
    args = {key: value for key, value in request.args.items() if key in ("state", "cursor", "limit") and value}
    query = load(ListJobsQuery(), {"limit": str(PAGE_SIZE), **args})
    state = JobState(query["state"]) if query["state"] else None
    page = services().jobs.list_jobs(limit=query["limit"], cursor=query["cursor"], state=state)
    rows = [
        {
            "job": job,
            "style": job.request.get("style", ""),
            "duration": job_duration_ms(job),
            "thumbnail": "minimapPng" in job.result_keys and job.state is JobState.DONE,
        }
        for job in page.jobs
    ]
    limit = query["limit"] if query["limit"] != PAGE_SIZE else None
    next_url = url_for("console.jobs", state=query["state"], limit=limit, cursor=page.cursor) if page.cursor else None
    return render_template(
        "console/jobs.html",
        rows=rows,
        icons=STATE_ICONS,
        states=STATES,
        state=query["state"],
        limit=limit,
        cursor=query["cursor"],
        next_url=next_url,
    )


@bp.get("/console/jobs/<job_id>")
def job(job_id: str):
    if not is_job_id(job_id):
        abort(404)
    current = services()
    found = current.jobs.get(job_id)
    status = presenters.job_status(found, current)
    level = files = None
    ascii_map = None
    if found.state is JobState.DONE:
        level, ascii_map = _level(found, status["result"])
        files = _files(found)
    return render_template(
        "console/job.html",
        job=found,
        status=status,
        icons=STATE_ICONS,
        attempts=_timeline(found, status),
        level=level,
        ascii_map=ascii_map,
        minimap_url=(status["result"] or {}).get("minimapPngUrl"),
        files=files,
        retry_records=list(found.attempts),
        duration=job_duration_ms(found),
        details_json=json.dumps(found.error.details, indent=2, ensure_ascii=False)
        if found.error and found.error.details
        else None,
    )


def _level(job: Job, result: dict):
    """The explorer's drawing and the ASCII minimap, read from the artifact store (or inlined, demo mode)."""
    store = services().artifacts
    scene = result.get("sceneGraph")
    if scene is None and "sceneGraph" in job.result_keys:
        scene = json.loads(store.get(job.result_keys["sceneGraph"]))
    text = result.get("asciiMinimap")
    if text is None and "asciiMinimap" in job.result_keys:
        text = store.get(job.result_keys["asciiMinimap"]).decode("utf-8")
    return (build_level(scene) if scene else None), text


def _files(job: Job) -> list[dict]:
    sizes = {info.key: info.size for info in services().artifacts.artifacts_of(job.job_id)}
    return [
        {
            "name": artifact.name,
            "type": artifact.content_type.split(";")[0],
            "size": sizes.get(job.result_keys[artifact.field]),
            "url": url_for("jobs.get_artifact", job_id=job.job_id, name=artifact.name),
        }
        for artifact in ARTIFACTS
        if artifact.field in job.result_keys
    ]


def _timeline(job: Job, status: dict) -> list[dict]:
    """Steps grouped by attempt, newest attempt last; the current attempt lists its steps still to run."""
    by_attempt: dict[int, list[dict]] = {}
    for step in status["steps"]:
        by_attempt.setdefault(step["attempt"], []).append(step)
    done_before = {s["name"] for s in status["steps"] if s["status"] == "ok" and s["attempt"] < job.attempt}
    leased = {parse_step_id(lease.step_id)[1] for lease in job.leases if parse_step_id(lease.step_id)[2] == job.attempt}
    recorded_now = {s["name"] for s in by_attempt.get(job.attempt, [])}
    pending = []
    if job.state not in TERMINAL_STATES:
        # A queued job's lease is the one its first message was handed (tasks/dispatch.py): that
        # message may still wait in the queue, so its step is not shown running before the job is.
        pending = [
            {"name": name, "running": name in leased and job.state is JobState.RUNNING}
            for name in pipeline.STEPS
            if name not in done_before and name not in recorded_now
        ]
    retries = {record.get("attempt"): record for record in job.attempts}
    return [
        {
            "number": number,
            "steps": by_attempt.get(number, []),
            "pending": pending if number == job.attempt else [],
            "retry": retries.get(number),
            "kept": sorted(done_before, key=pipeline.STEPS.index) if number == job.attempt and number > 1 else [],
        }
        for number in range(1, job.attempt + 1)
    ]


@bp.get("/console/static/<hashed_name>")
def static_file(hashed_name: str):
    asset_file = current_app.extensions["ghost_engine"]["console_assets"].by_hashed_name(hashed_name)
    if asset_file is None:
        abort(404)
    response = current_app.response_class(asset_file.body, content_type=asset_file.content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/console/<path:anything>")
def unknown_page(anything: str):
    """Any other console address is the console's own 404 page, not the API's JSON error (the
    job pages and static files, more specific, are matched before it)."""
    abort(404)


@bp.errorhandler(404)
@bp.errorhandler(JobNotFound)
def _not_found(exc):
    job_id = (request.view_args or {}).get("job_id")
    message = f"There is no job {job_id}." if job_id else "There is no such page."
    return render_template("console/error.html", title="Not found", message=message), 404


@bp.errorhandler(ApiError)
def _refused(exc: ApiError):
    return render_template("console/error.html", title="Not a valid request", message=exc.message), exc.status


@bp.errorhandler(GhostEngineError)
def _unavailable(exc: GhostEngineError):
    status = next((s for cls, s in STATUS_FOR.items() if isinstance(exc, cls)), 500)
    message = exc.message if status < 500 or status == 503 else "Internal error; see the server log."
    return render_template("console/error.html", title="Could not load this page", message=message), status

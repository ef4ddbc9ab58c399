"""The console's pages over the fake stores: security headers, escaping, 404s, hashed static files."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest

import pipeline
from api import create_app
from api.console.assets import CACHE_FOREVER, HASH_CHARS, STATIC_DIR, Assets
from api.console.level import LOCK_COLOURS, build_level, outline
from storage.bootstrap import Services
from storage.model import JobError, JobState
from tasks.dispatch import cancel_job, submit_job
from tasks.runner import run_step
from tests.fakes import FakeArtifactStore, FakeJobStore

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
LOCKED = {"prompt": "a small locked crypt with 4 rooms", "seed": 5, "style": "dungeon"}


def new_job(services, request=None) -> str:
    job, _ = submit_job(services.jobs, request or LOCKED, ttl_days=1, enqueue=lambda *a, **k: None)
    return job.job_id


def done_job(services, request=None) -> str:
    job_id = new_job(services, request)
    for step in pipeline.STEPS:
        run_step(services, job_id, step)
    return job_id


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Markup(HTMLParser):
    """What a page holds that a strict CSP would refuse, every element's attributes, the text of each id."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []  # the id (or None) of each element not yet closed

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script" and "src" not in attributes:
            self.inline.append("inline <script>")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag} {name}=" for name in attributes if name == "style" or name.startswith("on")]
        if tag not in VOID:
            self._open.append(attributes.get("id"))
            if attributes.get("id"):
                self.text[attributes["id"]] = ""

    def handle_endtag(self, tag):
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data):
        for element_id in filter(None, self._open):
            self.text[element_id] += data


def parsed(response) -> Markup:
    markup = Markup()
    markup.feed(response.get_data(as_text=True))
    return markup


@pytest.fixture
def pages(client, services):
    """Every kind of console page, each as its response."""
    done = done_job(services)
    failed = new_job(services)
    services.jobs.mark_failed(failed, JobError("it broke", "STEP_FAILED", {"step": "populate"}))
    running = new_job(services)
    return {
        "submit": client.get("/console/"),
        "jobs": client.get("/console/jobs"),
        "done": client.get(f"/console/jobs/{done}"),
        "failed": client.get(f"/console/jobs/{failed}"),
        "queued": client.get(f"/console/jobs/{running}"),
        "missing": client.get("/console/jobs/00000000-0000-4000-8000-000000000000"),
    }


def test_every_page_carries_a_strict_csp_and_the_security_headers(pages):
    for name, response in pages.items():
        csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
        assert csp["default-src"] == "'self'", name
        assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'", name
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'", name
        assert "unsafe" not in response.headers["Content-Security-Policy"], name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "no-referrer", name


def test_no_page_has_inline_script_or_style(pages):
    for name, response in pages.items():
        assert response.mimetype == "text/html", name
        assert parsed(response).inline == [], name


def test_images_may_come_from_the_artifact_store_and_nowhere_else(settings):
    presigning = create_app(
        Services(settings, FakeJobStore(), FakeArtifactStore(presign=True)), enqueue=lambda *a, **k: None
    )
    demo = create_app(
        Services(settings, FakeJobStore(), FakeArtifactStore(presign=False)), enqueue=lambda *a, **k: None
    )
    assert (
        "img-src 'self' https://artifacts.example;"
        in presigning.test_client().get("/console/").headers["Content-Security-Policy"]
    )
    assert "img-src 'self';" in demo.test_client().get("/console/").headers["Content-Security-Policy"]


def test_job_values_are_escaped_everywhere(client, services):
    job_id = done_job(services, {**LOCKED, "prompt": HOSTILE})
    cancelled = new_job(services, {**LOCKED, "prompt": HOSTILE})
    cancel_job(services.jobs, cancelled, by="api:<b>me</b>", reason=HOSTILE)
    for url in (f"/console/jobs/{job_id}", f"/console/jobs/{cancelled}", "/console/jobs"):
        body = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body and "<b>me</b>" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in body, url
    markup = parsed(client.get(f"/console/jobs/{cancelled}"))
    assert not [attrs for tag, attrs in markup.tags if tag == "img" and attrs.get("src") == "x"]


def test_an_unknown_console_address_is_the_consoles_404_page(client):
    """Not the API's JSON error: a person followed a link or typed the address."""
    for url in (
        "/console/nope",
        "/console/jobs/",
        "/console/jobs/00000000-0000-4000-8000-000000000000/",
        "/console/a/b",
    ):
        response = client.get(url)
        assert response.status_code == 404 and response.mimetype == "text/html", url
        assert "There is no such page." in response.get_data(as_text=True), url
    assert client.get("/nope").mimetype == "application/json"  # the API's own addresses keep JSON


def test_an_unknown_or_malformed_job_id_is_a_404_page(client):
    for job_id in ("00000000-0000-4000-8000-000000000000", "not-a-job", "%3Cscript%3E"):
        response = client.get(f"/console/jobs/{job_id}")
        assert response.status_code == 404 and response.mimetype == "text/html", job_id
        assert "Content-Security-Policy" in response.headers
    assert "There is no job 00000000-0000-4000-8000-000000000000." in client.get(
        "/console/jobs/00000000-0000-4000-8000-000000000000"
    ).get_data(as_text=True)


def test_a_bad_filter_is_a_4xx_page_not_a_500(client):
    """(A bad cursor, which only the real store can judge, is tested in tests/browser/.)"""
    for url in ("/console/jobs?state=bogus", "/console/jobs?limit=0", "/console/jobs?limit=x"):
        response = client.get(url)
        assert response.status_code == 422 and response.mimetype == "text/html", url


def test_the_front_page_links_the_console(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"


def test_static_files_are_served_under_their_content_hash_and_cached_for_good(client):
    page = client.get("/console/").get_data(as_text=True)
    for name in ("console.css", "console.js"):
        stem, ext = name.rsplit(".", 1)
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:HASH_CHARS]
        url = f"/console/static/{stem}.{digest}.{ext}"
        assert url in page
        response = client.get(url)
        assert response.status_code == 200 and response.data == (STATIC_DIR / name).read_bytes()
        assert response.headers["Cache-Control"] == CACHE_FOREVER
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert client.get(f"/console/static/{name}").status_code == 404  # only hashed names
        assert client.get(f"/console/static/{stem}.{'0' * HASH_CHARS}.{ext}").status_code == 404
    assert client.get("/console/static/console.css").headers["Content-Type"].startswith("text/html")


def test_a_changed_file_gets_a_new_name(tmp_path):
    (tmp_path / "app.js").write_text("one")
    before = Assets(tmp_path).url_name("app.js")
    (tmp_path / "app.js").write_text("two")
    after = Assets(tmp_path).url_name("app.js")
    assert before != after and re.fullmatch(rf"app\.[0-9a-f]{{{HASH_CHARS}}}\.js", after)


def test_a_done_job_shows_its_level_files_and_sizes(client, services):
    job_id = done_job(services)
    body = client.get(f"/console/jobs/{job_id}").get_data(as_text=True)
    sizes = {info.key.rsplit("/", 1)[1]: info.size for info in services.artifacts.artifacts_of(job_id)}
    assert 'data-file="sceneGraph.json"' in body and 'id="level-svg"' in body
    assert f"/jobs/{job_id}/artifacts/minimap.png" in body or "artifacts.example" in body
    assert f"{sizes['sceneGraph.json'] / 1024:.1f} KB" in body
    # The unit tier runs without zdbsp: no map.wad, so no instructions for playing it.
    assert 'data-file="map.wad"' not in body and "Play map.wad" not in body


def test_a_failed_job_shows_its_error(client, services):
    job_id = new_job(services)
    services.jobs.mark_failed(job_id, JobError("it broke", "STEP_FAILED", {"step": "populate"}))
    body = client.get(f"/console/jobs/{job_id}").get_data(as_text=True)
    assert 'id="error-code">STEP_FAILED<' in body and 'id="error-message">it broke<' in body
    assert "&#34;step&#34;: &#34;populate&#34;" in body


def test_the_explorer_follows_the_documented_example():
    """docs/scene-graph.md's example: one yellow lock on d2 between r2 and r4, its key in r2."""
    data = dict(LOCKED)
    for step in pipeline.STEPS:
        data = pipeline.run_step(step, data).data
    level = build_level(data["sceneGraph"])
    assert [room.id for room in level.rooms] == ["r1", "r2", "r3", "r4", "r5"]
    assert {door.id: door.colour for door in level.doors if door.lock} == {"d2": LOCK_COLOURS["yellow"]}
    assert level.path_steps == (
        "Start in r1.",
        "Pick up the yellow key in r2.",
        "Open the yellow door d2 from r2 into r4.",
        "Reach the exit in r3 (5 rooms walked, 1 key).",
    )
    assert len(level.path_points.split()) == 1 + 1 + 4 + 1  # start, the key, four doors, the exit
    hall = next(room for room in level.rooms if room.id == "r2")
    assert "yellow key" in hall.contents and "skeleton ×2" in hall.contents


def test_a_room_of_cells_is_drawn_as_runs():
    assert outline({"rect": [1, 2, 3, 4]}) == "M1 2h3v4h-3z"
    assert outline({"cells": [[3, 1], [4, 1], [5, 1], [4, 2]]}) == "M3 1h3v1h-3zM4 2h1v1h-1z"


def test_the_form_offers_every_style_each_described(client):
    """A style added to the pipeline without a description would show a bare radio button."""
    markup = parsed(client.get("/console/"))
    offered = [attrs["value"] for tag, attrs in markup.tags if tag == "input" and attrs.get("name") == "style"]
    assert offered == list(pipeline.STYLES) and len(offered) == 6
    descriptions = [markup.text[f"style-{name}-about"].strip() for name in pipeline.STYLES]
    assert all(descriptions) and len(set(descriptions)) == len(descriptions), descriptions


def test_a_key_is_told_from_an_enemy_by_its_shape_not_only_its_colour(client, services):
    """A red key drawn as a circle looked like an enemy: keys need a shape of their own, in the map and legend."""
    markup = parsed(client.get(f"/console/jobs/{done_job(services)}"))
    shapes: dict[str, set[tuple[str, str | None]]] = {}
    for tag, attrs in markup.tags:
        if "data-entity-kind" in attrs:
            shapes.setdefault(attrs["data-entity-kind"], set()).add((tag, attrs.get("d")))
    assert shapes.get("key") and shapes.get("enemy"), shapes
    assert len(shapes["key"]) == 1, "every key is drawn alike"
    for kind, drawn in shapes.items():
        if kind != "key":
            assert {tag for tag, _ in drawn}.isdisjoint(tag for tag, _ in shapes["key"]), (kind, drawn)
    legend = {
        (tag, attrs.get("d"))
        for tag, attrs in markup.tags
        if attrs.get("class") == "entity key" and "data-entity" not in attrs
    }
    assert legend == shapes["key"], "the legend shows the key as the map draws it"


def test_a_step_shows_running_once_its_job_runs_not_while_its_first_message_waits(client, services):
    """The API's item hands the first step its lease before the message is received (tasks/dispatch.py):
    a queued job's page shows every step waiting; once the first step records, the step its record
    handed the lease to shows running."""
    sent: list = []
    job, _ = submit_job(
        services.jobs, LOCKED, ttl_days=1, enqueue=lambda job_id, request_id, **kw: sent.append(kw), lease_seconds=15
    )
    assert services.jobs.get(job.job_id).leases  # the first step's, handed with its message

    def running() -> list[str]:
        page = client.get(f"/console/jobs/{job.job_id}").get_data(as_text=True)
        return re.findall(r'class="step step-pending step-running" data-step="(\w+)"', page)

    assert running() == []
    run_step(
        services,
        job.job_id,
        pipeline.STEPS[0],
        delivery=sent[0]["leased"].delivery,
        leased=sent[0]["leased"].job,
        hand_on=lambda handover, lease: None,
    )
    assert services.jobs.get(job.job_id).state is JobState.RUNNING
    assert running() == [pipeline.STEPS[1]]

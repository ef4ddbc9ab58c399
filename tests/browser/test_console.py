"""The console in a real browser (chromium, Playwright) against the real stack: emulator, worker, gunicorn.

The first test runs before the module's worker starts, so a job is seen queued for as long as the
test needs; the others share the worker. Every page is checked with axe-core.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from datetime import datetime
from unittest.mock import ANY

import pytest
import requests

import pipeline
from api.console.level import LOCK_COLOURS
from api.console.pages import duration, size, when
from tasks.artifacts import ARTIFACTS
from tasks.doom_nodes import node_builder
from tests.browser.conftest import ROOT, TOKEN, assert_accessible

expect = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (the dev extra)"
).expect

pytestmark = pytest.mark.integration

EXPLORED = {"prompt": "a locked crypt with keys and a boss", "seed": 7, "style": "dungeon", "rooms": 14}
# Right-to-left first, emoji (one a ZWJ family), a word too long for any line (still long in the list's
# 80-character preview), more right-to-left text and a decomposed accent.
UNICODE_PROMPT = "מסדרון 👻 👨‍👩‍👧 " + "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3 + " نور خافت, cafe\u0301"
# UPDATE_SCREENSHOTS=1 writes the README's pictures (docs/console-*.png) from this run.
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"


def submit(stack, body: dict, drill: str | None = None) -> str:
    headers = {"X-Fault-Drill": drill} if drill else {}
    response = requests.post(f"{stack.url}/generate-scene", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def hide(page, hidden: bool) -> None:
    page.evaluate("h => { window.__hidden = h; document.dispatchEvent(new Event('visibilitychange')); }", hidden)


def step_names(page) -> list[str]:
    return page.locator("#timeline .step-ok").evaluate_all("els => els.map(e => e.dataset.step)")


def room_facts(page) -> dict[str, str]:
    """The explorer's room panel as shown: Room, Kind, Depth, Zone, Light, Stands here."""
    return page.locator("#room-info-text div").evaluate_all(
        "divs => Object.fromEntries(divs.map(d => [d.firstChild.textContent, d.lastChild.textContent]))"
    )


def shown_facts(room: dict) -> dict[str, str]:
    """What the room panel must show of a sceneGraph.json room (what stands in it aside)."""
    numbers = {name.capitalize(): str(room[name]) for name in ("depth", "zone", "light")}
    return {"Room": room["id"], "Kind": room["kind"], **numbers, "Stands here": ANY}


def status_of(stack, job_id: str) -> dict:
    return requests.get(f"{stack.url}/status/{job_id}", timeout=10).json()


def took(status: dict) -> str:
    """A terminal job's duration as the console words it: created to last update."""
    start, end = (datetime.fromisoformat(status[name]) for name in ("createdAt", "updatedAt"))
    return duration(int((end - start).total_seconds() * 1000))


def fact(page, term: str) -> str:
    """The value beside ``term`` in the job page's request facts (Style, Seed, ...)."""
    return (
        page.locator(".request .facts div", has=page.locator("dt", has_text=re.compile(f"^{term}$")))
        .locator("dd")
        .inner_text()
    )


def assert_fits(page, width: int) -> None:
    """Nothing spills sideways: the page does not scroll horizontally at this width."""
    page.set_viewport_size({"width": width, "height": 740 if width < 1000 else 2160})
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"the page scrolls sideways at {width} px"


def test_submit_from_the_form_and_watch_the_job_run(page, stack, request):
    assert stack.workers == 0, "this test runs first, before the module's worker starts"
    page.goto("/console/")
    assert_accessible(page)

    # Keyboard only. The API's validation errors appear next to the fields they name, in its words.
    page.focus("#prompt")
    page.keyboard.type("a hall of echoes")
    page.keyboard.press("Tab")  # into the style radios (doom is checked)
    page.keyboard.press("ArrowRight")  # the next style, dungeon
    assert page.locator("#style-dungeon").is_checked()
    page.focus("#seed")
    page.keyboard.type("abc")
    page.focus("#rooms")
    page.keyboard.type("99999")
    page.keyboard.press("Enter")
    api = requests.post(f"{stack.url}/generate-scene", json={"prompt": "x", "seed": "abc", "rooms": 99999}, timeout=10)
    fields = api.json()["error"]["details"]["fields"]
    expect(page.locator("#seed-error")).to_have_text(" ".join(fields["seed"]))
    expect(page.locator("#rooms-error")).to_have_text(" ".join(fields["rooms"]))
    assert page.get_attribute("#seed", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") in {"seed", "rooms"}
    assert page.url.endswith("/console/")

    # A valid request; a slow drill (added to the request on its way) keeps the job running 5 s.
    page.route(
        "**/generate-scene",
        lambda route: route.continue_(headers={**route.request.headers, "x-fault-drill": "slow:layout_rooms"}),
    )
    page.fill("#seed", "11")
    page.fill("#rooms", "")
    page.focus("#seed")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#state")).to_contain_text("queued")
    waiting = page.locator("#timeline .step-pending").evaluate_all("els => els.map(e => e.dataset.step)")
    assert waiting == list(pipeline.STEPS)
    assert page.locator("#progress").get_attribute("value") == "0"
    assert page.locator("label[for=progress]").inner_text().startswith("Progress")

    # Polling pauses while the tab is hidden, and comes back when it shows again.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if f"/status/{job_id}" in r.url else None)
    page.wait_for_timeout(1700)
    assert polls, "a queued job's page polls /status"
    hide(page, True)
    page.wait_for_timeout(300)
    before = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == before, "polled while the tab was hidden"
    hide(page, False)
    page.wait_for_timeout(400)
    assert len(polls) > before, "did not poll again once visible"
    assert page.locator("#announce").inner_text() == "", "the live region speaks on state changes only"

    request.getfixturevalue("worker")  # now a worker takes the job
    seen_states, seen_steps, progress, announced = [], [], [], []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = page.locator("#state").inner_text().split()[-1]
        if not seen_states or seen_states[-1] != state:
            seen_states.append(state)
        seen_steps.append(step_names(page))
        progress.append(int(page.locator("#progress").get_attribute("value")))
        said = page.locator("#announce").inner_text()
        if said and (not announced or announced[-1] != said):
            announced.append(said)
        if state == "done":
            break
        page.wait_for_timeout(200)
    assert seen_states == ["queued", "running", "done"], seen_states
    expect(page.locator("#announce")).to_have_text("The job is now done.")
    assert announced[0] == "The job is now running.", announced
    for names in seen_steps:
        assert names == list(pipeline.STEPS[: len(names)]), names  # steps appear in order
    assert seen_steps[-1] == list(pipeline.STEPS)
    assert progress == sorted(progress) and progress[-1] == 100
    assert [s for s in {tuple(n) for n in seen_steps} if 0 < len(s) < len(pipeline.STEPS)], "no step seen mid-run"

    # Polling stops at a terminal state.
    settled = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == settled, "still polling a done job"
    expect(page.locator("#level-svg")).to_be_visible()  # the level appeared without a reload

    # Each step with its duration and summary, as /status records them; the job's own duration.
    status = status_of(stack, job_id)
    shown = page.locator("#timeline .step").evaluate_all(
        "els => els.map(e => [e.dataset.step, e.querySelector('.step-duration').textContent,"
        " e.querySelector('.step-summary').textContent])"
    )
    assert all(step["summary"] for step in status["steps"]), status["steps"]
    assert shown == [[step["name"], duration(step["durationMs"]), step["summary"]] for step in status["steps"]]
    expect(page.locator(".took")).to_have_text(f"took {took(status)}")
    assert_accessible(page)


@pytest.fixture(scope="module")
def explored(worker, stack) -> str:
    """The id of a done job whose level has locks, keys and a boss."""
    job_id = submit(stack, EXPLORED)
    assert stack.wait_terminal(job_id, timeout=60)["state"] == "done"
    return job_id


def test_the_level_explorer_draws_the_scene_graph(page, explored, stack, tmp_path):
    job_id = explored
    scene = requests.get(f"{stack.url}/jobs/{job_id}/artifacts/sceneGraph.json", timeout=10).json()
    ascii_map = requests.get(f"{stack.url}/jobs/{job_id}/artifacts/asciiMinimap.txt", timeout=10).text
    page.goto(f"/console/jobs/{job_id}")

    drawn = page.locator("#level-svg [data-room]").evaluate_all("els => els.map(e => e.dataset.room)")
    assert sorted(drawn) == sorted(room["id"] for room in scene["rooms"])
    assert page.locator("#level-svg [data-entity]").count() == len(scene["entities"])
    assert page.locator("#level-svg [data-door]").count() == len(scene["doors"])
    assert scene["locks"], "the request asks for keys"
    plain = {page.get_attribute(f'[data-door="{d["id"]}"]', "fill") for d in scene["doors"] if not d["lock"]}
    for lock in scene["locks"]:
        door = page.get_attribute(f'[data-door="{lock["door"]}"]', "fill")
        key = page.get_attribute(f'[data-entity="{lock["key"]}"]', "fill")
        assert door == key == LOCK_COLOURS[lock["color"]], lock
        assert door not in plain
    for name in ("rooms", "loops", "pathLength", "enemies", "items"):
        assert page.locator(f'[data-metric="{name}"]').inner_text() == str(scene["metrics"][name])

    # The critical path: hidden until toggled (by keyboard), then start -> each key -> exit.
    line = page.locator("#critical-path")
    assert not line.is_visible()
    page.focus("#path-toggle")
    page.keyboard.press("Space")
    expect(line).to_be_visible()
    steps = page.locator("#path-steps li").all_inner_texts()
    keys = [e for e in scene["entities"] if e["kind"] == "key"]
    assert len([s for s in steps if s.startswith("Pick up the")]) == len(keys)
    assert [s for s in steps if s.startswith("Open the")] == [
        s for s in steps if re.match(r"Open the (red|blue|yellow) door", s)
    ] and len([s for s in steps if s.startswith("Open the")]) == len(scene["locks"])
    assert scene["graph"]["exit"] in steps[-1]
    points = line.get_attribute("points").split()
    assert len(points) == 2 + len(keys) + len(scene["graph"]["criticalPath"]) - 1

    # Focus a room by keyboard: its kind, depth, zone, light and contents are shown; arrows move on.
    rooms = {room["id"]: room for room in scene["rooms"]}
    page.focus('#level-svg .room[tabindex="0"]')
    first = page.evaluate("document.activeElement.dataset.room")
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("document.activeElement.dataset.room")
    assert focused != first and focused in rooms
    assert room_facts(page) == shown_facts(rooms[focused])
    behind_locks = max(scene["rooms"], key=lambda room: room["zone"])
    assert behind_locks["zone"] > 0, "a level with locks has rooms behind them"
    page.focus(f'[data-room="{behind_locks["id"]}"]')
    assert room_facts(page) == shown_facts(behind_locks)
    busy = max(scene["rooms"], key=lambda room: sum(e["room"] == room["id"] for e in scene["entities"]))
    page.hover(f'[data-room="{busy["id"]}"] .floor')
    standing = [e["type"].replace("_", " ") for e in scene["entities"] if e["room"] == busy["id"]]
    info = page.locator("#room-info-text").inner_text()
    assert busy["id"] in info and all(name in info for name in standing), info

    # The minimap: crisp, zoomable by button and keyboard; the ASCII text alternative; the files.
    minimap = page.locator("#minimap")
    assert minimap.evaluate("img => img.naturalWidth > 0 && getComputedStyle(img).imageRendering") == "pixelated"
    page.click("text=Zoom in")
    expect(page.locator("#zoom-level")).to_have_text("150%")
    page.focus("#minimap-viewport")
    page.keyboard.press("-")
    expect(page.locator("#zoom-level")).to_have_text("100%")
    before = minimap.evaluate("img => img.style.transform")
    page.keyboard.press("ArrowLeft")
    assert minimap.evaluate("img => img.style.transform") != before
    assert page.locator("#ascii-minimap").text_content().rstrip("\n") == ascii_map.rstrip("\n")
    files = dict(
        zip(
            page.locator(".files [data-file]").evaluate_all("els => els.map(e => e.dataset.file)"),
            page.locator(".files td.size").all_inner_texts(),
            strict=True,
        )
    )
    assert {"sceneGraph.json", "asciiMinimap.txt", "minimap.png"} <= set(files)
    for name, shown in files.items():
        body = requests.get(f"{stack.url}/jobs/{job_id}/artifacts/{name}", timeout=10).content
        assert shown == size(len(body)), name
    assert_accessible(page)

    # The README's pictures, taken here so they show what the console really draws.
    page.focus(f'[data-room="{busy["id"]}"]')
    page.locator("#explorer-h").scroll_into_view_if_needed()
    page.locator(".explorer").screenshot(path=tmp_path / "console-explorer.png")
    page.keyboard.press("Space")  # path off for the page picture
    page.focus("#path-toggle")
    page.keyboard.press("Space")
    page.screenshot(path=tmp_path / "console-job.png", full_page=True)
    if UPDATE_SCREENSHOTS:
        for name in ("console-job.png", "console-explorer.png"):
            shutil.copyfile(tmp_path / name, ROOT / "docs" / name)

    # 360 px wide and 4K: nothing spills sideways. Dark follows the system.
    for width, height in ((360, 740), (3840, 2160)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth") <= width, width
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(n) for n in re.findall(r"\d+", background)[:3]) < 120, background


def test_a_done_job_offers_map_wad_and_says_how_to_play_it(page, explored):
    if node_builder() is None:
        pytest.skip("zdbsp is not installed (apt-get install zdbsp): jobs skip map.wad without it")
    page.goto(f"/console/jobs/{explored}")
    files = page.locator(".files [data-file]").evaluate_all("els => els.map(e => e.dataset.file)")
    assert files == [artifact.name for artifact in ARTIFACTS]
    expect(page.locator('[data-file="map.wad"] a')).to_have_attribute("download", "map.wad")
    expect(page.get_by_role("heading", name="Play map.wad")).to_be_visible()
    how = page.locator("h4:text-is('Play map.wad') ~ pre").inner_text()
    assert "chocolate-doom -iwad" in how and "-file map.wad -warp 1" in how and "-playdemo demo1" in how


def test_a_failed_job_is_retried_from_the_page_with_the_token(page, worker, stack):
    job_id = submit(stack, {"prompt": "a hall that fails once", "seed": 3}, drill="fail:connect_doors")
    failed = stack.wait_terminal(job_id, timeout=60)
    assert failed["state"] == "failed"
    page.goto(f"/console/jobs/{job_id}")
    expect(page.locator("#error-code")).to_have_text("FAULT_DRILL")
    expect(page.locator("#error-message")).to_have_text(failed["error"]["message"])
    assert "connect_doors" in page.locator(".details").inner_text()  # details, as JSON
    retry = page.locator("#retry-button")
    expect(retry).to_be_disabled()
    expect(page.locator("#retry-why")).to_contain_text("operator token")
    assert_accessible(page)

    # A wrong token: the API's 401, in its own words; the token is asked for again.
    wrong = requests.post(f"{stack.url}/jobs/{job_id}/retry", headers={"X-INTERNAL-TOKEN": "nope"}, timeout=10).json()
    page.fill("#token", "nope")
    page.press("#token", "Enter")
    expect(retry).to_be_enabled()
    retry.click()
    expect(page.locator("#operator-result")).to_contain_text(
        f"401 {wrong['error']['code']}: {wrong['error']['message']}"
    )
    expect(page.locator("#token-form")).to_be_visible()
    expect(retry).to_be_disabled()

    stale = page.context.new_page()  # another tab, open before the retry: it will be out of date
    stale.add_init_script("window.__hidden = false")
    stale.goto(f"/console/jobs/{job_id}")

    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.fill("#reason", "the drill is over")
    retry.click()
    expect(page.locator("#operator-result")).to_contain_text("Retried: attempt 2")
    expect(page.locator("#state")).to_contain_text("done", timeout=60_000)
    attempts = page.locator(".attempt-block")
    expect(attempts).to_have_count(2)
    assert "connect_doors" in attempts.nth(0).locator(".step-error").inner_text()
    second = attempts.nth(1).inner_text()
    assert "Retried by api:127.0.0.1" in second and "the drill is over" in second
    assert "Kept from earlier attempts: parse_prompt, layout_rooms." in second
    expect(retry).to_be_disabled()
    expect(page.locator("#retry-why")).to_have_text("Only a failed job can be retried. This one is done.")

    # The stale tab still shows it failed; its retry gets the API's 409, shown as worded, then catches up.
    refused = requests.post(f"{stack.url}/jobs/{job_id}/retry", headers={"X-INTERNAL-TOKEN": TOKEN}, timeout=10)
    assert refused.status_code == 409
    stale.fill("#token", TOKEN)
    stale.press("#token", "Enter")
    stale.click("#retry-button")
    error = refused.json()["error"]
    expect(stale.locator("#operator-result")).to_contain_text(f"409 {error['code']}: {error['message']}")
    expect(stale.locator("#state")).to_contain_text("done")
    stale.close()


def test_a_running_job_is_cancelled_from_the_page(page, worker, stack):
    job_id = submit(stack, {"prompt": "a hall to abandon", "seed": 4}, drill="slow:layout_rooms")
    page.goto(f"/console/jobs/{job_id}")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#state")).to_contain_text("running", timeout=30_000)
    # Any Unicode: the console sends the reason in a JSON body (no browser sends "間違い" in a header).
    page.fill("#reason", "wrong prompt — 間違い")
    page.click("#cancel-button")
    expect(page.locator("#operator-result")).to_have_text("The job is cancelled.")
    expect(page.locator("#state")).to_contain_text("cancelled")
    cancellation = page.locator("#cancellation").inner_text()
    assert "api:127.0.0.1" in cancellation and "wrong prompt — 間違い" in cancellation
    expect(page.locator("#announce")).to_have_text("The job is now cancelled.")
    expect(page.locator("#cancel-button")).to_be_disabled()
    expect(page.locator("#cancel-why")).to_contain_text("This one is cancelled.")
    status = requests.get(f"{stack.url}/status/{job_id}", timeout=10).json()
    assert status["cancellation"]["reason"] == "wrong prompt — 間違い"
    assert_accessible(page)


def test_the_jobs_list_filters_and_pages_in_the_url(page, worker, stack):
    marker = uuid.uuid4().hex[:6]
    failed = [submit(stack, {"prompt": f"list {marker} {n}", "seed": n}, drill="fail:parse_prompt") for n in range(3)]
    done = submit(stack, {"prompt": f"list {marker} done", "seed": 9})
    for job_id in (*failed, done):
        stack.wait_terminal(job_id, timeout=60)

    page.goto("/console/jobs")
    page.select_option("#state-filter", "failed")
    page.focus("#state-filter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Show button
    page.wait_for_url(re.compile(r"state=failed"))
    states = page.locator("table.jobs td:first-child").all_inner_texts()
    assert states and all(" ".join(text.split()) == "✕ failed" for text in states), states

    page.goto("/console/jobs?state=failed&limit=2")
    seen: list[list[str]] = []
    for _ in range(6):
        hrefs = page.locator("td.prompt a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        seen.append([href.rsplit("/", 1)[1] for href in hrefs])
        assert len(hrefs) <= 2
        older = page.locator("a[rel=next]")
        if set(failed) <= {job for ids in seen for job in ids} or not older.count():
            break
        older.click()
        page.wait_for_url(re.compile(r"cursor="))
        assert "state=failed" in page.url and "limit=2" in page.url
    flat = [job for ids in seen for job in ids]
    assert len(seen) >= 2 and len(flat) == len(set(flat)), seen
    assert [job for job in flat if job in failed] == failed[::-1], "newest first, across pages"
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the list spills sideways at 360 px"
    page.set_viewport_size({"width": 1280, "height": 900})

    refused = page.goto("/console/jobs?state=failed&cursor=not-a-cursor")
    assert refused.status == 400 and "cursor" in page.locator("main").inner_text()
    assert_accessible(page)
    unknown = str(uuid.uuid4())
    missing = page.goto(f"/console/jobs/{unknown}")
    assert missing.status == 404
    expect(page.locator("main p").first).to_have_text(f"There is no job {unknown}.")
    assert_accessible(page)

    page.goto("/console/jobs?state=done")
    row = page.locator("tr", has=page.locator(f'a[href$="{done}"]'))
    thumb = row.locator("img.thumb")
    expect(thumb).to_be_visible()
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    cells = row.locator("td")
    status = status_of(stack, done)
    assert cells.nth(2).inner_text() == pipeline.DEFAULT_STYLE
    assert cells.nth(3).inner_text() == when(status["createdAt"])
    assert cells.nth(3).locator("time").get_attribute("datetime") == status["createdAt"]
    assert cells.nth(4).inner_text() == took(status)


def test_a_hostile_prompt_is_shown_as_text(page, worker, stack):
    prompt = '<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 2">'
    page.goto("/console/")
    page.fill("#prompt", prompt)
    page.click("#submit-button")
    page.wait_for_url(re.compile(r"/console/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#prompt-text")).to_have_text(prompt)
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert_accessible(page)
    stack.wait_terminal(job_id, timeout=60)
    page.goto("/console/jobs")
    link = page.locator(f'a[href$="{job_id}"]')
    expect(link).to_have_text(prompt[:80])
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_any_unicode_prompt_is_sent_from_a_narrow_screen_and_shown_intact(page, worker, stack):
    """Emoji, right-to-left text and an unbreakable word, typed at 360 px with the seed left empty."""
    page.goto("/console/")
    for width in (3840, 360):  # the form fits a 4K screen and a phone, every control on screen
        assert_fits(page, width)
        for control in ("#prompt", "#style-maze", "#seed", "#rooms", "#submit-button"):
            box = page.locator(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, control, box)
    assert_accessible(page)

    page.fill("#prompt", UNICODE_PROMPT)
    page.check("#style-maze")
    with page.expect_request("**/generate-scene") as sent:
        page.click("#submit-button")
    assert sent.value.post_data_json == {"prompt": UNICODE_PROMPT, "style": "maze"}  # as typed; no seed
    page.wait_for_url(re.compile(r"/console/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    status = status_of(stack, job_id)
    assert status["request"]["prompt"] == UNICODE_PROMPT
    prompt = page.locator("#prompt-text")
    expect(prompt).to_have_text(UNICODE_PROMPT)
    assert prompt.evaluate("p => getComputedStyle(p).direction") == "rtl", "a Hebrew prompt reads right to left"
    assert prompt.evaluate("p => p.scrollWidth <= p.clientWidth"), "the long word runs out of its box"
    assert fact(page, "Seed") == str(status["request"]["seed"]), "the seed the API drew is shown"
    assert fact(page, "Style") == "maze"
    assert_fits(page, 360)

    assert stack.wait_terminal(job_id, timeout=60)["state"] == "done"
    expect(page.locator("#state")).to_contain_text("done")
    assert_fits(page, 360)
    page.goto("/console/jobs")
    link = page.locator(f'a[href$="{job_id}"]')
    expect(link).to_have_text(UNICODE_PROMPT[:80])
    assert_fits(page, 360)
    # The table may scroll inside its region at 360 px, but the long word must not stretch its column.
    column, region = link.locator("xpath=ancestor::td").bounding_box(), page.locator(".table-wrap").bounding_box()
    assert column and region and column["width"] <= region["width"], "the long word stretches the prompt column"

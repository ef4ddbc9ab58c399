"""Unit tests for validate_level: each scene/1 rule caught, regeneration bounded and recorded."""

from __future__ import annotations

import copy
import json

import pytest

import pipeline.validate
from pipeline import STEPS, LevelInvalid, encode_json, run_step, scene_problems
from tasks.steps import job_error
from tests.scene_rules import check_scene, floor_of

REQUEST = {"prompt": "a locked vault with keys and 16 rooms", "seed": 11, "style": "dungeon"}


def outputs(request: dict = REQUEST) -> dict[str, dict]:
    data, by_step = request, {}
    for name in STEPS:
        data = json.loads(encode_json(run_step(name, data).data))
        by_step[name] = data
    return by_step


@pytest.fixture(scope="module")
def steps() -> dict[str, dict]:
    return outputs()


@pytest.fixture
def scene(steps) -> dict:
    return copy.deepcopy(steps["validate_level"]["sceneGraph"])


def room(scene: dict, room_id: str) -> dict:
    return next(r for r in scene["rooms"] if r["id"] == room_id)


def test_the_level_used_here_is_valid_and_has_locks(scene):
    check_scene(scene)
    assert scene_problems(scene) == []
    assert len(scene["locks"]) >= 2


def _overlap(scene):
    a, b = scene["rooms"][0], scene["rooms"][1]
    b.pop("cells", None)
    x, y = floor_of(a)[0]
    b["rect"] = [x, y, 1, 1]


def _touch(scene):
    # A one-cell room on a room's wall, right next to its floor.
    width = scene["grid"]["width"]
    used = {c for r in scene["rooms"] for c in floor_of(r)} | {tuple(d["at"]) for d in scene["doors"]}
    x, y = next((x, y) for r in scene["rooms"] for x, y in floor_of(r) if x + 1 < width - 1 and (x + 1, y) not in used)
    scene["rooms"].append({"id": "extra", "kind": "room", "rect": [x + 1, y, 1, 1], "tags": []})


def _door_on_floor(scene):
    scene["doors"][0]["at"] = list(floor_of(room(scene, scene["doors"][0]["a"]))[0])


def _door_between_wrong_rooms(scene):
    door = scene["doors"][0]
    door["b"] = next(r["id"] for r in scene["rooms"] if r["id"] not in (door["a"], door["b"]))


def _entity_off_floor(scene):
    scene["entities"][-1]["at"] = list(scene["doors"][0]["at"])


def _entities_share_a_cell(scene):
    scene["entities"][-1]["at"] = list(scene["entities"][-2]["at"])
    scene["entities"][-1]["room"] = scene["entities"][-2]["room"]


def _enemy_at_the_start(scene):
    start = next(e for e in scene["entities"] if e["kind"] == "start")
    free = [c for c in floor_of(room(scene, start["room"])) if list(c) not in [e["at"] for e in scene["entities"]]]
    enemy = next(e for e in scene["entities"] if e["kind"] == "enemy")
    enemy["room"], enemy["at"] = start["room"], list(free[0])


def _no_exit(scene):
    scene["entities"] = [e for e in scene["entities"] if e["kind"] != "exit"]


def _lock_of_another_colour(scene):
    lock = scene["locks"][0]
    next(d for d in scene["doors"] if d["id"] == lock["door"])["lock"] = None


def _key_behind_its_own_lock(scene):
    # The key moved into the room beyond its lock: the lock can never be opened.
    lock = scene["locks"][0]
    door = next(d for d in scene["doors"] if d["id"] == lock["door"])
    zone = {r["id"]: r["zone"] for r in scene["rooms"]}
    beyond = door["a"] if zone[door["a"]] > zone[door["b"]] else door["b"]
    key = next(e for e in scene["entities"] if e["id"] == lock["key"])
    taken = [e["at"] for e in scene["entities"]]
    key["room"], key["at"] = beyond, list(next(c for c in floor_of(room(scene, beyond)) if list(c) not in taken))


def _broken_critical_path(scene):
    path = scene["graph"]["criticalPath"]
    del path[len(path) // 2]


def _wrong_metrics(scene):
    scene["metrics"]["rooms"] += 1


def _unreachable_room(scene):
    # Drop a door that joins a dead end: its room is cut off.
    counts = {}
    for door in scene["doors"]:
        for end in (door["a"], door["b"]):
            counts[end] = counts.get(end, 0) + 1
    scene["doors"] = [
        d for d in scene["doors"] if not (counts[d["b"]] == 1 and d["b"] != scene["graph"]["start"] and not d["lock"])
    ][:]


def _unsorted_cells(scene):
    target = next(r for r in scene["rooms"] if "cells" in r and len(r["cells"]) > 1)
    target["cells"].reverse()


def _wrong_schema(scene):
    scene["schema"] = "scene/0"


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (_overlap, "overlap"),
        (_touch, "with no wall between"),
        (_door_on_floor, "stands on floor"),
        (_door_between_wrong_rooms, "does not join floor"),
        (_entity_off_floor, "is not on floor"),
        (_entities_share_a_cell, "shares its cell"),
        (_enemy_at_the_start, "in the start room"),
        (_no_exit, "exactly one exit"),
        (_lock_of_another_colour, "locked in that colour"),
        (_key_behind_its_own_lock, "cannot be reached"),
        (_broken_critical_path, "criticalPath cannot go"),
        (_wrong_metrics, "metrics.rooms"),
        (_unreachable_room, "cannot be reached"),
        (_unsorted_cells, "sorted by y then x"),
        (_wrong_schema, "scene.schema"),
    ],
)
def test_each_broken_rule_is_named(scene, break_it, expected):
    break_it(scene)
    found = scene_problems(scene)
    assert any(expected in problem for problem in found), found


def test_problems_never_raise_on_junk():
    for junk in (None, [], "scene", {"schema": "scene/1"}, {"schema": "scene/1", "grid": {"width": 5}}):
        assert scene_problems(junk)


def _enemy_moved_to_start(data: dict) -> dict:
    data = copy.deepcopy(data)
    start = data["progression"]["start"]
    taken = [e["at"] for e in data["entities"]]
    start_room = next(r for r in data["rooms"] if r["id"] == start)
    enemy = next(e for e in data["entities"] if e["kind"] == "enemy")
    enemy["room"], enemy["at"] = start, list(next(c for c in floor_of(start_room) if list(c) not in taken))
    return data


def test_a_failing_level_is_regenerated_and_the_rejection_recorded(steps):
    broken = _enemy_moved_to_start(steps["populate"])
    output = run_step("validate_level", broken)
    scene = output.data["sceneGraph"]
    check_scene(scene)
    assert scene["validation"]["attempts"] == 2
    (rejected,) = scene["validation"]["rejected"]
    assert rejected["attempt"] == 1 and any("in the start room" in p for p in rejected["problems"])
    assert scene["params"]["attempt"] == 2
    assert "after 1 rejected attempt" in output.summary
    # The regenerated level is the request's second attempt: the same bytes every time.
    assert encode_json(run_step("validate_level", broken).data) == encode_json(output.data)


def test_a_level_that_never_validates_fails_the_step_after_three_attempts(steps, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline.validate, "_problems", lambda read: seen.append(read) or ["forced problem"])
    with pytest.raises(LevelInvalid) as failure:
        run_step("validate_level", steps["populate"])
    assert len(seen) == 3 == failure.value.attempts
    assert str(failure.value) == "no valid level in 3 attempts; the last: forced problem"
    error = job_error("validate_level", failure.value)
    assert error.code == "LEVEL_INVALID" and error.details == {"step": "validate_level", "attempts": 3}
    assert error.message.startswith("validate_level: no valid level in 3 attempts")

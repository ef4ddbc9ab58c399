"""Unit tests for pipeline/: the step contract, determinism, level invariants and bad input."""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import pytest

from pipeline import (
    DEFAULT_STYLE,
    STEP_FUNCTIONS,
    STEPS,
    STYLES,
    PipelineError,
    StepOutput,
    encode_json,
    parse_prompt,
    run_step,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
PROMPTS = (
    "a spooky hallway",
    "huge boss lair full of treasure",
    "tiny cramped crypt with 3 rooms",
    "a sprawling maze of corridors, 24 rooms",
    "x",
)
SEEDS = (0, 123, 2**31 - 1)
CASES = [
    pytest.param({"prompt": prompt, "seed": seed, "style": style}, id=f"{style}-{seed}-{prompt[:12]}")
    for prompt in PROMPTS
    for seed in SEEDS
    for style in STYLES
]
ODD_PROMPTS = [
    "spooky\x00hall\x07way \x1b[31mred\x1b[0m",
    "👻 haunted 🏚️ mansion 👨‍👩‍👧 with 5 rooms",
    "ממלכה אפלה \u202ereversed\u202c مرحبا",
    "a" * 2000,
    "🏚" * 2000,
    "\x00" * 2000,
    "line\nbreak\r\ntab\tinside",
    "combining e\u0301 and zero\u200bwidth\u200d",
    "\ufeffbyte order mark",
    "\x7f\x80\x9f C1 controls \udbff\udfff".encode("utf-16", "surrogatepass").decode("utf-16"),
    '{"json": [1, 2]} </script> \' " \\ \\u0000',
    "İstanbul ǅ ß ﬁ Σσς",
]


def run_all(request: object) -> list[StepOutput]:
    """Run every step the way the worker does: each step sees the previous data after a JSON round trip."""
    outputs, data = [], request
    for name in STEPS:
        output = run_step(name, data)
        outputs.append(output)
        data = json.loads(encode_json(output.data))
    return outputs


@functools.cache
def _final(prompt: str, seed: int, style: str) -> str:
    return encode_json(run_all({"prompt": prompt, "seed": seed, "style": style})[-1].data).decode("utf-8")


def final(request: dict) -> dict:
    """The round-tripped render_minimap data for a request, cached across tests."""
    return json.loads(_final(request["prompt"], request["seed"], request["style"]))


def artifacts(request: dict) -> tuple[bytes, bytes]:
    """The two files the worker writes: sceneGraph.json and asciiMinimap.txt."""
    data = final(request)
    return encode_json(data["sceneGraph"]), data["asciiMinimap"].encode("utf-8")


def digests(request: dict) -> list[str]:
    return [hashlib.sha256(blob).hexdigest() for blob in artifacts(request)]


# --- public API and step contract -------------------------------------------------------------


def test_public_constants():
    assert STEPS == ("parse_prompt", "layout_rooms", "connect_doors", "populate", "render_minimap")
    assert tuple(STEP_FUNCTIONS) == STEPS
    assert 3 <= len(STYLES) <= 5 and DEFAULT_STYLE in STYLES


def test_encode_json_is_canonical():
    assert encode_json({"b": 1, "a": ["é", None, True]}) == (
        '{\n  "a": [\n    "é",\n    null,\n    true\n  ],\n  "b": 1\n}\n'.encode("utf-8")
    )


def test_run_step_rejects_unknown_step():
    with pytest.raises(KeyError):
        run_step("summon_demons", GOLDEN_REQUEST)


def test_run_step_dispatches_to_the_named_function():
    assert run_step("parse_prompt", GOLDEN_REQUEST) == STEP_FUNCTIONS["parse_prompt"](GOLDEN_REQUEST)


def _json_types_only(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_types_only(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_json_types_only(item) for item in value)
    return value is None or isinstance(value, (str, int, bool))


@pytest.mark.parametrize("request_", CASES[:8])
def test_every_step_keeps_the_contract(request_):
    expected_keys = {
        "parse_prompt": {"request", "features", "plan"},
        "layout_rooms": {"request", "features", "plan", "rooms"},
        "connect_doors": {"request", "features", "plan", "rooms", "doors"},
        "populate": {"request", "features", "plan", "rooms", "doors", "entities"},
        "render_minimap": {"sceneGraph", "asciiMinimap"},
    }
    for name, output in zip(STEPS, run_all(request_), strict=True):
        assert isinstance(output, StepOutput)
        assert set(output.data) == expected_keys[name], name
        assert _json_types_only(output.data), name
        assert json.loads(encode_json(output.data)) == output.data, name
        assert output.summary.strip() and "\n" not in output.summary and len(output.summary) < 200
        assert any(char.isdigit() for char in output.summary), output.summary


def test_steps_do_not_mutate_their_input():
    data: object = dict(GOLDEN_REQUEST)
    for name in STEPS:
        before = copy.deepcopy(data)
        output = run_step(name, data)
        assert data == before, name
        data = json.loads(encode_json(output.data))


def test_scene_graph_shape():
    scene = final(GOLDEN_REQUEST)["sceneGraph"]
    assert set(scene) == {
        "version",
        "request",
        "level",
        "features",
        "rooms",
        "doors",
        "entities",
        "legend",
        "stats",
    }
    assert scene["version"] == 1
    assert scene["request"] == GOLDEN_REQUEST
    assert scene["stats"]["rooms"] == len(scene["rooms"]) and scene["stats"]["doors"] == len(scene["doors"])
    enemies = [entity for entity in scene["entities"] if entity["type"] == "enemy"]
    assert scene["stats"]["enemies"] == len(enemies) > 0


def test_pipeline_imports_only_the_standard_library():
    for path in sorted((ROOT / "pipeline").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert all(root in sys.stdlib_module_names or root == "__future__" for root in roots), (
                path,
                roots,
            )
            assert not {"os", "time", "datetime", "secrets", "uuid"} & set(roots), path


def test_pipeline_uses_no_salted_hash_or_global_random_state():
    for path in sorted((ROOT / "pipeline").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name):
                assert node.id != "hash", path
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
            ):
                assert node.attr == "Random", (path, node.attr)


# --- determinism --------------------------------------------------------------------------------


def test_same_request_gives_identical_bytes_in_process():
    first = artifacts(GOLDEN_REQUEST)
    again = run_all(dict(GOLDEN_REQUEST))[-1].data
    assert first == (encode_json(again["sceneGraph"]), again["asciiMinimap"].encode("utf-8"))


_SUBPROCESS_SCRIPT = """
import hashlib, json, sys
from pipeline import STEPS, encode_json, run_step
for request in json.loads(sys.stdin.buffer.read().decode("utf-8")):
    data = request
    for name in STEPS:
        data = json.loads(encode_json(run_step(name, data).data))
    blobs = encode_json(data["sceneGraph"]), data["asciiMinimap"].encode("utf-8")
    print(" ".join(hashlib.sha256(blob).hexdigest() for blob in blobs))
"""


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_same_request_gives_identical_bytes_across_processes(hash_seed):
    requests = [GOLDEN_REQUEST] + [
        {"prompt": p, "seed": 7, "style": s} for p in ODD_PROMPTS[:3] for s in STYLES
    ]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_SCRIPT],
        input=encode_json(requests),
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    lines = result.stdout.decode("ascii").split()
    expected = [digest for request in requests for digest in digests(request)]
    assert lines == expected


def test_golden_level():
    # Changing the generator on purpose changes these; update both and say so in the change.
    data = final(GOLDEN_REQUEST)
    assert data["asciiMinimap"] == GOLDEN_MINIMAP
    assert digests(GOLDEN_REQUEST)[0] == GOLDEN_SCENE_SHA256


GOLDEN_SCENE_SHA256 = "52a0d62abcf4a5e5ecd027c4f2b570d2a4c5e5bb8f0146e25ffbd6b43a6cc72a"
GOLDEN_MINIMAP = (
    "###############################################\n"
    "#................#..#...i.#........#..........#\n"
    "#................#..#.....#........+..........#\n"
    "#................+..#.....+........############\n"
    "#................#..#.....#........#..........#\n"
    "#...z.........M..#..#.....#........#..A.......#\n"
    "#.........Rc.....#R.#.....#........#c.......d.#\n"
    "#.M..............#..#.....#........#..........#\n"
    "#.d..z...........#..#.....#....S..M#..........#\n"
    "#................#..#.....#........#..........#\n"
    "##################..#.....#........#..........#\n"
    "#...z......c.....#..#.....#........#..........#\n"
    "#................#..#.....#........+..........#\n"
    "#................+..#.....#........#..........#\n"
    "#................#..#.....#........#..........#\n"
    "#..............i.#..#.....#........#..........#\n"
    "############+#####..##+######+######..........#\n"
    "#................#..#...........#..+..........#\n"
    "#................#..#...........#..#..........#\n"
    "#..........K.....+..#...........#.i#######+####\n"
    "#................#..#...........#..#z.........#\n"
    "#......K.E....d..#..#...........#..+..........#\n"
    "#................#..+...........#d.#....d.....#\n"
    "#......i...c.....#..#.....ci....#..#......i...#\n"
    "#................#R.#...........#..#..........#\n"
    "#####+############..#...........#..#..i.......#\n"
    "#................+..#...........#..#..........#\n"
    "#................#..#...........#..#..........#\n"
    "###############################################\n"
)


def test_different_seeds_give_different_levels():
    minimaps = {final({**GOLDEN_REQUEST, "seed": seed})["asciiMinimap"] for seed in range(20)}
    assert len(minimaps) == 20


def test_each_style_gives_a_different_level():
    levels = {style: final({**GOLDEN_REQUEST, "style": style}) for style in STYLES}
    assert len({level["asciiMinimap"] for level in levels.values()}) == len(STYLES)
    legends = [level["sceneGraph"]["legend"] for level in levels.values()]
    assert len({encode_json(legend) for legend in legends}) == len(STYLES)
    # Walls, floor, doors, start, exit, boss, four enemies and four items: no glyph shared.
    assert all(len(set(legend.values())) == len(legend) == 14 for legend in legends)
    enemy_kinds = [
        {e["kind"] for e in level["sceneGraph"]["entities"] if e["type"] == "enemy"}
        for level in levels.values()
    ]
    assert all(not (a & b) for i, a in enumerate(enemy_kinds) for b in enemy_kinds[i + 1 :])


# --- level invariants ---------------------------------------------------------------------------


def _floor(room: dict) -> set[tuple[int, int]]:
    return {
        (x, y)
        for x in range(room["x"], room["x"] + room["w"])
        for y in range(room["y"], room["y"] + room["h"])
    }


@pytest.mark.parametrize("request_", CASES)
def test_rooms_stay_in_bounds_and_apart(request_):
    scene = final(request_)["sceneGraph"]
    width, height = scene["level"]["width"], scene["level"]["height"]
    assert width <= 64 and height <= 40
    owner: dict[tuple[int, int], str] = {}
    for room in scene["rooms"]:
        assert room["w"] >= 1 and room["h"] >= 1
        assert 1 <= room["x"] and room["x"] + room["w"] <= width - 1
        assert 1 <= room["y"] and room["y"] + room["h"] <= height - 1
        for cell in _floor(room):
            assert cell not in owner, f"{room['id']} overlaps {owner[cell]}"
            owner[cell] = room["id"]
    for (x, y), room_id in owner.items():
        for neighbour in ((x + 1, y), (x, y + 1)):
            assert owner.get(neighbour, room_id) == room_id, "two rooms touch with no wall between"
    kinds = [room["kind"] for room in scene["rooms"]]
    assert kinds.count("start") == 1 and kinds.count("exit") == 1
    assert set(kinds) <= {"start", "exit", "hall", "room", "corridor"}


@pytest.mark.parametrize("request_", CASES)
def test_doors_connect_every_room(request_):
    scene = final(request_)["sceneGraph"]
    rooms = {room["id"]: _floor(room) for room in scene["rooms"]}
    links: dict[str, set[str]] = {room_id: set() for room_id in rooms}
    for door in scene["doors"]:
        x, y = door["x"], door["y"]
        assert not any((x, y) in floor for floor in rooms.values()), "a door stands on a floor"
        sides = [((x - 1, y), (x + 1, y)), ((x, y - 1), (x, y + 1))]
        assert any(
            (a in rooms[door["from"]] and b in rooms[door["to"]])
            or (b in rooms[door["from"]] and a in rooms[door["to"]])
            for a, b in sides
        ), f"door {door['id']} is not between its rooms"
        links[door["from"]].add(door["to"])
        links[door["to"]].add(door["from"])
    start = next(iter(rooms))
    seen, queue = {start}, deque([start])
    while queue:
        for other in links[queue.popleft()] - seen:
            seen.add(other)
            queue.append(other)
    assert seen == set(rooms)
    assert len(scene["doors"]) >= len(rooms) - 1


@pytest.mark.parametrize("request_", CASES)
def test_entities_stand_inside_their_rooms(request_):
    scene = final(request_)["sceneGraph"]
    rooms = {room["id"]: room for room in scene["rooms"]}
    cells = [(entity["x"], entity["y"]) for entity in scene["entities"]]
    assert len(set(cells)) == len(cells)
    for entity in scene["entities"]:
        assert (entity["x"], entity["y"]) in _floor(rooms[entity["room"]]), entity
    by_type = {
        t: [e for e in scene["entities"] if e["type"] == t] for t in ("player_start", "exit", "enemy", "item")
    }
    assert len(by_type["player_start"]) == 1 and rooms[by_type["player_start"][0]["room"]]["kind"] == "start"
    assert len(by_type["exit"]) == 1 and rooms[by_type["exit"][0]["room"]]["kind"] == "exit"
    assert by_type["enemy"] and by_type["item"]
    assert all(rooms[e["room"]]["kind"] != "start" for e in by_type["enemy"])


@pytest.mark.parametrize("request_", CASES)
def test_minimap_draws_the_scene_graph(request_):
    data = final(request_)
    scene, minimap = data["sceneGraph"], data["asciiMinimap"]
    assert minimap.endswith("\n")
    rows = minimap[:-1].split("\n")
    assert len(rows) == scene["level"]["height"]
    assert {len(row) for row in rows} == {scene["level"]["width"]}
    assert minimap.count("S") == 1 and minimap.count("E") == 1
    assert minimap.count("+") == len(scene["doors"])
    assert set(minimap) - {"\n"} <= set(scene["legend"])
    assert rows[0] == rows[-1] == "#" * len(rows[0])
    glyph_of = {meaning: glyph for glyph, meaning in scene["legend"].items()}
    for entity in scene["entities"]:
        assert rows[entity["y"]][entity["x"]] == glyph_of[f"{entity['type']}: {entity['kind']}"]
    for room in scene["rooms"]:
        assert all(rows[y][x] != "#" for x, y in _floor(room))


# --- prompt features ----------------------------------------------------------------------------


def _plan(prompt: str, style: str = "doom") -> dict:
    return parse_prompt({"prompt": prompt, "seed": 1, "style": style}).data["plan"]


@pytest.mark.parametrize(
    ("prompt", "rooms"),
    [
        ("a crypt with 5 rooms", 5),
        ("five chambers", 5),
        ("100 rooms", 24),
        ("0 rooms", 3),
        ("9" * 40 + " rooms", 24),
    ],
)
def test_room_count_hint_is_clamped_and_honoured(prompt, rooms):
    assert _plan(prompt)["rooms"] == rooms
    for style in STYLES:
        assert final({"prompt": prompt, "seed": 5, "style": style})["sceneGraph"]["stats"]["rooms"] == rooms


def test_keywords_shape_the_plan():
    plain, spooky = _plan("an old building"), _plan("a SPOOKY old building")
    assert spooky["enemies"] > plain["enemies"] and spooky["lighting"] < plain["lighting"]
    assert _plan("a long hallway")["corridorChance"] > plain["corridorChance"]
    huge, tiny = _plan("a huge building"), _plan("a tiny building")
    assert huge["width"] * huge["height"] > plain["width"] * plain["height"] > tiny["width"] * tiny["height"]
    assert _plan("treasure vault")["items"] > plain["items"]
    features = parse_prompt({"prompt": "Spooky HALLWAYS, a boss", "seed": 1, "style": "doom"}).data[
        "features"
    ]
    assert features["corridorHeavy"] and features["dark"] and features["boss"]


def test_boss_appears_only_when_asked_for():
    for seed in range(5):
        with_boss = final({"prompt": "the boss lair", "seed": seed, "style": "dungeon"})["sceneGraph"]
        bosses = [e for e in with_boss["entities"] if e["type"] == "boss"]
        exit_room = next(room["id"] for room in with_boss["rooms"] if room["kind"] == "exit")
        assert len(bosses) == 1 and bosses[0]["room"] == exit_room
        plain = final({"prompt": "the cellar", "seed": seed, "style": "dungeon"})["sceneGraph"]
        assert not [e for e in plain["entities"] if e["type"] == "boss"]


def test_corridor_prompts_get_more_corridors():
    def corridors(prompt: str) -> int:
        return sum(
            final({"prompt": prompt, "seed": s, "style": "doom"})["sceneGraph"]["stats"]["corridors"]
            for s in range(10)
        )

    assert corridors("a corridor maze") > corridors("a building")


# --- awkward and invalid input -----------------------------------------------------------------


@pytest.mark.parametrize("prompt", ODD_PROMPTS, ids=range(len(ODD_PROMPTS)))
@pytest.mark.parametrize("style", STYLES)
def test_odd_prompts_survive_intact(prompt, style):
    request = {"prompt": prompt, "seed": 99, "style": style}
    scene_bytes, minimap_bytes = artifacts(request)
    assert json.loads(scene_bytes.decode("utf-8"))["request"]["prompt"] == prompt
    assert len(scene_bytes) < 100_000
    assert minimap_bytes.decode("ascii").count("S") == 1


def test_prompt_is_trimmed_and_style_defaults():
    data = parse_prompt({"prompt": "  \t a hallway \n", "seed": 3}).data
    assert data["request"] == {"prompt": "a hallway", "seed": 3, "style": DEFAULT_STYLE}
    assert parse_prompt({"prompt": " " + "a" * 2000 + " ", "seed": 3}).data["request"]["prompt"] == "a" * 2000


def test_whole_pipeline_is_fast():
    request = {
        "prompt": ("huge spooky boss hallway, treasure, 24 rooms " * 50)[:2000],
        "seed": 2**31 - 1,
        "style": "scifi",
    }
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        run_all(request)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.1


@pytest.mark.parametrize(
    "request_",
    [
        "a spooky hallway",
        None,
        {"seed": 1, "style": "doom"},
        {"prompt": None, "seed": 1, "style": "doom"},
        {"prompt": 42, "seed": 1, "style": "doom"},
        {"prompt": "", "seed": 1, "style": "doom"},
        {"prompt": " \n\t ", "seed": 1, "style": "doom"},
        {"prompt": "a" * 2001, "seed": 1, "style": "doom"},
        {"prompt": "lone \ud800 surrogate", "seed": 1, "style": "doom"},
        {"prompt": "ok"},
        {"prompt": "ok", "seed": -1, "style": "doom"},
        {"prompt": "ok", "seed": 2**31, "style": "doom"},
        {"prompt": "ok", "seed": True, "style": "doom"},
        {"prompt": "ok", "seed": 1.0, "style": "doom"},
        {"prompt": "ok", "seed": "1", "style": "doom"},
        {"prompt": "ok", "seed": 1, "style": "DOOM"},
        {"prompt": "ok", "seed": 1, "style": "quake"},
        {"prompt": "ok", "seed": 1, "style": 3},
    ],
)
def test_invalid_requests_raise_pipeline_error(request_):
    with pytest.raises(PipelineError):
        parse_prompt(request_)


def _outputs() -> dict[str, dict]:
    return {
        name: json.loads(encode_json(output.data))
        for name, output in zip(STEPS, run_all(GOLDEN_REQUEST), strict=True)
    }


def _tampered(step: str, change) -> dict:
    data = _outputs()[step]
    change(data)
    return data


@pytest.mark.parametrize(
    ("step", "previous"),
    [
        ("layout_rooms", lambda: {}),
        ("layout_rooms", lambda: ["not", "an", "object"]),
        ("layout_rooms", lambda: _tampered("parse_prompt", lambda d: d["plan"].update(rooms=10**9))),
        ("layout_rooms", lambda: _tampered("parse_prompt", lambda d: d["request"].update(seed=False))),
        ("connect_doors", lambda: _outputs()["parse_prompt"]),
        (
            "connect_doors",
            lambda: _tampered("layout_rooms", lambda d: d["rooms"].append(dict(d["rooms"][0], id="x"))),
        ),
        ("connect_doors", lambda: _tampered("layout_rooms", lambda d: d["rooms"][0].update(x=0))),
        ("connect_doors", lambda: _tampered("layout_rooms", lambda d: d["rooms"][0].update(kind="exit"))),
        ("populate", lambda: _outputs()["layout_rooms"]),
        (
            "populate",
            lambda: _tampered("connect_doors", lambda d: d["doors"][0].update(x=d["rooms"][0]["x"])),
        ),
        ("populate", lambda: _tampered("connect_doors", lambda d: d["doors"][0].update(to="nowhere"))),
        ("render_minimap", lambda: _outputs()["connect_doors"]),
        ("render_minimap", lambda: _tampered("populate", lambda d: d["entities"][0].update(x=0))),
        ("render_minimap", lambda: _tampered("populate", lambda d: d["entities"].pop(0))),
        ("render_minimap", lambda: _tampered("populate", lambda d: d["request"].update(style="haunted"))),
    ],
)
def test_steps_reject_data_they_cannot_use(step, previous):
    with pytest.raises(PipelineError):
        run_step(step, previous())


def _leaf_paths(value: object, prefix: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [prefix] + [p for key, item in value.items() for p in _leaf_paths(item, (*prefix, key))]
    if isinstance(value, list):
        return [prefix] + [p for index, item in enumerate(value) for p in _leaf_paths(item, (*prefix, index))]
    return [prefix]


@pytest.mark.parametrize("step", STEPS[1:])
def test_steps_never_crash_on_corrupted_data(step):
    # Any field of the previous step's data replaced by a wrong-typed or out-of-range value gives a
    # PipelineError or a valid result, never another exception.
    previous = _outputs()[STEPS[STEPS.index(step) - 1]]
    for path in _leaf_paths(previous)[:400]:
        for value in (None, True, -1, 10**12, "", "r0", [], {}, 1.5):
            data = copy.deepcopy(previous)
            if not path:
                data = value
            else:
                target = data
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = value
            with contextlib.suppress(PipelineError):
                run_step(step, data)

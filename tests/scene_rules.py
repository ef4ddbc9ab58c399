"""The scene/1 rules (/docs/scene-graph.md), checked independently of pipeline/validate.py.

Written from the contract, not from the generator's code: a plain cell dictionary, a plain
breadth-first walk, keys picked up as rooms are entered. Tests assert with these so that a
validator bug cannot hide a generator bug.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise

CONTRACT_METRICS = {"rooms", "doors", "enemies", "loops", "pathLength", "reachable", "overlaps"}
ENTITY_KINDS = {"start", "exit", "key", "enemy", "item"}
COLORS = {"red", "blue", "yellow"}


def floor_of(room: dict) -> list[tuple[int, int]]:
    """A room's floor cells."""
    if "rect" in room:
        x, y, w, h = room["rect"]
        return [(cx, cy) for cy in range(y, y + h) for cx in range(x, x + w)]
    return [tuple(cell) for cell in room["cells"]]


def check_scene(scene: dict) -> None:
    """Assert every scene/1 rule; the message says which."""
    assert scene["schema"] == "scene/1"
    assert {
        "prompt",
        "seed",
        "style",
        "grid",
        "theme",
        "params",
        "rooms",
        "doors",
        "entities",
        "locks",
        "graph",
        "metrics",
    } <= set(scene)
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    rooms = {room["id"]: room for room in scene["rooms"]}
    assert len(rooms) == len(scene["rooms"]), "room ids repeat"

    owner: dict[tuple[int, int], str] = {}
    for room in scene["rooms"]:
        cells = floor_of(room)
        if "cells" in room:
            assert cells == sorted(cells, key=lambda c: (c[1], c[0])), f"{room['id']} cells not in reading order"
        for x, y in cells:
            assert 1 <= x <= width - 2 and 1 <= y <= height - 2, f"{room['id']} floor on or past the border"
            assert (x, y) not in owner, f"{room['id']} overlaps {owner.get((x, y))}"
            owner[(x, y)] = room["id"]
    for (x, y), room_id in owner.items():
        for other in ((x + 1, y), (x, y + 1)):
            assert owner.get(other, room_id) == room_id, f"{room_id} touches {owner[other]} with no wall"

    links: dict[str, list[tuple[dict, str]]] = {room_id: [] for room_id in rooms}
    door_cells = set()
    for door in scene["doors"]:
        x, y = door["at"]
        assert (x, y) not in owner and (x, y) not in door_cells, f"door {door['id']} on floor or another door"
        door_cells.add((x, y))
        if door["orientation"] == "vertical":
            sides, beside = [(x - 1, y), (x + 1, y)], [(x, y - 1), (x, y + 1)]
        else:
            assert door["orientation"] == "horizontal"
            sides, beside = [(x, y - 1), (x, y + 1)], [(x - 1, y), (x + 1, y)]
        assert {owner.get(side) for side in sides} == {door["a"], door["b"]}, f"door {door['id']} misplaced"
        # Added to the contract by docs/scene-graph.md: a is the west (or north) side.
        assert owner.get(sides[0]) == door["a"], f"door {door['id']}: a is not its west or north side"
        assert door["a"] != door["b"]
        assert all(cell not in owner for cell in beside), f"door {door['id']} has floor beside it"
        assert door["lock"] is None or door["lock"] in COLORS
        links[door["a"]].append((door, door["b"]))
        links[door["b"]].append((door, door["a"]))

    entities = scene["entities"]
    cells = [tuple(entity["at"]) for entity in entities]
    assert len(set(cells)) == len(cells), "two entities share a cell"
    for entity in entities:
        assert entity["kind"] in ENTITY_KINDS
        assert owner.get(tuple(entity["at"])) == entity["room"], f"entity {entity['id']} off its room's floor"
    graph = scene["graph"]
    starts = [e for e in entities if e["kind"] == "start"]
    exits = [e for e in entities if e["kind"] == "exit"]
    assert len(starts) == 1 and starts[0]["room"] == graph["start"]
    assert len(exits) == 1 and exits[0]["room"] == graph["exit"]
    assert graph["start"] != graph["exit"]
    assert not [e for e in entities if e["kind"] == "enemy" and e["room"] == graph["start"]], "enemy at the start"

    locks = {lock["color"]: lock for lock in scene["locks"]}
    assert len(locks) == len(scene["locks"]) <= 3 and set(locks) <= COLORS
    by_id = {entity["id"]: entity for entity in entities}
    key_room = {}
    for color, lock in locks.items():
        door = next(door for door in scene["doors"] if door["id"] == lock["door"])
        assert door["lock"] == color
        key = by_id[lock["key"]]
        assert key["kind"] == "key" and key["type"] == f"{color}_key"
        key_room[color] = key["room"]
    assert {door["lock"] for door in scene["doors"] if door["lock"]} == set(locks)

    # Walk from the start through open doors; walk again with the keys found, until nothing changes.
    held: set[str] = set()
    while True:
        reached = _walk(graph["start"], links, lambda door, held=held: door["lock"] is None or door["lock"] in held)
        found = {color for color, room in key_room.items() if room in reached}
        if found == held:
            break
        held = found
    assert reached == set(rooms), f"unreachable with the keys found: {sorted(set(rooms) - reached)[:5]}"
    for color, room in key_room.items():
        # Reachable with its own door shut, and with the doors of keys that lie behind it shut.
        assert room in _walk(graph["start"], links, lambda door, color=color: door["lock"] != color), (
            f"the {color} key lies behind its own lock"
        )

    path = graph["criticalPath"]
    assert path[0] == graph["start"] and path[-1] == graph["exit"]
    held = set()
    for here, there in pairwise(path):
        held |= {color for color, room in key_room.items() if room == here}
        assert any(o == there and (d["lock"] is None or d["lock"] in held) for d, o in links[here]), (
            f"critical path cannot step {here} -> {there}"
        )

    metrics = scene["metrics"]
    assert set(metrics) >= CONTRACT_METRICS
    assert metrics["rooms"] == len(rooms) and metrics["doors"] == len(scene["doors"])
    assert metrics["enemies"] == sum(e["kind"] == "enemy" for e in entities)
    assert metrics["loops"] == len(scene["doors"]) - len(rooms) + 1
    assert metrics["overlaps"] == 0 and metrics["reachable"] == 1.0 and metrics["pathLength"] > 0


def check_minimap(scene: dict, minimap: str) -> None:
    """The ASCII minimap draws the scene: grid size, floor, doors, locks, start and exit, a legend."""
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    map_part, legend = minimap.split("\n\n", 1)
    rows = map_part.split("\n")
    assert len(rows) == height and {len(row) for row in rows} == {width}
    assert legend.startswith("Legend") and minimap.endswith("\n")
    for room in scene["rooms"]:
        assert all(rows[y][x] not in " #" for x, y in floor_of(room))
    for door in scene["doors"]:
        x, y = door["at"]
        assert rows[y][x] == {"red": "R", "blue": "B", "yellow": "Y", None: "+"}[door["lock"]]
    start = next(e for e in scene["entities"] if e["kind"] == "start")
    exit_ = next(e for e in scene["entities"] if e["kind"] == "exit")
    assert rows[start["at"][1]][start["at"][0]] == "@" and map_part.count("@") == 1
    assert rows[exit_["at"][1]][exit_["at"][0]] == ">" and map_part.count(">") == 1
    for glyph in set(map_part) - {"\n", " "}:
        assert f"  {glyph}  " in f"  {legend}", f"glyph {glyph!r} is not in the legend"


def _walk(start: str, links: dict, passable) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for door, other in links[queue.popleft()]:
            if other not in seen and passable(door):
                seen.add(other)
                queue.append(other)
    return seen

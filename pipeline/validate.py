"""validate_level: check the level against scene/1's rules, regenerating a bounded number of times.

scene_problems() reads a scene/1 graph from JSON data alone and lists every rule it breaks: rooms
inside the border, not overlapping and never touching; doors between floor of their two rooms
with solid cells beside them; entities on floor of their room, one per cell, one start and one
exit where the graph says, no enemy in the start room; locks with their keys; every room reachable
from the start, picking up keys on the way; a critical path that walks; metrics that match.

A level that breaks a rule, or builds less than half the rooms asked for, is generated again from
the request with the next attempt's random streams (layout_rooms#2, ...), up to MAX_ATTEMPTS in
all; every rejection is recorded in the scene's "validation". After that the step fails, naming
what was wrong. (Same request, same bytes: the tests check that, across processes and hash seeds;
running the generator twice here would prove nothing more.)
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any, cast

from .contract import LevelInvalid, PipelineError, StepOutput, plural, require_field, require_int, require_mapping
from .doors import connect
from .grid import Grid
from .layout import lay_out
from .level import MAX_ATTEMPTS, MAX_GRID, Level
from .model import LOCK_COLORS, Door, Entity, Room
from .populate import furnish
from .scene import SCHEMA, adjacency_of, assemble
from .walk import reach_with_keys

MAX_PROBLEMS = 12
MIN_ROOMS_PERCENT = 50


def validate_level(previous: Mapping[str, Any]) -> StepOutput:
    """Assemble and check the scene graph; regenerate the level when it fails, a bounded number of times."""
    level = Level.from_data(previous)
    level.require("entities")
    attempt, rejected = level.attempt, []
    scene, found = _judge(level)
    while found:
        rejected.append({"attempt": attempt, "problems": found[:3]})
        if attempt >= MAX_ATTEMPTS:
            raise LevelInvalid(
                f"no valid level in {plural(attempt, 'attempt')}; the last: {'; '.join(found[:3])}", attempt
            )
        attempt += 1
        try:
            scene, found = _judge(_regenerate(level, attempt))
        except PipelineError as exc:
            scene, found = None, [f"attempt {attempt} could not be generated: {exc}"]
    # The loop ends only with a scene that has no problems, and _judge gives one whenever it finds none.
    scene = cast("dict[str, Any]", scene)
    scene["validation"] = {"attempts": attempt, "rejected": rejected}
    again = f" after {plural(len(rejected), 'rejected attempt')}" if rejected else ""
    summary = (
        f"Validated {plural(len(scene['rooms']), 'room')}, {plural(len(scene['doors']), 'door')} and "
        f"{plural(len(scene['locks']), 'lock')}{again}; critical path {scene['metrics']['pathLength']} steps"
    )
    return StepOutput({"sceneGraph": scene}, summary)


def _judge(level: Level) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        scene = assemble(level)
        # The scene's rooms, doors and entities are these objects' to_data(): no need to read them back.
        read = _Read(scene, (level.rooms or (), level.doors or (), level.entities or ()))
    except PipelineError as exc:
        return None, [str(exc)]
    return scene, _problems(read)


def _regenerate(level: Level, attempt: int) -> Level:
    fresh = Level(level.request, level.features, level.plan, attempt=attempt)
    return furnish(connect(lay_out(fresh)))


def scene_problems(scene: Any) -> list[str]:
    """Every scene/1 rule the scene breaks (at most MAX_PROBLEMS), or an empty list."""
    try:
        read = _Read(scene)
    except PipelineError as exc:
        return [str(exc)]
    return _problems(read)


def _problems(read: _Read) -> list[str]:
    problems: list[str] = []
    for check in (_floor, _doors, _entities, _locks, _reachable, _critical_path, _metrics, _quality):
        check(read, problems)
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems[:MAX_PROBLEMS]


class _Read:
    """A scene read from JSON: its parts as model objects, and an owner per grid cell."""

    def __init__(self, scene: Any, parts: tuple[Any, ...] | None = None) -> None:
        scene = require_mapping(scene, "scene")
        if scene.get("schema") != SCHEMA:
            raise PipelineError(f"scene.schema must be {SCHEMA!r}")
        grid = require_field(scene, "grid", Mapping, "scene")
        self.width = width = require_int(grid, "width", "scene.grid", 3, MAX_GRID)
        self.height = height = require_int(grid, "height", "scene.grid", 3, MAX_GRID)
        if parts is not None:
            self.rooms, self.doors, self.entities = (list(part) for part in parts)
        else:
            self.rooms = [Room.from_data(v, f"rooms[{i}]", width, height) for i, v in enumerate(_list(scene, "rooms"))]
            self.doors = [Door.from_data(v, f"doors[{i}]", width, height) for i, v in enumerate(_list(scene, "doors"))]
            self.entities = [
                Entity.from_data(v, f"entities[{i}]", width, height) for i, v in enumerate(_list(scene, "entities"))
            ]
        self.locks = [require_mapping(lock, "locks[]") for lock in _list(scene, "locks")]
        if not all(isinstance(lock.get(key), str) for lock in self.locks for key in ("color", "door", "key")):
            raise PipelineError("every lock needs a color, a door and a key, as strings")
        graph = require_field(scene, "graph", Mapping, "scene")
        self.start = require_field(graph, "start", str, "scene.graph")
        self.exit = require_field(graph, "exit", str, "scene.graph")
        self.path = require_field(graph, "criticalPath", list, "scene.graph")
        if not all(isinstance(room, str) for room in self.path):
            raise PipelineError("scene.graph.criticalPath must be a list of room ids")
        self.metrics = require_field(scene, "metrics", Mapping, "scene")
        self.params = scene.get("params") if isinstance(scene.get("params"), Mapping) else {}
        self.number = {room.id: number for number, room in enumerate(self.rooms, start=1)}
        if len(self.number) != len(self.rooms):
            raise PipelineError("room ids must be unique")
        for door in self.doors:
            if door.a not in self.number or door.b not in self.number:
                raise PipelineError(f"door {door.id} joins a room that does not exist")
        self.grid, self.overlaps = Grid.painted(width, height, self.rooms)
        self.owner = self.grid.owner

    def at(self, x: int, y: int) -> int:
        """The room number whose floor (x, y) is, 0 if none."""
        return self.owner[y * self.width + x]


def _list(scene: Mapping[str, Any], key: str) -> list[Any]:
    value: list[Any] = require_field(scene, key, list, "scene")
    return value


def _floor(read: _Read, problems: list[str]) -> None:
    for a, b, cell in read.overlaps[:3]:
        problems.append(f"rooms {read.rooms[a - 1].id} and {read.rooms[b - 1].id} overlap at {list(cell)}")
    touch = read.grid.touching(read.rooms)
    if touch:
        a, b, cell = touch
        problems.append(
            f"rooms {read.rooms[a - 1].id} and {read.rooms[b - 1].id} touch at {list(cell)} with no wall between"
        )


def _doors(read: _Read, problems: list[str]) -> None:
    cells = set()
    for door in read.doors:
        (ax, ay), (bx, by) = door.sides()
        beside = (
            [(door.x, door.y - 1), (door.x, door.y + 1)]
            if door.orientation == "vertical"
            else [(door.x - 1, door.y), (door.x + 1, door.y)]
        )
        joined = {read.at(ax, ay), read.at(bx, by)}
        if read.at(door.x, door.y) or (door.x, door.y) in cells:
            problems.append(f"door {door.id} stands on floor or on another door")
        elif door.a == door.b or joined != {read.number[door.a], read.number[door.b]}:
            problems.append(f"door {door.id} does not join floor of {door.a} and {door.b}")
        elif any(read.at(x, y) for x, y in beside):
            problems.append(f"door {door.id} has floor beside it along its wall")
        cells.add((door.x, door.y))
    if len({door.id for door in read.doors}) != len(read.doors):
        problems.append("door ids are not unique")


def _entities(read: _Read, problems: list[str]) -> None:
    cells = set()
    for entity in read.entities:
        if entity.room not in read.number or read.at(entity.x, entity.y) != read.number[entity.room]:
            problems.append(f"entity {entity.id} is not on floor of room {entity.room}")
        if (entity.x, entity.y) in cells:
            problems.append(f"entity {entity.id} shares its cell with another")
        cells.add((entity.x, entity.y))
        if entity.kind == "enemy" and entity.room == read.start:
            problems.append(f"enemy {entity.id} is in the start room")
    if len({entity.id for entity in read.entities}) != len(read.entities):
        problems.append("entity ids are not unique")
    for kind, room in (("start", read.start), ("exit", read.exit)):
        placed = [entity for entity in read.entities if entity.kind == kind]
        if len(placed) != 1 or placed[0].room != room:
            problems.append(f"there must be exactly one {kind} entity, in room {room} (graph.{kind})")


def _locks(read: _Read, problems: list[str]) -> None:
    doors = {door.id: door for door in read.doors}
    entities = {entity.id: entity for entity in read.entities}
    colors = []
    for lock in read.locks:
        color, door, key = lock.get("color"), doors.get(lock.get("door")), entities.get(lock.get("key"))
        colors.append(color)
        if color not in LOCK_COLORS or door is None or door.lock != color:
            problems.append(f"lock {color!r} does not name a door locked in that colour")
        if key is None or key.kind != "key" or key.type != f"{color}_key":
            problems.append(f"lock {color!r} does not name its key, a {color}_key entity")
    if len(set(colors)) != len(colors):
        problems.append("a lock colour appears twice")
    if {door.lock for door in read.doors if door.lock} != set(colors):
        problems.append("the locked doors and the locks list disagree")


def _key_rooms(read: _Read) -> dict[str, str]:
    return {entity.type.removesuffix("_key"): entity.room for entity in read.entities if entity.kind == "key"}


def _reachable(read: _Read, problems: list[str]) -> None:
    if read.start not in read.number or read.exit not in read.number:
        problems.append("graph.start and graph.exit must name rooms")
        return
    locked = {door.id: door.lock for door in read.doors if door.lock}
    zones, _ = reach_with_keys(adjacency_of(read.rooms, read.doors), read.start, locked, _key_rooms(read))
    lost = [room.id for room in read.rooms if room.id not in zones]
    if lost:
        problems.append(
            f"{plural(len(lost), 'room')} cannot be reached from the start with the keys found: {', '.join(lost[:5])}"
        )


def _critical_path(read: _Read, problems: list[str]) -> None:
    path = read.path
    if not path or path[0] != read.start or path[-1] != read.exit:
        problems.append("graph.criticalPath must run from graph.start to graph.exit")
        return
    between: dict[frozenset[Any], list[Door]] = {}
    for door in read.doors:
        between.setdefault(frozenset((door.a, door.b)), []).append(door)
    keys, held = _key_rooms(read), set()
    for here, there in pairwise(path):
        held |= {color for color, room in keys.items() if room == here}
        if not any(door.lock is None or door.lock in held for door in between.get(frozenset((here, there)), [])):
            problems.append(f"graph.criticalPath cannot go from {here} to {there} (no door, or no key yet)")
            return


def _metrics(read: _Read, problems: list[str]) -> None:
    expected = {
        "rooms": len(read.rooms),
        "doors": len(read.doors),
        "enemies": sum(entity.kind == "enemy" for entity in read.entities),
        "loops": len(read.doors) - len(read.rooms) + 1,
        "overlaps": 0,
        "reachable": 1.0,
    }
    for key, value in expected.items():
        if read.metrics.get(key) != value:
            problems.append(f"metrics.{key} is {read.metrics.get(key)!r}, expected {value!r}")
    steps = read.metrics.get("pathLength")
    if type(steps) is not int or steps < 1:
        problems.append("metrics.pathLength must be a positive number of steps")


def _quality(read: _Read, problems: list[str]) -> None:
    if read.start == read.exit:
        problems.append("the start and the exit are in the same room")
    wanted = read.params.get("rooms")
    built = sum(room.kind != "corridor" for room in read.rooms)
    if type(wanted) is int and built * 100 < wanted * MIN_ROOMS_PERCENT:
        problems.append(f"only {plural(built, 'room')} built of the {wanted} planned")

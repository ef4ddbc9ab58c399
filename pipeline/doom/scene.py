"""Read a scene/1 document into the cell grid that the map builder and the demo writer share.

Cells are (x, y) with x to the right and y down, as in the scene. Every reader checks what it
uses, so a malformed scene is a PipelineError naming the field, never a KeyError deep inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from ..contract import PipelineError, require_field, require_int, require_mapping
from .limits import MapTooLarge

Cell = tuple[int, int]
Direction = tuple[int, int]

NORTH, EAST, SOUTH, WEST = (0, -1), (1, 0), (0, 1), (-1, 0)
# Searches try neighbours in this fixed order, so ties break the same way on every machine.
DIRECTIONS: tuple[Direction, ...] = (NORTH, EAST, SOUTH, WEST)
LOCK_COLORS = ("red", "blue", "yellow")
# Doom's coordinates are 16-bit (up to 32,767), and zdbsp aborts on a map that reaches past
# 32,512 units east (its vertex map overflows): 509 cells of 64 units stay inside both.
MAX_GRID = 509
_ENTITY_KINDS = ("start", "exit", "key", "enemy", "item")


def step(cell: Cell, direction: Direction) -> Cell:
    """The neighbour of cell in direction."""
    return cell[0] + direction[0], cell[1] + direction[1]


@dataclass(frozen=True)
class Door:
    """A door cell between rooms a and b, locked by a key colour or not, and the door sector it is part of.

    Door cells side by side along a wall (they always join the same two rooms) make one wide
    door: one sector, named after its first door, that opens as a whole. Apart, each would stop
    the other from opening, as a door rises to just below its lowest neighbouring ceiling. The
    wide door takes the first lock among its cells, and `lock` is that effective lock.
    """

    id: str
    cell: Cell
    a: str
    b: str
    lock: str | None
    sector: str


@dataclass(frozen=True)
class Entity:
    """Something standing on a floor cell."""

    id: str
    kind: str
    type: str
    room: str
    cell: Cell


@dataclass(frozen=True)
class ExitSwitch:
    """Where the exit switch is: on the wall the player faces (`face`) from cell `stand`.

    That is a wall of the exit cell if it has one, else of the nearest cell of the exit room
    that has one: on a wall, a switch never stands in anybody's way.
    """

    stand: Cell
    face: Direction


@dataclass(frozen=True)
class Scene:
    """The parts of a scene/1 document a Doom map is built from."""

    style: str
    theme: Mapping[str, Any]
    width: int
    height: int
    rooms: tuple[str, ...]
    floor: Mapping[Cell, str]
    doors: tuple[Door, ...]
    entities: tuple[Entity, ...]
    start: Entity
    exit: Entity
    critical_path: tuple[str, ...]

    @cached_property
    def door_at(self) -> dict[Cell, Door]:
        """Doors by their cell."""
        return {door.cell: door for door in self.doors}

    @cached_property
    def exit_switch(self) -> ExitSwitch:
        """Where the exit switch goes and where the player presses it."""
        room = self.exit.room
        seen, frontier = {self.exit.cell}, [self.exit.cell]
        for cell in frontier:  # breadth first: frontier grows while it is walked
            for direction in DIRECTIONS:
                beside = step(cell, direction)
                if beside not in self.floor and beside not in self.door_at:
                    return ExitSwitch(cell, direction)
                if self.floor.get(beside) == room and beside not in seen:
                    seen.add(beside)
                    frontier.append(beside)
        raise PipelineError(f"exit room {room} has no wall for the exit switch, only doors")

    def walkable(self) -> set[Cell]:
        """Cells the player can stand in: floor and doors."""
        return set(self.floor) | set(self.door_at)


def read_scene(data: Any) -> Scene:
    """Check a scene/1 document and return the grid, doors and entities it describes."""
    data = require_mapping(data, "scene")
    if data.get("schema") != "scene/1":
        raise PipelineError(f"scene.schema must be 'scene/1', got {str(data.get('schema'))[:40]!r}")
    grid = require_field(data, "grid", Mapping, "scene")
    width, height = (require_int(grid, name, "scene.grid", 3, 0xFFFF) for name in ("width", "height"))
    if max(width, height) > MAX_GRID:
        raise MapTooLarge(f"the level is {width}x{height} cells; a Doom map holds at most {MAX_GRID} a side")
    rooms, floor = _read_rooms(require_field(data, "rooms", list, "scene"), width, height)
    doors = _read_doors(require_field(data, "doors", list, "scene"), floor, width, height)
    entities = _read_entities(require_field(data, "entities", list, "scene"), floor)
    _check_locks(require_field(data, "locks", list, "scene"), doors, entities)
    graph = require_field(data, "graph", Mapping, "scene")
    path = tuple(_read_ids(require_field(graph, "criticalPath", list, "scene.graph"), "scene.graph.criticalPath"))
    start, exit_ = (_only(entities, kind) for kind in ("start", "exit"))
    for name, entity in (("start", start), ("exit", exit_)):
        room = require_field(graph, name, str, "scene.graph")
        if room != entity.room:
            raise PipelineError(f"scene.graph.{name} is {room!r} but the {name} entity stands in {entity.room!r}")
    if not path or path[0] != start.room or path[-1] != exit_.room:
        raise PipelineError("scene.graph.criticalPath must run from graph.start to graph.exit")
    unknown = sorted(set(path) - set(rooms))
    if unknown:
        raise PipelineError(f"scene.graph.criticalPath names unknown rooms: {', '.join(unknown[:5])}")
    theme = data.get("theme", {})
    return Scene(
        style=str(data.get("style", "")),
        theme=theme if isinstance(theme, Mapping) else {},
        width=width,
        height=height,
        rooms=rooms,
        floor=floor,
        doors=doors,
        entities=entities,
        start=start,
        exit=exit_,
        critical_path=path,
    )


def _read_rooms(items: list[Any], width: int, height: int) -> tuple[tuple[str, ...], dict[Cell, str]]:
    ids: dict[str, None] = {}  # an ordered set
    floor: dict[Cell, str] = {}
    for index, item in enumerate(items):
        where = f"scene.rooms[{index}]"
        item = require_mapping(item, where)
        room = _read_id(item, where)
        if room in ids:
            raise PipelineError(f"{where}.id {room!r} is used twice")
        ids[room] = None
        for cell in _room_cells(item, where):
            if not (0 < cell[0] < width - 1 and 0 < cell[1] < height - 1):
                raise PipelineError(f"{where} has floor {list(cell)} on or outside the grid border")
            if cell in floor:
                raise PipelineError(f"{where} overlaps room {floor[cell]!r} at {list(cell)}")
            floor[cell] = room
    return tuple(ids), floor


def _room_cells(item: Mapping[str, Any], where: str) -> list[Cell]:
    if "rect" in item:
        x, y, w, h = _read_numbers(item["rect"], 4, f"{where}.rect")
        if w < 1 or h < 1:
            raise PipelineError(f"{where}.rect must have a positive width and height")
        return [(cx, cy) for cy in range(y, y + h) for cx in range(x, x + w)]
    cells = require_field(item, "cells", list, where)
    if not cells:
        raise PipelineError(f"{where}.cells is empty")
    return [_read_cell(cell, f"{where}.cells[{i}]") for i, cell in enumerate(cells)]


def _read_doors(items: list[Any], floor: Mapping[Cell, str], width: int, height: int) -> tuple[Door, ...]:
    doors: dict[Cell, Door] = {}
    for index, item in enumerate(items):
        where = f"scene.doors[{index}]"
        item = require_mapping(item, where)
        cell = _read_cell(item.get("at"), f"{where}.at")
        if not (0 < cell[0] < width - 1 and 0 < cell[1] < height - 1) or cell in floor or cell in doors:
            raise PipelineError(f"{where}.at {list(cell)} must be a wall cell inside the grid border")
        a, b = (require_field(item, key, str, where) for key in ("a", "b"))
        orientation = require_field(item, "orientation", str, where)
        if orientation not in ("vertical", "horizontal"):
            raise PipelineError(f"{where}.orientation must be 'vertical' or 'horizontal'")
        dx, dy = (1, 0) if orientation == "vertical" else (0, 1)
        sides = {floor.get((cell[0] - dx, cell[1] - dy)), floor.get((cell[0] + dx, cell[1] + dy))}
        if sides != {a, b} or a == b:
            raise PipelineError(f"{where} must have floor of rooms {a!r} and {b!r} on its two sides")
        lock = item.get("lock")
        if lock is not None and lock not in LOCK_COLORS:
            raise PipelineError(f"{where}.lock must be null or one of {', '.join(LOCK_COLORS)}")
        door_id = _read_id(item, where)
        doors[cell] = Door(door_id, cell, a, b, lock, door_id)
    return _wide_doors(doors)


def _wide_doors(doors: dict[Cell, Door]) -> tuple[Door, ...]:
    """The doors with their sector and effective lock, adjacent door cells grouped (see Door)."""
    order = {cell: index for index, cell in enumerate(doors)}
    group: dict[Cell, list[Door]] = {}
    for cell, door in doors.items():
        if cell in group:
            continue
        members, frontier = [door], [cell]
        group[cell] = members
        while frontier:
            current = frontier.pop()
            for direction in DIRECTIONS:
                beside = step(current, direction)
                if beside in doors and beside not in group:
                    group[beside] = members
                    members.append(doors[beside])
                    frontier.append(beside)
        members.sort(key=lambda member: order[member.cell])
    result = []
    for door in doors.values():
        members = group[door.cell]
        lock = next((member.lock for member in members if member.lock), None)
        result.append(replace(door, lock=lock, sector=members[0].id))
    return tuple(result)


def _read_entities(items: list[Any], floor: Mapping[Cell, str]) -> tuple[Entity, ...]:
    entities: dict[Cell, Entity] = {}
    for index, item in enumerate(items):
        where = f"scene.entities[{index}]"
        item = require_mapping(item, where)
        kind = require_field(item, "kind", str, where)
        if kind not in _ENTITY_KINDS:
            raise PipelineError(f"{where}.kind must be one of {', '.join(_ENTITY_KINDS)}")
        cell = _read_cell(item.get("at"), f"{where}.at")
        room = require_field(item, "room", str, where)
        if floor.get(cell) != room or cell in entities:
            raise PipelineError(f"{where}.at {list(cell)} must be a free floor cell of room {room!r}")
        entities[cell] = Entity(_read_id(item, where), kind, require_field(item, "type", str, where), room, cell)
    return tuple(entities.values())


def _check_locks(items: list[Any], doors: tuple[Door, ...], entities: tuple[Entity, ...]) -> None:
    """Every locked door has exactly one key of its colour, as scene.locks says."""
    keys = {entity.id: entity for entity in entities if entity.kind == "key"}
    colors = {}
    for index, item in enumerate(items):
        where = f"scene.locks[{index}]"
        item = require_mapping(item, where)
        color = require_field(item, "color", str, where)
        key = keys.get(require_field(item, "key", str, where))
        if color not in LOCK_COLORS or color in colors or key is None or key.type != f"{color}_key":
            raise PipelineError(f"{where} must name a colour once and the {color}_key entity that opens it")
        colors[color] = key
    for door in doors:
        if door.lock is not None and door.lock not in colors:
            raise PipelineError(f"door {door.id} is locked {door.lock} but scene.locks has no {door.lock} key")


def _only(entities: tuple[Entity, ...], kind: str) -> Entity:
    found = [entity for entity in entities if entity.kind == kind]
    if len(found) != 1:
        raise PipelineError(f"scene.entities must hold exactly one {kind!r}, found {len(found)}")
    return found[0]


def _read_id(item: Mapping[str, Any], where: str) -> str:
    value: str = require_field(item, "id", str, where)
    if not 1 <= len(value) <= 64:
        raise PipelineError(f"{where}.id must be 1 to 64 characters")
    return value


def _read_ids(items: list[Any], where: str) -> list[str]:
    if not all(isinstance(item, str) for item in items):
        raise PipelineError(f"{where} must be a list of room ids")
    return items


def _read_cell(value: Any, where: str) -> Cell:
    x, y = _read_numbers(value, 2, where)
    return x, y


def _read_numbers(value: Any, count: int, where: str) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) != count
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_GRID for n in value)
    ):
        raise PipelineError(f"{where} must be a list of {count} integers between 0 and {MAX_GRID}")
    return value

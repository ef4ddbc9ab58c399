"""The level explorer's drawing: a scene/1 graph (docs/scene-graph.md) as shapes for an SVG template.

Plain data in, plain data out; the template draws it and Jinja escapes every value. Coordinates are
grid cells (the SVG's viewBox is the grid), so nothing here knows about pixels.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The colours keys and locked doors are drawn in; the same colour for a key and its door.
LOCK_COLOURS = {"red": "#d8352f", "blue": "#2f6fe4", "yellow": "#e8b90f"}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_DEFAULT_PALETTE = {
    "background": "#141414",
    "wall": "#6e6e6e",
    "floor": "#8a7660",
    "corridor": "#5c5650",
    "door": "#b5822f",
}
METRICS = ("rooms", "corridors", "doors", "loops", "pathLength", "locks", "keys", "enemies", "bosses", "items")


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    type: str
    x: float
    y: float
    colour: str | None  # keys only
    boss: bool

    @property
    def label(self) -> str:
        return self.type.replace("_", " ")


@dataclass(frozen=True)
class Room:
    id: str
    kind: str
    depth: int
    zone: int
    light: int
    outline: str  # SVG path data, one rectangle per run of floor cells
    entities: tuple[Entity, ...]
    on_path: bool

    @property
    def contents(self) -> str:
        """What stands in the room, e.g. ``imp ×2, medkit``; "nothing" when empty."""
        counts = Counter(entity.label for entity in self.entities)
        return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items()) or "nothing"

    @property
    def description(self) -> str:
        return (
            f"Room {self.id}: {self.kind}, depth {self.depth}, zone {self.zone}, light {self.light}. "
            f"Stands here: {self.contents}."
        )


@dataclass(frozen=True)
class Door:
    id: str
    x: int
    y: int
    orientation: str
    lock: str | None
    colour: str | None


@dataclass(frozen=True)
class Level:
    width: int
    height: int
    palette: dict
    rooms: tuple[Room, ...]
    doors: tuple[Door, ...]
    path_points: str  # SVG polyline points of the critical path
    path_steps: tuple[str, ...]  # the critical path in words, key by key
    path_rooms: tuple[str, ...]
    metrics: tuple[tuple[str, object], ...]
    locks: tuple[tuple[str, str], ...] = field(default=())  # (colour, hex) present in this level


def _cells(room: dict) -> list[tuple[int, int]]:
    if "rect" in room:
        x, y, w, h = room["rect"]
        return [(cx, cy) for cy in range(y, y + h) for cx in range(x, x + w)]
    return [(int(x), int(y)) for x, y in room.get("cells", [])]


def outline(room: dict) -> str:
    """SVG path data covering a room's floor: its rectangle, or one rectangle per run of cells in a row."""
    if "rect" in room:
        x, y, w, h = (int(v) for v in room["rect"])
        return f"M{x} {y}h{w}v{h}h{-w}z"
    runs: list[tuple[int, int, int]] = []  # (y, x start, length)
    for x, y in sorted(_cells(room), key=lambda cell: (cell[1], cell[0])):
        if runs and runs[-1][0] == y and runs[-1][1] + runs[-1][2] == x:
            runs[-1] = (y, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((y, x, 1))
    return "".join(f"M{x} {y}h{n}v1h{-n}z" for y, x, n in runs)


def _palette(scene: dict) -> dict:
    given = (scene.get("theme") or {}).get("palette") or {}
    return {
        name: given[name] if _HEX.match(str(given.get(name, ""))) else default
        for name, default in _DEFAULT_PALETTE.items()
    }


def _entity(raw: dict) -> Entity:
    x, y = raw["at"]
    colour = None
    if raw.get("kind") == "key":
        colour = LOCK_COLOURS.get(str(raw.get("type", "")).removesuffix("_key"))
    return Entity(
        str(raw["id"]),
        str(raw["kind"]),
        str(raw.get("type", "")),
        x + 0.5,
        y + 0.5,
        colour,
        "boss" in raw.get("tags", ()),
    )


def build_level(scene: dict) -> Level:
    """The explorer's shapes from a scene/1 graph."""
    entities = [_entity(raw) for raw in scene.get("entities", [])]
    by_room: dict[str, list[Entity]] = {}
    for raw, entity in zip(scene.get("entities", []), entities, strict=True):
        by_room.setdefault(str(raw["room"]), []).append(entity)
    graph = scene.get("graph") or {}
    path = [str(room) for room in graph.get("criticalPath", [])]
    rooms = tuple(
        Room(
            str(raw["id"]),
            str(raw["kind"]),
            int(raw.get("depth", 0)),
            int(raw.get("zone", 0)),
            int(raw.get("light", 0)),
            outline(raw),
            tuple(by_room.get(str(raw["id"]), ())),
            str(raw["id"]) in path,
        )
        for raw in scene.get("rooms", [])
    )
    doors = tuple(
        Door(
            str(d["id"]),
            int(d["at"][0]),
            int(d["at"][1]),
            str(d.get("orientation", "")),
            d.get("lock"),
            LOCK_COLOURS.get(d.get("lock") or ""),
        )
        for d in scene.get("doors", [])
    )
    points, steps = critical_path(scene, entities, by_room)
    metrics = scene.get("metrics") or {}
    present = sorted({d.lock for d in doors if d.lock in LOCK_COLOURS})
    return Level(
        width=int(scene["grid"]["width"]),
        height=int(scene["grid"]["height"]),
        palette=_palette(scene),
        rooms=rooms,
        doors=doors,
        path_points=" ".join(f"{x:g},{y:g}" for x, y in points),
        path_steps=tuple(steps),
        path_rooms=tuple(path),
        metrics=tuple((name, metrics[name]) for name in METRICS if name in metrics),
        locks=tuple((colour, LOCK_COLOURS[colour]) for colour in present),
    )


def critical_path(scene: dict, entities: list[Entity], by_room: dict[str, list[Entity]]) -> tuple[list, list[str]]:
    """The walk from start to exit as polyline points (start, doors, keys, exit) and as sentences.

    Consecutive rooms of ``graph.criticalPath`` share a door; the line passes through it, and into
    each key's cell the first time the walk enters the key's room.
    """
    graph = scene.get("graph") or {}
    path = [str(room) for room in graph.get("criticalPath", [])]
    if not path:
        return [], []
    doors: dict[frozenset[str], dict[str, Any]] = {}
    for door in scene.get("doors", []):
        doors.setdefault(frozenset((str(door["a"]), str(door["b"]))), door)
    start = next((e for e in entities if e.kind == "start"), None)
    exit_ = next((e for e in entities if e.kind == "exit"), None)
    points: list[tuple[float, float]] = [(start.x, start.y)] if start else []
    steps = [f"Start in {path[0]}."]
    taken: set[str] = set()

    def pick_keys(room: str) -> None:
        for entity in by_room.get(room, []):
            if entity.kind == "key" and entity.id not in taken:
                taken.add(entity.id)
                points.append((entity.x, entity.y))
                steps.append(f"Pick up the {entity.label} in {room}.")

    pick_keys(path[0])
    for a, b in itertools.pairwise(path):
        door = doors.get(frozenset((a, b)))
        if door is not None:
            points.append((door["at"][0] + 0.5, door["at"][1] + 0.5))
            if door.get("lock"):
                steps.append(f"Open the {door['lock']} door {door['id']} from {a} into {b}.")
        pick_keys(b)
    if exit_:
        points.append((exit_.x, exit_.y))
    keys = f"{len(taken)} key" + ("" if len(taken) == 1 else "s")
    steps.append(f"Reach the exit in {path[-1]} ({len(path)} rooms walked, {keys}).")
    return points, steps

"""The pieces of a level (rooms, doors, entities, candidate links) and how they are read from JSON.

Shapes are those of scene/1 (docs/scene-graph.md). Coordinates are grid cells, x to the right and
y down; the readers accept only cells inside the grid's one-cell border, since the border is never
floor, door or entity. The readers check types and ranges, not geometry: validate.py does that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping

Cell = tuple[int, int]

ROOM_KINDS = ("start", "exit", "room", "hall", "corridor", "cave")
ENTITY_KINDS = ("start", "exit", "key", "enemy", "item")
LOCK_COLORS = ("red", "blue", "yellow")
ORIENTATIONS = ("vertical", "horizontal")
MAX_TAGS = 8
_READING_ORDER = itemgetter(1, 0)
_MAX_TEXT = 64


@dataclass(frozen=True, slots=True)
class Room:
    """A floor region: a rectangle [x, y, w, h], or cells sorted by y then x."""

    id: str
    kind: str
    rect: tuple[int, int, int, int] | None = None
    cells: tuple[Cell, ...] | None = None
    tags: tuple[str, ...] = ()
    light: int | None = None

    def floor(self) -> Iterable[Cell]:
        """Every floor cell, row by row."""
        if self.cells is not None:
            return self.cells
        x, y, w, h = self.rect  # type: ignore[misc]  # a room without cells has a rect
        return [(cx, cy) for cy in range(y, y + h) for cx in range(x, x + w)]

    @property
    def area(self) -> int:
        """Number of floor cells."""
        # A room without cells has a rect.
        return len(self.cells) if self.cells is not None else self.rect[2] * self.rect[3]  # type: ignore[index]

    def center(self) -> Cell:
        """A floor cell at or near the middle."""
        if self.rect is not None:
            x, y, w, h = self.rect
            return x + w // 2, y + h // 2
        # The middle cell in reading order, moved to the middle of its run along the row.
        cells = self.cells or ()
        low = high = len(cells) // 2
        while low > 0 and cells[low - 1] == (cells[low][0] - 1, cells[low][1]):
            low -= 1
        while high + 1 < len(cells) and cells[high + 1] == (cells[high][0] + 1, cells[high][1]):
            high += 1
        return cells[(low + high) // 2]

    def to_data(self) -> dict[str, Any]:
        """The room as scene/1 JSON (without depth and zone, which the scene adds)."""
        data: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.rect is not None:
            data["rect"] = list(self.rect)
        else:
            data["cells"] = list(map(list, self.cells or ()))
        data["tags"] = list(self.tags)
        if self.light is not None:
            data["light"] = self.light
        return data

    @classmethod
    def from_data(cls, data: Any, where: str, width: int, height: int) -> Room:
        """Read one room; its floor must lie inside the grid's border."""
        # The common case in one test (a 1,000-room level has thousands of these); the careful
        # path below finds and names whatever fails it.
        try:
            rect, light, tags = data.get("rect"), data.get("light"), data.get("tags", ())
            valid = (
                _text(data["id"])
                and data["kind"] in ROOM_KINDS
                and _tags(tags)
                and (light is None or (type(light) is int and 0 <= light <= 255))
            )
            if (
                valid
                and type(rect) is list
                and len(rect) == 4
                and _ints(rect)
                and rect[0] >= 1
                and rect[1] >= 1
                and rect[2] >= 1
                and rect[3] >= 1
                and rect[0] + rect[2] <= width - 1
                and rect[1] + rect[3] <= height - 1
            ):
                return cls(data["id"], data["kind"], rect=tuple(rect), tags=tuple(tags), light=light)
            if valid and rect is None and type(data.get("cells")) is list and data["cells"]:
                cells = read_cells(data["cells"], f"{where}.cells", width, height)
                if cells == tuple(sorted(cells, key=_READING_ORDER)) and len(set(cells)) == len(cells):
                    return cls(data["id"], data["kind"], cells=cells, tags=tuple(tags), light=light)
        except (AttributeError, KeyError, TypeError):
            pass
        data = require_mapping(data, where)
        kind = require_choice(data, "kind", ROOM_KINDS, where)
        light = None
        if data.get("light") is not None:
            light = require_int(data, "light", where, 0, 255)
        common: dict[str, Any] = {
            "id": require_id(data, "id", where),
            "kind": kind,
            "tags": read_tags(data, where),
            "light": light,
        }
        if "rect" in data:
            rect = require_field(data, "rect", list, where)
            if len(rect) != 4 or not all(_is_int(value) for value in rect):
                raise PipelineError(f"{where}.rect must be four integers [x, y, w, h]")
            x, y, w, h = rect
            if not (x >= 1 and y >= 1 and w >= 1 and h >= 1 and x + w <= width - 1 and y + h <= height - 1):
                raise PipelineError(f"{where}.rect {rect} does not fit inside the {width}x{height} grid's border")
            return cls(rect=(x, y, w, h), **common)
        cells = read_cells(require_field(data, "cells", list, where), f"{where}.cells", width, height)
        if not cells:
            raise PipelineError(f"{where}.cells is empty")
        if cells != tuple(sorted(cells, key=_READING_ORDER)) or len(set(cells)) != len(cells):
            raise PipelineError(f"{where}.cells must be sorted by y then x, without repeats")
        return cls(cells=cells, **common)


@dataclass(frozen=True, slots=True)
class Door:
    """A door cell joining rooms a and b; "vertical" means it sits in a vertical wall (passage west-east)."""

    id: str
    a: str
    b: str
    x: int
    y: int
    orientation: str
    lock: str | None = None

    def sides(self) -> tuple[Cell, Cell]:
        """The two floor cells the door joins (west and east, or north and south)."""
        if self.orientation == "vertical":
            return (self.x - 1, self.y), (self.x + 1, self.y)
        return (self.x, self.y - 1), (self.x, self.y + 1)

    def to_data(self) -> dict[str, Any]:
        """The door as scene/1 JSON."""
        return {
            "id": self.id,
            "a": self.a,
            "b": self.b,
            "at": [self.x, self.y],
            "orientation": self.orientation,
            "lock": self.lock,
        }

    @classmethod
    def from_data(cls, data: Any, where: str, width: int, height: int) -> Door:
        """Read one door."""
        try:
            at, lock = data["at"], data.get("lock")
            if (
                _text(data["id"])
                and _text(data["a"])
                and _text(data["b"])
                and data["orientation"] in ORIENTATIONS
                and (lock is None or lock in LOCK_COLORS)
                and _cell(at, width, height)
            ):
                return cls(data["id"], data["a"], data["b"], at[0], at[1], data["orientation"], lock)
        except (AttributeError, KeyError, TypeError):
            pass
        data = require_mapping(data, where)
        lock = data.get("lock")
        if lock is not None and lock not in LOCK_COLORS:
            raise PipelineError(f"{where}.lock must be null or one of {', '.join(LOCK_COLORS)}")
        x, y = read_cell(require_field(data, "at", list, where), f"{where}.at", width, height)
        return cls(
            id=require_id(data, "id", where),
            a=require_id(data, "a", where),
            b=require_id(data, "b", where),
            x=x,
            y=y,
            orientation=require_choice(data, "orientation", ORIENTATIONS, where),
            lock=lock,
        )


@dataclass(frozen=True, slots=True)
class Entity:
    """Something standing on a floor cell: the start, the exit, a key, an enemy or an item."""

    id: str
    kind: str
    type: str
    room: str
    x: int
    y: int
    tags: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        """The entity as scene/1 JSON."""
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.type,
            "room": self.room,
            "at": [self.x, self.y],
            "tags": list(self.tags),
        }

    @classmethod
    def from_data(cls, data: Any, where: str, width: int, height: int) -> Entity:
        """Read one entity."""
        try:
            at, tags = data["at"], data.get("tags", ())
            if (
                _text(data["id"])
                and data["kind"] in ENTITY_KINDS
                and _text(data["type"])
                and _text(data["room"])
                and _cell(at, width, height)
                and _tags(tags)
            ):
                return cls(data["id"], data["kind"], data["type"], data["room"], at[0], at[1], tuple(tags))
        except (AttributeError, KeyError, TypeError):
            pass
        data = require_mapping(data, where)
        x, y = read_cell(require_field(data, "at", list, where), f"{where}.at", width, height)
        return cls(
            id=require_id(data, "id", where),
            kind=require_choice(data, "kind", ENTITY_KINDS, where),
            type=require_id(data, "type", where),
            room=require_id(data, "room", where),
            x=x,
            y=y,
            tags=read_tags(data, where),
        )


@dataclass(frozen=True, slots=True)
class Link:
    """A way to join rooms a and b that layout_rooms offers and connect_doors may take.

    Either one door cell between the two rooms, or a corridor (its cells) with a door at each end:
    doors[0] between a and the corridor, doors[1] between the corridor and b. A preferred link is
    taken before any other (the doors a construction needs to hold together, like attach-rooms').
    """

    a: str
    b: str
    doors: tuple[tuple[int, int, str], ...]
    corridor: tuple[Cell, ...] | None = None
    preferred: bool = False

    def to_data(self) -> dict[str, Any]:
        """The link as JSON."""
        return {
            "a": self.a,
            "b": self.b,
            "doors": [{"at": [x, y], "orientation": orientation} for x, y, orientation in self.doors],
            "corridor": None if self.corridor is None else list(map(list, self.corridor)),
            "preferred": self.preferred,
        }

    @classmethod
    def from_data(cls, data: Any, where: str, width: int, height: int) -> Link:
        """Read one link."""
        try:
            doors, corridor = data["doors"], data["corridor"]
            if (
                corridor is None
                and type(doors) is list
                and len(doors) == 1
                and _text(data["a"])
                and _text(data["b"])
                and type(data["preferred"]) is bool
                and doors[0]["orientation"] in ORIENTATIONS
                and _cell(doors[0]["at"], width, height)
            ):
                x, y = doors[0]["at"]
                return cls(data["a"], data["b"], ((x, y, doors[0]["orientation"]),), None, data["preferred"])
        except (AttributeError, KeyError, TypeError):
            pass
        data = require_mapping(data, where)
        corridor = data.get("corridor")
        if corridor is not None:
            corridor = read_cells(require_field(data, "corridor", list, where), f"{where}.corridor", width, height)
        doors = require_field(data, "doors", list, where)
        if len(doors) != (1 if corridor is None else 2) or (corridor is not None and not corridor):
            raise PipelineError(f"{where} needs one door, or a corridor with two")
        read = []
        for index, door in enumerate(doors):
            door = require_mapping(door, f"{where}.doors[{index}]")
            x, y = read_cell(require_field(door, "at", list, where), f"{where}.doors[{index}].at", width, height)
            read.append((x, y, require_choice(door, "orientation", ORIENTATIONS, f"{where}.doors[{index}]")))
        preferred = require_field(data, "preferred", bool, where)
        return cls(require_id(data, "a", where), require_id(data, "b", where), tuple(read), corridor, preferred)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int, but true/false are never a coordinate.
    return type(value) is int


def _ints(values: list[Any]) -> bool:
    return set(map(type, values)) == {int}


def _text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= _MAX_TEXT


def _cell(value: Any, width: int, height: int) -> bool:
    return (
        type(value) is list
        and len(value) == 2
        and type(value[0]) is int
        and type(value[1]) is int
        and 0 < value[0] < width - 1
        and 0 < value[1] < height - 1
    )


def _tags(tags: Any) -> bool:
    return type(tags) in (list, tuple) and len(tags) <= MAX_TAGS and all(_text(tag) for tag in tags)


def read_cell(value: Any, where: str, width: int, height: int) -> Cell:
    """An [x, y] pair inside the grid's border."""
    if not (isinstance(value, list) and len(value) == 2 and _is_int(value[0]) and _is_int(value[1])):
        raise PipelineError(f"{where} must be a cell [x, y]")
    x, y = value
    if not (1 <= x <= width - 2 and 1 <= y <= height - 2):
        raise PipelineError(f"{where} {value} lies outside the {width}x{height} grid's border")
    return x, y


def read_cells(values: list[Any], where: str, width: int, height: int) -> tuple[Cell, ...]:
    """A list of [x, y] pairs inside the grid's border."""
    # Checked in bulk (map and min/max run in C): a cave level has tens of thousands of cells.
    if set(map(type, values)) <= {list} and set(map(len, values)) <= {2}:
        xs, ys = [value[0] for value in values], [value[1] for value in values]
        if (
            set(map(type, xs)) <= {int}
            and set(map(type, ys)) <= {int}
            and (not values or (min(xs) >= 1 and max(xs) <= width - 2 and min(ys) >= 1 and max(ys) <= height - 2))
        ):
            return tuple(zip(xs, ys, strict=True))
    # Something is wrong: find it and say what.
    for value in values:
        read_cell(value, where, width, height)
    raise PipelineError(f"{where} must be a list of cells [x, y]")


def read_tags(data: Any, where: str) -> tuple[str, ...]:
    """A short list of short strings (absent means none)."""
    tags = data.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(tag, str) and 1 <= len(tag) <= _MAX_TEXT for tag in tags)
    ):
        raise PipelineError(f"{where}.tags must be a list of at most {MAX_TAGS} short strings")
    return tuple(tags)


def require_id(data: Any, key: str, where: str) -> str:
    """A string field of 1 to 64 characters."""
    value: str = require_field(data, key, str, where)
    if not 1 <= len(value) <= _MAX_TEXT:
        raise PipelineError(f"{where}.{key} must be 1 to {_MAX_TEXT} characters")
    return value


def require_choice(data: Any, key: str, choices: tuple[str, ...], where: str) -> str:
    """A string field that is one of choices."""
    value: str = require_field(data, key, str, where)
    if value not in choices:
        raise PipelineError(f"{where}.{key} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value

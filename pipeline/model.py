"""The pieces of a level (rooms, doors, entities) and how they are read back from JSON.

Coordinates are grid cells, x to the right and y down. A room is its floor rectangle; the walls
around it are not part of it. Rooms never touch: at least one wall cell separates any two, and a
door is a wall cell with one room's floor on one side and the other room's floor opposite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping

ROOM_KINDS = ("start", "exit", "hall", "room", "corridor")
ENTITY_TYPES = ("player_start", "exit", "boss", "enemy", "item")
_MAX_COORDINATE = 1000
_MAX_ID = 64


@dataclass(frozen=True)
class Room:
    """An axis-aligned floor rectangle."""

    id: str
    kind: str
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_data(cls, data: Any, where: str) -> Room:
        """Read one room from JSON data."""
        data = require_mapping(data, where)
        kind = require_field(data, "kind", str, where)
        if kind not in ROOM_KINDS:
            raise PipelineError(f"{where}.kind must be one of {', '.join(ROOM_KINDS)}, got {kind[:40]!r}")
        return cls(
            id=_require_id(data, where),
            kind=kind,
            x=require_int(data, "x", where, 0, _MAX_COORDINATE),
            y=require_int(data, "y", where, 0, _MAX_COORDINATE),
            w=require_int(data, "w", where, 1, _MAX_COORDINATE),
            h=require_int(data, "h", where, 1, _MAX_COORDINATE),
        )

    def to_data(self) -> dict:
        """Return the room as plain JSON data."""
        return {"id": self.id, "kind": self.kind, "x": self.x, "y": self.y, "w": self.w, "h": self.h}

    @property
    def area(self) -> int:
        """Number of floor cells."""
        return self.w * self.h

    def contains(self, x: int, y: int) -> bool:
        """Whether cell (x, y) is floor of this room."""
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h

    def cells(self) -> list[tuple[int, int]]:
        """All floor cells, row by row."""
        return [(x, y) for y in range(self.y, self.y + self.h) for x in range(self.x, self.x + self.w)]

    def center(self) -> tuple[int, int]:
        """The floor cell at the middle (rounding up and left)."""
        return self.x + self.w // 2, self.y + self.h // 2

    def touches(self, other: Room) -> bool:
        """Whether the two floors overlap or meet with no wall between them."""
        return (
            self.x <= other.x + other.w
            and other.x <= self.x + self.w
            and self.y <= other.y + other.h
            and other.y <= self.y + self.h
        )

    def door_cells(self, other: Room) -> list[tuple[int, int]]:
        """The wall cells where a door would join this room to other; empty if no single wall divides them."""
        if self.x + self.w + 1 == other.x or other.x + other.w + 1 == self.x:
            wall = min(self.x + self.w, other.x + other.w)
            low, high = max(self.y, other.y), min(self.y + self.h, other.y + other.h)
            return [(wall, y) for y in range(low, high)]
        if self.y + self.h + 1 == other.y or other.y + other.h + 1 == self.y:
            wall = min(self.y + self.h, other.y + other.h)
            low, high = max(self.x, other.x), min(self.x + self.w, other.x + other.w)
            return [(x, wall) for x in range(low, high)]
        return []


@dataclass(frozen=True)
class Door:
    """A door in the wall between two rooms."""

    id: str
    source: str
    target: str
    x: int
    y: int

    @classmethod
    def from_data(cls, data: Any, where: str) -> Door:
        """Read one door from JSON data."""
        data = require_mapping(data, where)
        return cls(
            id=_require_id(data, where),
            source=require_field(data, "from", str, where),
            target=require_field(data, "to", str, where),
            x=require_int(data, "x", where, 0, _MAX_COORDINATE),
            y=require_int(data, "y", where, 0, _MAX_COORDINATE),
        )

    def to_data(self) -> dict:
        """Return the door as plain JSON data."""
        return {"id": self.id, "from": self.source, "to": self.target, "x": self.x, "y": self.y}


@dataclass(frozen=True)
class Entity:
    """Something placed on a floor cell: the player start, the exit, a boss, an enemy or an item."""

    id: str
    type: str
    kind: str
    room: str
    x: int
    y: int

    @classmethod
    def from_data(cls, data: Any, where: str) -> Entity:
        """Read one entity from JSON data."""
        data = require_mapping(data, where)
        type_ = require_field(data, "type", str, where)
        if type_ not in ENTITY_TYPES:
            raise PipelineError(f"{where}.type must be one of {', '.join(ENTITY_TYPES)}, got {type_[:40]!r}")
        return cls(
            id=_require_id(data, where),
            type=type_,
            kind=require_field(data, "kind", str, where),
            room=require_field(data, "room", str, where),
            x=require_int(data, "x", where, 0, _MAX_COORDINATE),
            y=require_int(data, "y", where, 0, _MAX_COORDINATE),
        )

    def to_data(self) -> dict:
        """Return the entity as plain JSON data."""
        return {
            "id": self.id,
            "type": self.type,
            "kind": self.kind,
            "room": self.room,
            "x": self.x,
            "y": self.y,
        }


def _require_id(data: Any, where: str) -> str:
    value = require_field(data, "id", str, where)
    if not 1 <= len(value) <= _MAX_ID:
        raise PipelineError(f"{where}.id must be 1 to {_MAX_ID} characters")
    return value

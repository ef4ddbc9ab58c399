"""The level as it grows from step to step, and the checks that carried JSON makes sense.

Each step reads the previous step's data into a Level, adds its part and writes the whole level
back out, so a step needs nothing but the data it is given. Parts not made yet are absent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping
from .model import LOCK_COLORS, Door, Entity, Link, Room, require_choice, require_id
from .plan import MAX_ENTITIES_PER_KIND, Plan
from .request import MAX_ROOMS, Request

MAX_GRID = 1200
MAX_ATTEMPTS = 3  # generation attempts: the first, and the regenerations validate_level may make
_MAX_REGIONS = 4 * MAX_ROOMS  # rooms plus their corridors
_MAX_ENTITIES = 3 * MAX_ENTITIES_PER_KIND


@dataclass(frozen=True)
class Lock:
    """A coloured lock on a door, and the room its key is to be placed in."""

    color: str
    door: str
    key_room: str


@dataclass(frozen=True)
class Progression:
    """Where the player starts, where the exit is, and the locks between them, nearest first."""

    start: str
    exit: str
    locks: tuple[Lock, ...] = ()

    def to_data(self) -> dict[str, Any]:
        """The progression as JSON."""
        return {
            "start": self.start,
            "exit": self.exit,
            "locks": [{"color": lock.color, "door": lock.door, "keyRoom": lock.key_room} for lock in self.locks],
        }


@dataclass(frozen=True)
class Level:
    """Request, features and plan, plus whatever the steps so far have made."""

    request: Request
    features: dict[str, Any]
    plan: Plan
    attempt: int = 1
    width: int = 0
    height: int = 0
    rooms: tuple[Room, ...] | None = None
    links: tuple[Link, ...] | None = None
    doors: tuple[Door, ...] | None = None
    progression: Progression | None = None
    entities: tuple[Entity, ...] | None = None

    @classmethod
    def from_data(cls, data: Any) -> Level:
        """Read and check a previous step's data."""
        data = require_mapping(data, "previous")
        level = cls(
            request=Request.from_data(require_field(data, "request", Mapping, "previous")),
            features=copy.deepcopy(dict(require_field(data, "features", Mapping, "previous"))),
            plan=Plan.from_data(require_field(data, "plan", Mapping, "previous")),
            attempt=require_int(data, "attempt", "previous", 1, MAX_ATTEMPTS) if "attempt" in data else 1,
        )
        if "grid" not in data:
            return level
        grid = require_field(data, "grid", Mapping, "previous")
        width, height = (
            require_int(grid, "width", "grid", 3, MAX_GRID),
            require_int(grid, "height", "grid", 3, MAX_GRID),
        )
        read: dict[str, Any] = {"width": width, "height": height}
        for key, reader, limit in (
            ("rooms", Room.from_data, _MAX_REGIONS),
            ("links", Link.from_data, 4 * _MAX_REGIONS),
            ("doors", Door.from_data, 4 * _MAX_REGIONS),
            ("entities", Entity.from_data, _MAX_ENTITIES),
        ):
            if key in data:
                read[key] = _read_list(data, key, partial(reader, width=width, height=height), limit)
        if "progression" in data:
            read["progression"] = _read_progression(require_field(data, "progression", Mapping, "previous"))
        level = replace(level, **read)
        level.check_references()
        return level

    def to_data(self) -> dict[str, Any]:
        """The level as plain JSON data, leaving out parts not made yet."""
        data: dict[str, Any] = {
            "request": self.request.to_data(),
            "features": self.features,
            "plan": self.plan.to_data(),
            "attempt": self.attempt,
        }
        if self.rooms is not None:
            data["grid"] = {"width": self.width, "height": self.height}
        for key in ("rooms", "links", "doors", "entities"):
            items = getattr(self, key)
            if items is not None:
                data[key] = [item.to_data() for item in items]
        if self.progression is not None:
            data["progression"] = self.progression.to_data()
        return data

    def require(self, *parts: str) -> None:
        """Raise PipelineError unless the earlier steps made these parts."""
        for part in parts:
            if getattr(self, part) is None:
                raise PipelineError(f"previous data has no {part} yet; the steps run in the order of pipeline.STEPS")

    def check_references(self) -> None:
        """Every id a door, link, lock or entity names exists, and ids are unique."""
        rooms = {room.id for room in self.rooms or ()}
        if len(rooms) != len(self.rooms or ()):
            raise PipelineError("room ids must be unique")
        doors = {door.id for door in self.doors or ()}
        if len(doors) != len(self.doors or ()):
            raise PipelineError("door ids must be unique")
        if len({entity.id for entity in self.entities or ()}) != len(self.entities or ()):
            raise PipelineError("entity ids must be unique")
        named = {door.a for door in self.doors or ()} | {door.b for door in self.doors or ()}
        named |= {link.a for link in self.links or ()} | {link.b for link in self.links or ()}
        named |= {entity.room for entity in self.entities or ()}
        if self.progression is not None:
            named |= {self.progression.start, self.progression.exit}
            named |= {lock.key_room for lock in self.progression.locks}
            if any(lock.door not in doors for lock in self.progression.locks):
                raise PipelineError("a lock names a door that does not exist")
        if not named <= rooms:
            raise PipelineError(
                f"a door, link, entity or lock names a room that does not exist: {sorted(named - rooms)[0][:40]!r}"
            )


def _read_list(data: Mapping[str, Any], key: str, read: Callable[[Any, str], Any], limit: int) -> tuple[Any, ...]:
    values = require_field(data, key, list, "previous")
    if len(values) > limit:
        raise PipelineError(f"previous.{key} has {len(values)} entries, more than {limit}")
    return tuple(read(value, f"previous.{key}[{index}]") for index, value in enumerate(values))


def _read_progression(data: Mapping[str, Any]) -> Progression:
    locks = require_field(data, "locks", list, "progression")
    if len(locks) > len(LOCK_COLORS):
        raise PipelineError(f"progression.locks has more than {len(LOCK_COLORS)} locks")
    read = []
    for index, lock in enumerate(locks):
        where = f"progression.locks[{index}]"
        lock = require_mapping(lock, where)
        read.append(
            Lock(
                require_choice(lock, "color", LOCK_COLORS, where),
                require_id(lock, "door", where),
                require_id(lock, "keyRoom", where),
            )
        )
    if len({lock.color for lock in read}) != len(read):
        raise PipelineError("each lock colour may appear once")
    return Progression(require_id(data, "start", "progression"), require_id(data, "exit", "progression"), tuple(read))

"""The level as it grows from step to step, and the checks that carried JSON makes sense.

Each step reads the previous step's data into a Level, adds its part and writes the whole level
back out, so a step needs nothing but the data it is given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .contract import PipelineError, require_field, require_mapping
from .model import Door, Entity, Room
from .plan import MAX_ROOMS, Plan
from .request import Request

_MAX_ENTITIES = 1000


@dataclass(frozen=True)
class Level:
    """Request, features and plan, plus whatever rooms, doors and entities the steps so far have made."""

    request: Request
    features: dict
    plan: Plan
    rooms: tuple[Room, ...] | None = None
    doors: tuple[Door, ...] | None = None
    entities: tuple[Entity, ...] | None = None

    @classmethod
    def from_data(cls, data: Any) -> Level:
        """Read and check a previous step's data."""
        data = require_mapping(data, "previous")
        level = cls(
            request=Request.from_data(require_field(data, "request", Mapping, "previous")),
            features=copy.deepcopy(dict(require_field(data, "features", Mapping, "previous"))),
            plan=Plan.from_data(require_field(data, "plan", Mapping, "previous")),
        )
        if "rooms" in data:
            level = level.with_rooms(_read_list(data, "rooms", Room.from_data, MAX_ROOMS))
        if "doors" in data:
            level = level.with_doors(_read_list(data, "doors", Door.from_data, MAX_ROOMS * MAX_ROOMS))
        if "entities" in data:
            level = level.with_entities(_read_list(data, "entities", Entity.from_data, _MAX_ENTITIES))
        return level

    def to_data(self) -> dict:
        """Return the level as plain JSON data, leaving out parts not made yet."""
        data = {"request": self.request.to_data(), "features": self.features, "plan": self.plan.to_data()}
        for key, items in (("rooms", self.rooms), ("doors", self.doors), ("entities", self.entities)):
            if items is not None:
                data[key] = [item.to_data() for item in items]
        return data

    def with_rooms(self, rooms: tuple[Room, ...]) -> Level:
        """Return this level with rooms (and no doors or entities), after checking them against the grid."""
        _check_rooms(rooms, self.plan)
        return Level(self.request, self.features, self.plan, rooms=rooms)

    def with_doors(self, doors: tuple[Door, ...]) -> Level:
        """Return this level with doors (and no entities), after checking each sits between its rooms."""
        by_id = self.room_index()
        seen_ids, seen_pairs = set(), set()
        for door in doors:
            if door.source not in by_id or door.target not in by_id:
                raise PipelineError(f"door {door.id!r} joins a room that does not exist")
            pair = frozenset((door.source, door.target))
            if door.id in seen_ids or pair in seen_pairs or len(pair) != 2:
                raise PipelineError(f"door {door.id!r} repeats an id or a pair of rooms")
            if (door.x, door.y) not in by_id[door.source].door_cells(by_id[door.target]):
                raise PipelineError(
                    f"door {door.id!r} is not in a wall between {door.source!r} and {door.target!r}"
                )
            seen_ids.add(door.id)
            seen_pairs.add(pair)
        return Level(self.request, self.features, self.plan, rooms=self.rooms, doors=doors)

    def with_entities(self, entities: tuple[Entity, ...]) -> Level:
        """Return this level with entities, after checking each stands on its room's floor."""
        by_id = self.room_index()
        if self.doors is None:
            raise PipelineError("previous data has no doors yet; run connect_doors first")
        seen_ids, seen_cells = set(), set()
        for entity in entities:
            room = by_id.get(entity.room)
            if room is None or not room.contains(entity.x, entity.y):
                raise PipelineError(f"entity {entity.id!r} is not on the floor of room {entity.room!r}")
            if entity.id in seen_ids or (entity.x, entity.y) in seen_cells:
                raise PipelineError(f"entity {entity.id!r} repeats an id or a cell")
            seen_ids.add(entity.id)
            seen_cells.add((entity.x, entity.y))
        for type_, room in (("player_start", self.start_room()), ("exit", self.exit_room())):
            placed = [entity for entity in entities if entity.type == type_]
            if len(placed) != 1 or placed[0].room != room.id:
                raise PipelineError(f"a level needs exactly one {type_} entity, in room {room.id!r}")
        return Level(
            self.request, self.features, self.plan, rooms=self.rooms, doors=self.doors, entities=entities
        )

    def room_index(self) -> dict[str, Room]:
        """Rooms by id; raises PipelineError if rooms have not been laid out yet."""
        if self.rooms is None:
            raise PipelineError("previous data has no rooms yet; run layout_rooms first")
        return {room.id: room for room in self.rooms}

    def start_room(self) -> Room:
        """The room the player starts in."""
        return next(room for room in self.room_index().values() if room.kind == "start")

    def exit_room(self) -> Room:
        """The room the exit is in."""
        return next(room for room in self.room_index().values() if room.kind == "exit")


def _read_list(data: Mapping, key: str, read: Callable[[Any, str], Any], limit: int) -> tuple:
    values = require_field(data, key, list, "previous")
    if len(values) > limit:
        raise PipelineError(f"previous.{key} has {len(values)} entries, more than {limit}")
    return tuple(read(value, f"previous.{key}[{index}]") for index, value in enumerate(values))


def _check_rooms(rooms: tuple[Room, ...], plan: Plan) -> None:
    if len({room.id for room in rooms}) != len(rooms):
        raise PipelineError("room ids must be unique")
    for kind in ("start", "exit"):
        if sum(room.kind == kind for room in rooms) != 1:
            raise PipelineError(f"a level needs exactly one {kind!r} room")
    for index, room in enumerate(rooms):
        # Row and column 0 and the last ones are the outer wall.
        if room.x < 1 or room.y < 1 or room.x + room.w > plan.width - 1 or room.y + room.h > plan.height - 1:
            raise PipelineError(f"room {room.id!r} lies outside the {plan.width}x{plan.height} grid")
        for other in rooms[index + 1 :]:
            if room.touches(other):
                raise PipelineError(
                    f"rooms {room.id!r} and {other.id!r} overlap or have no wall between them"
                )

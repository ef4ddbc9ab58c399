"""populate: light the rooms and put the start, the exit, keys, a boss, enemies and items on the floor.

The start and the exit stand at the middle of their rooms, each key somewhere in the room the
progression chose for it, the boss (when the prompt asks for one) in the exit room. Enemies keep
out of the start room so a level never opens with a fight; items may be anywhere. Nothing stands
on a cell next to a door, so doorways stay clear; no two entities share a cell, and enemies and
items are drawn uniformly over the free floor (so in proportion to a room's size). A crowded level
gets fewer than planned rather than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from itertools import accumulate
from typing import Any, cast

from .contract import StepOutput, plural
from .level import Level, Progression
from .model import Cell, Entity, Room
from .rng import Stream
from .styles import style_named

LIGHT_SPREAD = 40  # room light varies this much either way around the theme's light
LIT_FROM = 128  # a room this bright or brighter is tagged "lit", else "dark"
DRAWS = 64  # random cells tried before a room (or the level) counts as full


def populate(previous: Mapping[str, Any]) -> StepOutput:
    """Light the rooms and place the start, exit, keys, boss, enemies and items."""
    level = furnish(Level.from_data(previous))
    counts = {kind: sum(e.kind == kind for e in level.entities or ()) for kind in ("enemy", "item", "key")}
    summary = (
        f"Placed {plural(counts['enemy'], 'enemy', 'enemies')}, {plural(counts['item'], 'item')} "
        f"and {plural(counts['key'], 'key')}, plus the start and the exit"
    )
    return StepOutput(level.to_data(), summary)


def furnish(level: Level) -> Level:
    """populate on a Level."""
    level.require("rooms", "doors", "progression")
    style = style_named(level.request.style)
    stream = level.request.stream("populate", level.attempt)
    progression = cast("Progression", level.progression)  # level.require above: it is there
    rooms = _lit(level.rooms or (), level.plan.light, stream)
    by_id = {room.id: room for room in rooms}
    blocked = {
        (door.x + dx, door.y + dy) for door in level.doors or () for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
    }
    taken: set[Cell] = set()
    entities: list[Entity] = []

    def place(kind: str, type_: str, room: Room, cell: Cell | None, tags: tuple[str, ...] = ()) -> None:
        if cell is None:
            # No free cell away from the doors: any cell no one stands on (a level without its
            # start, exit or a key fails validation and is generated again).
            cell = next((c for c in room.floor() if c not in taken), None)
        if cell is not None:
            blocked.add(cell)
            taken.add(cell)
            entities.append(Entity(f"e{len(entities) + 1}", kind, type_, room.id, cell[0], cell[1], tags))

    for kind, room_id in (("start", progression.start), ("exit", progression.exit)):
        room = by_id[room_id]
        middle = room.center()
        place(kind, "player" if kind == "start" else "exit", room, None if middle in blocked else middle)
    placed_in = {lock.color: by_id[lock.key_room] for lock in progression.locks}
    if level.plan.boss:
        placed_in["boss"] = by_id[progression.exit]
    for what, room in placed_in.items():
        drawn = _free([room], list(accumulate([room.area])), blocked, stream)
        if what == "boss":
            place("enemy", style.boss[0], room, drawn and drawn[1], ("boss",))
        else:
            place("key", f"{what}_key", room, drawn and drawn[1])
    for kind, count, vocabulary, allowed in (
        ("enemy", level.plan.enemies, style.enemies, [room for room in rooms if room.id != progression.start]),
        ("item", level.plan.items, style.items, list(rooms)),
    ):
        totals = list(accumulate(room.area for room in allowed))
        for _ in range(count if allowed else 0):
            drawn = _free(allowed, totals, blocked, stream)
            if drawn is None:
                break  # crowded: fewer than planned rather than a long search
            place(kind, stream.choice(vocabulary)[0], *drawn)
    return replace(level, rooms=rooms, entities=tuple(entities))


def _free(rooms: list[Room], totals: list[int], blocked: set[Cell], stream: Stream) -> tuple[Room, Cell] | None:
    """A uniformly random floor cell of the rooms that is not blocked (by rejection), and its room."""
    for _ in range(DRAWS):
        room = rooms[stream.weighted(totals)]
        if room.rect is not None:
            x, y, w, h = room.rect
            cell = (x + stream.below(w), y + stream.below(h))
        else:
            cell = stream.choice(room.cells or ())  # a room without a rect has cells
        if cell not in blocked:
            return room, cell
    return None


def _lit(rooms: tuple[Room, ...], light: int, stream: Stream) -> tuple[Room, ...]:
    lit = []
    for room in rooms:
        level = max(0, min(255, light + stream.between(-LIGHT_SPREAD, LIGHT_SPREAD)))
        tags = tuple(tag for tag in room.tags if tag not in {"lit", "dark"}) + ("lit" if level >= LIT_FROM else "dark",)
        lit.append(Room(room.id, room.kind, room.rect, room.cells, tags, level))
    return tuple(lit)

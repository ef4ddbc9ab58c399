"""populate: put the player start, the exit, a boss if asked for, enemies and items on the floor.

The start and the exit stand at the centres of their rooms. Enemies keep out of the start room so a
level never opens with a fight; items may be anywhere. Rooms are drawn in proportion to their free
floor, and no two entities share a cell, so a crowded level gets fewer than planned rather than none.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from itertools import accumulate

from .contract import StepOutput, plural
from .level import Level
from .model import Entity, Room
from .styles import style_named


def populate(previous: Mapping) -> StepOutput:
    """Place the player start, the exit, the boss, enemies and items inside their rooms."""
    level = Level.from_data(previous)
    rooms = tuple(level.room_index().values())
    style = style_named(level.request.style)
    rng = level.request.rng("populate")
    start, exit_ = level.start_room(), level.exit_room()
    free = {room.id: room.cells() for room in rooms}
    entities: list[Entity] = []

    def place(type_: str, kind: str, room: Room, cell: tuple[int, int] | None = None) -> None:
        cells = free[room.id]
        if cell is None:
            cell = cells.pop(rng.randrange(len(cells)))
        else:
            cells.remove(cell)
        entities.append(Entity(f"e{len(entities)}", type_, kind, room.id, *cell))

    place("player_start", "player", start, start.center())
    place("exit", style.exit, exit_, exit_.center())
    if level.plan.boss and free[exit_.id]:
        place("boss", style.boss, exit_)
    enemy_rooms = [room for room in rooms if room is not start]
    for type_, count, candidates, kinds in (
        ("enemy", level.plan.enemies, enemy_rooms, style.enemies),
        ("item", level.plan.items, rooms, style.items),
    ):
        for _ in range(count):
            room = _pick_room(candidates, free, rng)
            if room is None:
                break
            place(type_, rng.choice(kinds)[0], room)
    level = level.with_entities(tuple(entities))
    counts = {type_: sum(entity.type == type_ for entity in entities) for type_ in ("enemy", "item", "boss")}
    summary = (
        f"Placed {plural(counts['enemy'], 'enemy', 'enemies')}, {plural(counts['item'], 'item')} "
        f"and {plural(counts['boss'], 'boss', 'bosses')}, plus the start and the exit"
    )
    return StepOutput(level.to_data(), summary)


def _pick_room(rooms: Sequence[Room], free: dict[str, list], rng: random.Random) -> Room | None:
    # An integer weighted choice: rng.choices would go through floats.
    bounds = list(accumulate(len(free[room.id]) for room in rooms))
    if not bounds or bounds[-1] == 0:
        return None
    return rooms[bisect_right(bounds, rng.randrange(bounds[-1]))]

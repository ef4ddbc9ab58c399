"""Dead ends of a labyrinth: drop some dead-end corridors whole, and shorten the branches of the rest.

Run on the spanning tree, before the progression is chosen. A corridor with one door is a dead
end: `drop` percent of them go, with their door. In the corridors left, a dead-end cell (one walkable
neighbour) is removed, up to `depth` cells back along each branch; a cell next to a door is never
removed, so no door is ever left without floor on both sides. (Nystrom's rooms and mazes removes
every dead end; keeping some keeps the level a labyrinth.)
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Cell, Door, Room
from .rng import Stream

_ROW = 1 << 12  # wider than any grid
_STEPS = (1, -1, _ROW, -_ROW)


def prune_dead_ends(
    rooms: Sequence[Room], doors: Sequence[Door], drop: int, depth: int, stream: Stream
) -> tuple[list[Room], list[Door]]:
    """The rooms and doors left after dropping and shortening dead-end corridors."""
    doors_of: dict[str, list[Door]] = {room.id: [] for room in rooms}
    for door in doors:
        doors_of[door.a].append(door)
        doors_of[door.b].append(door)
    dropped = {
        room.id for room in rooms if room.kind == "corridor" and len(doors_of[room.id]) == 1 and stream.chance(drop)
    }
    kept_doors = [door for door in doors if door.a not in dropped and door.b not in dropped]
    kept_rooms = []
    for room in rooms:
        if room.id in dropped:
            continue
        if room.kind == "corridor" and room.cells is not None and depth > 0:
            cells = _shorten(room.cells, [(door.x, door.y) for door in doors_of[room.id]], depth)
            room = Room(room.id, room.kind, cells=cells, tags=room.tags, light=room.light)
        kept_rooms.append(room)
    return kept_rooms, kept_doors


def _shorten(cells: tuple[Cell, ...], door_cells: list[Cell], depth: int) -> tuple[Cell, ...]:
    # Cells as integers x + y * _ROW: neighbours are +-1 and +-_ROW.
    floor = {x + y * _ROW for x, y in cells}
    walkable = floor | {x + y * _ROW for x, y in door_cells}
    protected = {x + y * _ROW + step for x, y in door_cells for step in _STEPS}

    def dead_end(cell: int) -> bool:
        return (
            cell not in protected
            and (
                (cell + 1 in walkable) + (cell - 1 in walkable) + (cell + _ROW in walkable) + (cell - _ROW in walkable)
            )
            <= 1
        )

    ends = [x + y * _ROW for x, y in cells if dead_end(x + y * _ROW)]
    for _ in range(depth):
        removed = []
        for cell in ends:
            if cell in floor and dead_end(cell):
                floor.discard(cell)
                walkable.discard(cell)
                removed.append(cell)
        ends = [cell + step for cell in removed for step in _STEPS if cell + step in floor and dead_end(cell + step)]
    return tuple(cell for cell in cells if cell[0] + cell[1] * _ROW in floor)

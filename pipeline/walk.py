"""Walking through a level: distances in cells, routes through doors, keys opening locks.

A walk moves one cell at a time (4-connected) over floor and through doors. Inside a room the
distance between two cells is their Manhattan distance: exact in a rectangle or a cross, a lower
bound (and close) in a cave chamber, which is a compact blob — searching every chamber from every
door would cost more than the rest of the walk. Corridors wind, so inside a corridor the distance
is found breadth-first, once per starting cell. Between rooms, Dijkstra runs over the doors:
from a door to any other door of either room it joins. So a walk costs about the doors times the
doors per room, never the whole grid.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .model import Cell, Door, Room

UNREACHABLE = 1 << 30
_ROW = 1 << 12  # wider than any grid


class Walker:
    """Walking distances over rooms and doors."""

    def __init__(self, rooms: Sequence[Room], doors: Sequence[Door]) -> None:
        self.rooms = {room.id: room for room in rooms}
        self.doors = {door.id: door for door in doors}
        # room id -> [(door, the door's neighbour cell in this room, the room beyond)]
        self.exits: dict[str, list[tuple[Door, Cell, str]]] = {room.id: [] for room in rooms}
        self._cells: dict[str, set[Cell]] = {}
        for door in doors:
            first, second = door.sides()
            if not self.contains(door.a, first):
                first, second = second, first
            self.exits[door.a].append((door, first, door.b))
            self.exits[door.b].append((door, second, door.a))
        self._fields: dict[tuple[str, Cell], dict[int, int]] = {}
        self._open: dict[str, set[int]] = {}  # a corridor's cells as integers, for _breadth_first

    def contains(self, room_id: str, cell: Cell) -> bool:
        """Whether cell is floor of the room."""
        room = self.rooms[room_id]
        if room.rect is not None:
            x, y, w, h = room.rect
            return x <= cell[0] < x + w and y <= cell[1] < y + h
        cells = self._cells.get(room_id)
        if cells is None:
            cells = self._cells[room_id] = set(room.cells or ())
        return cell in cells

    def inside(self, room_id: str, a: Cell, b: Cell) -> int:
        """Steps from a to b without leaving the room."""
        room = self.rooms[room_id]
        if room.kind != "corridor":
            return abs(a[0] - b[0]) + abs(a[1] - b[1])
        key = (room_id, a)
        field = self._fields.get(key)
        if field is None:
            inside = self._open.get(room_id)
            if inside is None:
                inside = self._open[room_id] = {x + y * _ROW for x, y in room.cells or ()}
            field = self._fields[key] = _breadth_first(a, inside)
        # A cell a room of cells cannot reach from a: as good as unreachable.
        return field.get(b[0] + b[1] * _ROW, UNREACHABLE)

    def reach(
        self, room_id: str, cell: Cell, closed: Iterable[str] = (), until: tuple[str, Cell] | None = None
    ) -> Reach:
        """Every door's walking distance from cell (in room room_id), never passing a closed door.

        With until (a room and a cell in it), the walk stops once no door left could lead there
        any shorter: enough for the route and the distance to that one cell.
        """
        closed = set(closed)
        target_room, target_cell = until or ("", cell)
        best = self.inside(room_id, cell, target_cell) if target_room == room_id else UNREACHABLE
        distance: dict[str, int] = {}
        came: dict[str, tuple[str | None, str]] = {}
        # (steps to the door cell, door, the door walked from, the room walked through)
        heap: list[tuple[int, str, str | None, str]] = []
        for door, side, _ in self.exits[room_id]:
            if door.id not in closed:
                heapq.heappush(heap, (self.inside(room_id, cell, side) + 1, door.id, None, room_id))
        while heap:
            steps, door_id, previous, through = heapq.heappop(heap)
            if until is not None and steps >= best:
                break
            if door_id in distance:
                continue
            distance[door_id] = steps
            came[door_id] = (previous, through)
            door = self.doors[door_id]
            for room in (door.a, door.b):
                side = self._side(door, room)
                if room == target_room:
                    best = min(best, steps + 1 + self.inside(room, side, target_cell))
                for other, other_side, _ in self.exits[room]:
                    if other.id not in distance and other.id not in closed:
                        heapq.heappush(
                            heap, (steps + 1 + self.inside(room, side, other_side) + 1, other.id, door_id, room)
                        )
        return Reach(self, room_id, cell, distance, came)

    def _side(self, door: Door, room_id: str) -> Cell:
        first, second = door.sides()
        return first if self.contains(room_id, first) else second


class Reach:
    """The result of a walk from one cell: distances to rooms and cells, and the routes taken."""

    def __init__(
        self, walker: Walker, room_id: str, cell: Cell, distance: dict[str, Any], came: dict[str, Any]
    ) -> None:
        self.walker, self.room_id, self.cell = walker, room_id, cell
        self.distance, self.came = distance, came

    def _best(self, room_id: str, cell: Cell) -> tuple[int, str | None]:
        """Fewest steps to cell, and the door it is entered by (None: from inside the start room)."""
        walker = self.walker
        best, entry = (
            (walker.inside(room_id, self.cell, cell), None) if room_id == self.room_id else (UNREACHABLE, None)
        )
        for door, side, _ in walker.exits[room_id]:
            steps = self.distance.get(door.id)
            if steps is not None and steps + 1 + walker.inside(room_id, side, cell) < best:
                best, entry = steps + 1 + walker.inside(room_id, side, cell), door.id
        return best, entry

    def to(self, room_id: str, cell: Cell | None = None) -> int | None:
        """Steps to cell (the room's centre by default), or None when it cannot be reached."""
        steps, _ = self._best(room_id, cell or self.walker.rooms[room_id].center())
        return steps if steps < UNREACHABLE else None

    def route(self, room_id: str, cell: Cell | None = None) -> list[str]:
        """The rooms walked through from the start to cell, in order (empty when unreachable)."""
        steps, door_id = self._best(room_id, cell or self.walker.rooms[room_id].center())
        if steps >= UNREACHABLE:
            return []
        rooms = [room_id]
        while door_id is not None:
            door_id, through = self.came[door_id]
            rooms.append(through)
        return rooms[::-1]


def reach_with_keys(
    adjacency: Mapping[str, Sequence[tuple[str, str]]],
    start: str,
    locked: Mapping[str, str],
    key_rooms: Mapping[str, str],
) -> tuple[dict[str, int], list[str]]:
    """Rooms a player reaches picking up keys on the way, with the keys needed for each; keys opened, in order.

    adjacency: room -> [(door id, room beyond)]; locked: door id -> colour; key_rooms: colour ->
    the room its key lies in. A locked door opens once its key's room has been reached.
    """
    zone: dict[str, int] = {start: 0}
    opened: list[str] = []
    frontier = deque([start])
    waiting: dict[str, list[str]] = {}  # colour -> rooms behind doors of that colour
    while True:
        while frontier:
            room = frontier.popleft()
            for door_id, beyond in adjacency[room]:
                if beyond in zone:
                    continue
                color = locked.get(door_id)
                if color is not None and color not in opened:
                    waiting.setdefault(color, []).append(beyond)
                    continue
                zone[beyond] = len(opened)
                frontier.append(beyond)
        ready = [color for color, room in key_rooms.items() if room in zone and color not in opened]
        if not ready:
            return zone, opened
        # Keys found together open together; their order on the way is the order they were reached.
        for color in sorted(ready, key=lambda c: (zone[key_rooms[c]], c)):
            opened.append(color)
            for beyond in waiting.pop(color, []):
                if beyond not in zone:
                    zone[beyond] = len(opened)
                    frontier.append(beyond)


def _breadth_first(start: Cell, inside: set[int]) -> dict[int, int]:
    """Steps from start to each cell of inside, cells as x + y * _ROW (integers search faster than tuples)."""
    first = start[0] + start[1] * _ROW
    steps = {first: 0}
    queue = deque([first])
    while queue:
        here = queue.popleft()
        after = steps[here] + 1
        for other in (here + 1, here - 1, here + _ROW, here - _ROW):
            if other in inside and other not in steps:
                steps[other] = after
                queue.append(other)
    return steps

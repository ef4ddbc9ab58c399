"""plan_route: the cells a player walks along the critical path, keys picked up, doors opened.

The walk follows graph.criticalPath room by room. In each room but the last it first fetches
the keys lying there, then crosses into the next room through a door joining the two that it
can open with the keys it holds; in the last room it goes to where the exit switch is pressed.
Within a leg the path is the shortest with the fewest turns: every turn costs the player a stop.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ..contract import PipelineError
from .scene import DIRECTIONS, LOCK_COLORS, Cell, Direction, Door, Entity, Scene, step

TURN_COST = 4  # steps a turn is worth: stopping, turning and speeding up again take that long
_KEY_COLORS = {f"{color}_key": color for color in LOCK_COLORS}


@dataclass(frozen=True)
class Route:
    """The walk: each cell a step from the one before; doors to open; how to face the switch."""

    cells: tuple[Cell, ...]
    opens: frozenset[int]  # i such that the door at cells[i + 1] is used from cells[i] first
    switch: Direction  # faced at cells[-1] to press the exit switch


def plan_route(scene: Scene) -> Route:
    """Walk the critical path from the start to the exit switch; PipelineError if it cannot be walked."""
    walkable = scene.walkable()
    room_cells: dict[str, set[Cell]] = {room: set() for room in scene.rooms}
    for cell, room in scene.floor.items():
        if cell in walkable:
            room_cells[room].add(cell)
    keys_in: dict[str, list[Entity]] = defaultdict(list)
    for entity in scene.entities:
        if entity.kind == "key" and entity.type in _KEY_COLORS:
            keys_in[entity.room].append(entity)
    between: dict[frozenset[str], list[Door]] = defaultdict(list)
    for door in scene.doors:
        between[frozenset((door.a, door.b))].append(door)
    held: set[str] = set()
    cells = [scene.start.cell]

    def walk(allowed: set[Cell], goal: Callable[[Cell], bool], what: str) -> None:
        heading = _direction(cells[-2], cells[-1]) if len(cells) > 1 else None
        found = _fewest_turns(cells[-1], heading, allowed, goal)
        if found is None:
            raise PipelineError(f"the critical path cannot reach {what}")
        cells.extend(found)

    path = scene.critical_path
    for room, following in pairwise(path):
        for key in keys_in[room]:
            color = _KEY_COLORS[key.type]
            if color not in held:
                walk(room_cells[room], key.cell.__eq__, f"key {key.id} in room {room}")
                held.add(color)
        joining = between[frozenset((room, following))]
        open_ = {door.cell for door in joining if door.lock is None or door.lock in held}
        if not open_:
            locks = ", ".join(f"{door.id} ({door.lock})" for door in joining) or "none"
            raise PipelineError(
                f"criticalPath goes from {room} to {following}, but no door it can open joins them: {locks}"
            )
        walk(room_cells[room] | open_ | room_cells[following], room_cells[following].__contains__, f"room {following}")
    switch = scene.exit_switch
    walk(room_cells[path[-1]], switch.stand.__eq__, f"the exit switch in room {path[-1]}")
    return Route(tuple(cells), _first_passes(cells, set(scene.door_at)), switch.face)


def _first_passes(cells: list[Cell], doors: set[Cell]) -> frozenset[int]:
    """Indices before each door's first crossing: doors stay open once opened."""
    opened: set[Cell] = set()
    opens = set()
    for index, cell in enumerate(cells[1:]):
        if cell in doors and cell not in opened:
            opened.add(cell)
            opens.add(index)
    return frozenset(opens)


def _direction(a: Cell, b: Cell) -> Direction:
    return b[0] - a[0], b[1] - a[1]


def _fewest_turns(
    start: Cell, heading: Direction | None, allowed: set[Cell], goal: Callable[[Cell], bool]
) -> list[Cell] | None:
    """Dijkstra over (cell, heading): a step costs 1 and a turn TURN_COST; the cells after start."""
    queue = [(0, 0, start, heading)]
    came_from: dict[tuple[Cell, Direction | None], tuple[Cell, Direction | None] | None] = {(start, heading): None}
    best = {(start, heading): 0}
    pushed = 0
    while queue:
        cost, _, cell, facing = heapq.heappop(queue)
        if cost > best[(cell, facing)]:
            continue
        if goal(cell):
            walked = []
            state = (cell, facing)
            previous = came_from[state]
            while previous is not None:
                walked.append(state[0])
                state, previous = previous, came_from[previous]
            return walked[::-1]
        for direction in DIRECTIONS:
            neighbour = step(cell, direction)
            if neighbour not in allowed:
                continue
            total = cost + 1 + (TURN_COST if facing not in (None, direction) else 0)
            state = (neighbour, direction)
            if total < best.get(state, total + 1):
                best[state] = total
                came_from[state] = (cell, facing)
                pushed += 1  # a counter breaks ties in push order, never by comparing cells
                heapq.heappush(queue, (total, pushed, neighbour, direction))
    return None

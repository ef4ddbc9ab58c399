"""Trace the boundaries between regions of the cell grid into straight walls, Doom-style.

A region is a room's floor, a door (one or more cells, see scene.Door), or solid rock (None).
Every cell edge with different regions on its two sides is boundary; consecutive edges along
one grid line with the same two regions merge into one wall. A run also ends wherever a third
region meets the line, so walls only ever meet at their ends, as a node builder expects.

Doom draws a line's front side on its right, going from its first vertex to its second; the
front is the room (else the door), because a door opens only when used from the front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..contract import PipelineError
from .scene import Cell, Scene, step

Region = tuple[str, str] | None  # ("room", id), ("door", sector), or None for solid rock
_RANK = {"room": 0, "door": 1}


@dataclass(frozen=True)
class Wall:
    """A boundary from grid corner `start` to grid corner `end`, with `front` on its right."""

    start: Cell
    end: Cell
    front: tuple[str, str]
    back: Region
    switch: bool


def trace_walls(scene: Scene) -> list[Wall]:
    """Every wall of the scene, row lines first, then column lines, in grid order."""
    doors = scene.door_at

    def region(cell: Cell) -> Region:
        if cell in scene.floor:
            return ("room", scene.floor[cell])
        if cell in doors:
            return ("door", doors[cell].sector)
        return None

    # Each cell's region, looked up once (every cell borders four edges): grid[y][x].
    grid = [[region((x, y)) for x in range(scene.width)] for y in range(scene.height)]
    switch = scene.exit_switch
    switch_edge = frozenset((switch.stand, step(switch.stand, switch.face)))
    walls: list[Wall] = []
    # Row line y lies between cells (x, y-1) above and (x, y) below; column line x between
    # (x-1, y) and (x, y). Border cells are never floor, so lines 0 and the last have no walls.
    for horizontal, lines, length in ((True, scene.height, scene.width), (False, scene.width, scene.height)):
        for line in range(1, lines):
            run_start, run_key = 0, None
            for along in range(length + 1):
                key = None
                if along < length:
                    first, second = (
                        ((along, line - 1), (along, line)) if horizontal else ((line - 1, along), (line, along))
                    )
                    before, after = grid[first[1]][first[0]], grid[second[1]][second[0]]
                    if before != after:  # else no wall: the common case, rock beside rock
                        key = _edge(before, after, frozenset((first, second)) == switch_edge)
                if key != run_key:
                    if run_key is not None:
                        walls.append(_wall(horizontal, line, run_start, along, *run_key))
                    run_start, run_key = along, key
    return walls


def _edge(first: Region, second: Region, switch: bool) -> tuple[Any, ...] | None:
    """(front, back, front is the first cell, switch) for the edge between two cells; None if no wall."""
    if first == second:
        return None
    if first is not None and second is not None and first[0] == second[0] == "room":
        raise PipelineError(f"rooms {first[1]!r} and {second[1]!r} touch with no wall or door between them")
    first_front = second is None or (first is not None and _RANK[first[0]] <= _RANK[second[0]])
    front, back = (first, second) if first_front else (second, first)
    return front, back, first_front, switch


def _wall(
    horizontal: bool,
    line: int,
    low: int,
    high: int,
    front: tuple[str, str],  # never None: _edge puts the solid side at the back
    back: Region,
    first_front: bool,
    switch: bool,
) -> Wall:
    # The first cell is above (row lines) or left (column lines). Going east along a row line
    # puts the cell below on the right; going north along a column line, the cell to the east.
    if horizontal:
        start, end = ((high, line), (low, line)) if first_front else ((low, line), (high, line))
    else:
        start, end = ((line, low), (line, high)) if first_front else ((line, high), (line, low))
    return Wall(start, end, front, back, switch)

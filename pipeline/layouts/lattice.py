"""The lattice construction (doom, scifi): rooms in a jittered lattice of blocks, joined by corridors.

Columns and rows of blocks get random widths and heights; a connected set of blocks, grown from a
random one, each gets a room placed at random inside it. The last column and row of every block
are its gutters. A room keeps two cells clear of its block's edges, so between two rooms there is
always space, and a corridor between neighbouring blocks runs from a door in one room to its
block's gutter, along the gutter, and on to a door in the other room. Horizontal corridors stay in
their row of blocks' room band and vertical ones in their column's, so no two corridors ever touch
each other or a third room: every neighbouring pair can be offered as a link, and connect_doors
carves only the ones it takes (a spanning tree, then loops).

Shape parameters (Style.shape): block_min, block_max (block side), fill_min (percent of the space a
block leaves that its room fills at least).
"""

from __future__ import annotations

import math
from typing import cast

from ..grid import Grid
from ..model import Cell
from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .draft import Draft, Layout

Rect = tuple[int, int, int, int]

_SIZE_STEP = {"small": -2, "medium": 0, "large": 3}
OCCUPANCY_PERCENT = 75


def build_lattice(plan: Plan, style: Style, stream: Stream, space: int = 100) -> Layout:
    """Lay out plan.rooms rooms on a lattice and offer a corridor between every two neighbours.

    A lattice always has a block for every room, so space (the grid area in percent) is not used.
    """
    step = _SIZE_STEP[plan.size]
    low, high = style.shape["block_min"] + step, style.shape["block_max"] + step
    blocks = plan.rooms * 100 // OCCUPANCY_PERCENT + 1
    cols = max(2, math.isqrt(blocks * 8 // 5))
    rows = max(2, -(-blocks // cols))
    # Blocks are wider than tall: a terminal shows a cell about twice as tall as wide.
    widths = [stream.between(low, high) for _ in range(cols)]
    heights = [stream.between(max(6, low * 3 // 4), max(6, high * 3 // 4)) for _ in range(rows)]
    xs, ys = _offsets(widths), _offsets(heights)
    draft = Draft(Grid(xs[-1] + 1, ys[-1] + 1))

    fill = style.shape["fill_min"]
    room_at: dict[tuple[int, int], int] = {}
    for col, row in _grow(cols, rows, plan.rooms, stream):
        room_at[(col, row)] = _place_room(draft, xs[col], ys[row], widths[col], heights[row], fill, stream)
    straight = 50 + plan.corridors // 2
    for (col, row), number in room_at.items():
        east, south = room_at.get((col + 1, row)), room_at.get((col, row + 1))
        if east is not None:
            _offer(draft, number, east, xs[col + 1] - 1, straight, stream, across=True)
        if south is not None:
            _offer(draft, number, south, ys[row + 1] - 1, straight, stream, across=False)
    return draft.finish()


def _offsets(sizes: list[int]) -> list[int]:
    """Where each block starts, after the one-cell border, and (last) where the border ends."""
    offsets = [1]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    return offsets


def _grow(cols: int, rows: int, count: int, stream: Stream) -> list[tuple[int, int]]:
    """count blocks forming one connected blob, grown from a random block."""
    start = (stream.below(cols), stream.below(rows))
    taken, frontier, seen = [start], [], {start}
    while len(taken) < count:
        col, row = taken[-1]
        for neighbour in ((col + 1, row), (col - 1, row), (col, row + 1), (col, row - 1)):
            if neighbour not in seen and 0 <= neighbour[0] < cols and 0 <= neighbour[1] < rows:
                seen.add(neighbour)
                frontier.append(neighbour)
        index = stream.below(len(frontier))
        frontier[index], frontier[-1] = frontier[-1], frontier[index]
        taken.append(frontier.pop())
    return taken


def _place_room(draft: Draft, bx: int, by: int, bw: int, bh: int, fill: int, stream: Stream) -> int:
    # Floor keeps one cell from the block's start and two from its end (the gutter and a wall).
    span_w, span_h = bw - 3, bh - 3
    w = stream.between(max(3, span_w * fill // 100), span_w)
    h = stream.between(max(3, span_h * fill // 100), span_h)
    x = stream.between(bx + 1, bx + bw - 2 - w)
    y = stream.between(by + 1, by + bh - 2 - h)
    return draft.add_rect("room", x, y, w, h)


def _offer(draft: Draft, a: int, b: int, gutter: int, straight: int, stream: Stream, *, across: bool) -> None:
    """Offer the corridor from room a to the room b east of it (across) or south of it."""
    # The lattice draws rectangles only.
    ra, rb = cast("Rect", draft.shapes[a - 1][0]), cast("Rect", draft.shapes[b - 1][0])
    # Work in (along, side) coordinates: along is x for an east link, y for a south one.
    if across:
        a_low, a_size, a_end, b_low, b_size, b_start = ra[1], ra[3], ra[0] + ra[2], rb[1], rb[3], rb[0]
    else:
        a_low, a_size, a_end, b_low, b_size, b_start = ra[0], ra[2], ra[1] + ra[3], rb[0], rb[2], rb[1]
    overlap = (max(a_low, b_low), min(a_low + a_size, b_low + b_size) - 1)
    if overlap[0] <= overlap[1] and stream.chance(straight):
        side_a = side_b = stream.between(*overlap)
    else:
        side_a, side_b = stream.between(a_low, a_low + a_size - 1), stream.between(b_low, b_low + b_size - 1)
    path: list[tuple[int, int]] = [(along, side_a) for along in range(a_end + 1, gutter + 1)]
    step = 1 if side_b > side_a else -1
    path += [(gutter, side) for side in range(side_a + step, side_b + step, step)] if side_a != side_b else []
    path += [(along, side_b) for along in range(gutter + 1, b_start - 1)]
    orientation = "vertical" if across else "horizontal"
    doors: tuple[tuple[int, int, str], ...] = ((a_end, side_a, orientation), (b_start - 1, side_b, orientation))
    cells: list[Cell] = path if across else [(side, along) for along, side in path]
    if not across:
        doors = tuple((side, along, orientation) for along, side, orientation in doors)
    draft.link(a, b, doors, tuple(sorted(cells, key=lambda cell: (cell[1], cell[0]))))

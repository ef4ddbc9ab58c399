"""The attach construction (dungeon, haunted): rooms attached one at a time, as in Brogue.

The first room goes in the middle. Each next piece — a rectangle or a cross, sometimes behind a
straight corridor stub — is tried at a random site: a floor cell at the edge of the level and the
direction out of it. The door cell there must be solid with solid cells beside it, and every cell
of the piece must be solid with no floor or door next to it. Sites that have been built over are
dropped as they turn up. So the level grows as a tree with dead space between its branches. The doors that
attached the pieces are preferred links (connect_doors keeps them all); every other place where a
single wall divides two regions is offered as a possible loop.

Shape parameters (Style.shape): room_min, room_max (room side), cross (percent of cross-shaped
rooms), stub_min, stub_max (corridor stub length), space (grid cells per room).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..grid import SOLID, Grid
from ..model import Cell
from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .draft import Draft, Layout

DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
ATTEMPTS_PER_ROOM = 60
_SIZE_STEP = {"small": -1, "medium": 0, "large": 2}


def build_attach(plan: Plan, style: Style, stream: Stream, space: int = 100) -> Layout:
    """Attach plan.rooms rooms to each other, through doors and corridor stubs, on a grid of space
    percent of the usual area."""
    shape, step = style.shape, _SIZE_STEP[plan.size]
    low, high = shape["room_min"], max(shape["room_min"], shape["room_max"] + step)
    area = plan.rooms * shape["space"] * (high + 1) ** 2 // (shape["room_max"] + 1) ** 2 * space // 100
    width = max(24, math.isqrt(area * 8 // 5) + 2)
    height = max(16, area // (width - 2) + 2)
    draft = Draft(Grid(width, height))
    w, h, cells = _room_cells(low, high, shape["cross"], stream)
    x0, y0 = (width - w) // 2, (height - h) // 2
    first = [(x + x0, y + y0) for x, y in cells or [(x, y) for y in range(h) for x in range(w)]]
    _add_room(draft, first)
    sites = _sites(first)
    rooms = 1
    linked: set[tuple[int, int]] = set()
    for _ in range(plan.rooms * ATTEMPTS_PER_ROOM):
        if rooms == plan.rooms or not sites:
            break
        if _attach(draft, sites, low, high, shape, plan.corridors, stream, linked):
            rooms += 1
    draft.offer_joints(stream, linked)
    return draft.finish()


def _room_cells(low: int, high: int, cross: int, stream: Stream) -> tuple[int, int, list[Cell] | None]:
    """A room shape at the origin: (w, h, None) for a rectangle, or a cross of two centred bars and its cells."""
    w, h = stream.between(low, high), stream.between(low, high)
    if w >= 5 and h >= 5 and stream.chance(cross):
        bar_w, bar_h = stream.between(max(1, w // 3), w - 2), stream.between(max(1, h // 3), h - 2)
        ox, oy = (w - bar_w) // 2, (h - bar_h) // 2
        return w, h, [(x, y) for y in range(h) for x in range(w) if ox <= x < ox + bar_w or oy <= y < oy + bar_h]
    return w, h, None


def _sites(cells: list[Cell]) -> list[tuple[int, int, int, int]]:
    """(x, y, dx, dy): a floor cell and a direction in which the next cell is not floor."""
    floor = set(cells)
    return [(x, y, dx, dy) for x, y in cells for dx, dy in DIRECTIONS if (x + dx, y + dy) not in floor]


def _attach(
    draft: Draft,
    sites: list[Any],
    low: int,
    high: int,
    shape: Mapping[str, int],
    corridors: int,
    stream: Stream,
    linked: set[Any],
) -> bool:
    """Try one piece at one random site; True when it was placed."""
    grid, width = draft.grid, draft.grid.width
    pick = stream.below(len(sites))
    cx, cy, dx, dy = sites[pick]
    door, entry = (cx + dx, cy + dy), (cx + 2 * dx, cy + 2 * dy)
    if (
        not (1 <= entry[0] <= width - 2 and 1 <= entry[1] <= grid.height - 2)
        or grid.owner[door[1] * width + door[0]] != SOLID
        or grid.owner[entry[1] * width + entry[0]] != SOLID
    ):
        # Built over, or against the border: no piece will ever attach here.
        sites[pick] = sites[-1]
        sites.pop()
        return False
    host = grid.owner[cy * width + cx]
    corridor: list[Cell] = []
    if stream.chance(corridors):
        length = stream.between(shape["stub_min"], shape["stub_max"])
        corridor = [(entry[0] + dx * k, entry[1] + dy * k) for k in range(length)]
        if not grid.fits(corridor):
            return False
        # Past the corridor and the door at its end.
        entry = (entry[0] + dx * (length + 1), entry[1] + dy * (length + 1))
    w, h, cells = _room_cells(low, high, shape["cross"], stream)
    if cells is None:
        # A rectangle meets the door with its back edge, at a random place along it; it lies
        # wholly beyond the door, so it can never touch the corridor.
        x = entry[0] if dx > 0 else entry[0] - w + 1 if dx < 0 else entry[0] - stream.below(w)
        y = entry[1] if dy > 0 else entry[1] - h + 1 if dy < 0 else entry[1] - stream.below(h)
        if not grid.rect_fits(x, y, w, h):
            return False
        room: list[Any] = [(x, y, w, h)]  # the rectangle; in the other branch, the cells
        room_set: set[Cell] = set()
    else:
        # The cells that face back toward the door, one of which meets it.
        shape_cells = set(cells)
        fx, fy = stream.choice([cell for cell in cells if (cell[0] - dx, cell[1] - dy) not in shape_cells])
        room = [(x - fx + entry[0], y - fy + entry[1]) for x, y in cells]
        if not grid.fits(room):
            return False
        room_set = set(room)
        if any((x + ex, y + ey) in room_set for x, y in corridor for ex, ey in DIRECTIONS):
            return False
    inner_door = (entry[0] - dx, entry[1] - dy)
    for x, y in (
        (door[0] + dy, door[1] + dx),
        (door[0] - dy, door[1] - dx),
        (inner_door[0] + dy, inner_door[1] + dx),
        (inner_door[0] - dy, inner_door[1] - dx),
    ):
        if (x, y) in room_set or grid.owner[y * width + x] != SOLID:
            return False
    orientation = "vertical" if dx else "horizontal"
    if cells is None:
        number = draft.add_rect("room", *room[0])
        x, y, w, h = room[0]
        sites += _sites(
            [(x + i, y + j) for j in (0, h - 1) for i in range(w)]
            + [(x + i, y + j) for j in range(h) for i in (0, w - 1)]
        )
    else:
        number = _add_room(draft, room)
        sites += _sites(room)
    if corridor:
        passage = draft.add_cells("corridor", corridor)
        sites += _sites(corridor)
        grid.paint((door, inner_door), -1)
        draft.link(host, passage, ((*door, orientation),), preferred=True)
        draft.link(passage, number, ((*inner_door, orientation),), preferred=True)
        linked.update({_pair(host, passage), _pair(passage, number)})
    else:
        grid.paint((door,), -1)
        draft.link(host, number, ((*door, orientation),), preferred=True)
        linked.add(_pair(host, number))
    return True


def _add_room(draft: Draft, cells: list[Cell]) -> int:
    """Add a room as a rectangle when it is one (shorter JSON), else as its cells."""
    x, y = min(x for x, _ in cells), min(y for _, y in cells)
    w, h = max(x for x, _ in cells) - x + 1, max(y for _, y in cells) - y + 1
    return draft.add_rect("room", x, y, w, h) if w * h == len(cells) else draft.add_cells("room", cells)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)

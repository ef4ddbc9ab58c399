"""The maze construction: rooms in a labyrinth of one-cell passages ("rooms and mazes").

Rooms have odd sides at odd coordinates, so any two are at least one wall apart. The space left
is filled with a maze on the odd lattice by a growing tree (mostly the newest cell, sometimes a
random one, for long winding passages with some branching). The maze is cut into corridor
segments of at most `segment` lattice cells: where a passage leaves a full segment, its connector
cell becomes a door to a new one (a preferred link: the maze needs it to hold together). Every
other wall cell between two regions (room-maze, room-room, segment-segment) is offered as a link,
so connect_doors joins the rooms to the labyrinth and adds loops from the same offers. connect_doors
then prunes dead ends (Style.shape prune and drop).

A passage cell between two lattice cells always has rock on its two other sides (the lattice's
corners), and so does a wall cell between a room and the maze: every such cell is a valid door.

Shape parameters (Style.shape): room_min, room_max (room side), segment (lattice cells per
corridor segment), prune (dead-end cells removed per branch), drop (percent of dead-end segments
removed whole).
"""

from __future__ import annotations

import math

from ..grid import Grid
from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .draft import Draft, Layout

ATTEMPTS_PER_ROOM = 40
ROOM_SHARE_PERCENT = 50  # of the grid's area, roughly, that rooms take
NEWEST_PERCENT = 85  # growing tree: how often it extends the newest cell rather than a random one
_SIZE_STEP = {"small": -2, "medium": 0, "large": 2}


def build_maze(plan: Plan, style: Style, stream: Stream, space: int = 100) -> Layout:
    """Place plan.rooms rooms on a grid of space percent of the usual area, and fill the space
    between them with a segmented maze."""
    shape = style.shape
    low, high = shape["room_min"] // 2, max(shape["room_min"], shape["room_max"] + _SIZE_STEP[plan.size]) // 2
    average = (low + high + 1) ** 2  # of a side 2k + 1, k from low to high
    area = plan.rooms * average * space // ROOM_SHARE_PERCENT
    width = max(25, math.isqrt(area * 8 // 5) | 1)
    height = max(17, (area // width) | 1)
    draft = Draft(Grid(width, height))
    rooms = 0
    for _ in range(plan.rooms * ATTEMPTS_PER_ROOM):
        if rooms == plan.rooms:
            break
        w, h = 2 * stream.between(low, high) + 1, 2 * stream.between(low, high) + 1
        x, y = 2 * stream.below((width - w) // 2) + 1, 2 * stream.below((height - h) // 2) + 1
        if _free(draft.grid, x, y, w, h):
            draft.add_rect("room", x, y, w, h)
            rooms += 1
    linked: set[tuple[int, int]] = set()
    for a, b, door in _carve(draft, shape["segment"], stream):
        draft.link(a, b, (door,), preferred=True)
        linked.add((a, b))
    draft.offer_joints(stream, linked)
    return draft.finish()


def _free(grid: Grid, x: int, y: int, w: int, h: int) -> bool:
    owner, width = grid.owner, grid.width
    return not any(any(owner[row * width + x : row * width + x + w]) for row in range(y, y + h))


def _carve(draft: Draft, segment: int, stream: Stream) -> list[tuple[int, int, tuple[int, int, str]]]:
    """Grow the maze into every free lattice cell; the cuts between its segments, as region pairs."""
    grid = draft.grid
    owner, width, height = grid.owner, grid.width, grid.height
    # Cells the maze may not enter: rooms, the border, and two rows past the end (so that i - 2 *
    # width and i + 2 * width of any lattice cell index a blocked cell, never out of range).
    blocked = bytearray(1 if cell else 0 for cell in owner) + b"\x01" * (2 * width)
    blocked[:width] = b"\x01" * width
    blocked[(height - 1) * width : height * width] = b"\x01" * width
    for row in range(height):
        blocked[row * width] = blocked[row * width + width - 1] = 1
    steps = (
        (2, 1, "vertical"),
        (-2, -1, "vertical"),
        (2 * width, width, "horizontal"),
        (-2 * width, -width, "horizontal"),
    )
    # The growing tree makes two small choices per turn, and has at most two turns per lattice cell:
    # one byte of noise each, drawn in one call (a byte modulo 2, 3 or 4 is as good as uniform here).
    noise, turn = stream.noise(2 * len(owner) + 8), 0
    newest = 256 * NEWEST_PERCENT // 100
    segments: list[list[int]] = []
    cuts: list[tuple[int, int, tuple[int, int, str]]] = []
    for y in range(1, height - 1, 2):
        for x in range(1, width - 1, 2):
            start = y * width + x
            if blocked[start]:
                continue
            blocked[start] = 1
            segments.append([start])
            active = [(start, len(segments) - 1)]
            while active:
                roll, choose = noise[turn], noise[turn + 1]
                turn += 2
                pick = len(active) - 1 if roll < newest else choose * len(active) // 256
                here, seg = active[pick]
                options = [step for step in steps if not blocked[here + step[0]]]
                if not options:
                    active[pick] = active[-1]
                    active.pop()
                    continue
                jump, half, orientation = options[choose % len(options)]
                there, between = here + jump, here + half
                blocked[there] = 1
                if len(segments[seg]) >= 2 * segment:
                    # A full segment: the passage goes on through a door into a new one.
                    segments.append([there])
                    cuts.append((seg, len(segments) - 1, (between % width, between // width, orientation)))
                    active.append((there, len(segments) - 1))
                else:
                    segments[seg] += [between, there]
                    active.append((there, seg))
    first = len(draft.kinds) + 1
    for cells in segments:
        draft.add_cells("corridor", [(index % width, index // width) for index in cells])
    return [(first + a, first + b, door) for a, b, door in cuts]

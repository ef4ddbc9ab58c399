"""layout_rooms: carve the plan's grid into rooms by binary space partitioning.

The grid has a one-cell outer wall. Each split draws a one-cell wall right across a rectangle, so
rooms tile the interior, never overlap, and neighbours share a wall where connect_doors can put a
door. Some splits cut a two-cell strip off one side instead of halving; those strips are corridors.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from .contract import StepOutput, plural
from .level import Level
from .model import Room
from .plan import Plan

Rect = tuple[int, int, int, int]  # x, y, w, h

MIN_SIDE = 3
CORRIDOR_SIDE = 2
MIN_CORRIDOR_LENGTH = 8
_SPLITTABLE = 2 * MIN_SIDE + 1


def layout_rooms(previous: Mapping) -> StepOutput:
    """Lay out the planned number of rooms on the plan's grid and choose the start and exit rooms."""
    level = Level.from_data(previous)
    rng = level.request.rng("layout_rooms")
    rooms = _name_rooms(_partition(level.plan, rng), rng)
    level = level.with_rooms(rooms)
    corridors = sum(room.kind == "corridor" for room in rooms)
    halls = sum(room.kind == "hall" for room in rooms)
    summary = (
        f"Laid out {plural(len(rooms), 'room')} ({plural(corridors, 'corridor')}, {plural(halls, 'hall')}) "
        f"on a {level.plan.width}x{level.plan.height} grid"
    )
    return StepOutput(level.to_data(), summary)


def _partition(plan: Plan, rng: random.Random) -> list[Rect]:
    leaves = [(1, 1, plan.width - 2, plan.height - 2)]
    while len(leaves) < plan.rooms:
        splittable = [leaf for leaf in leaves if leaf[2] >= _SPLITTABLE or leaf[3] >= _SPLITTABLE]
        if not splittable:
            break
        # Splitting the largest leaf first keeps room sizes even; max() keeps the first on ties.
        target = max(splittable, key=lambda leaf: leaf[2] * leaf[3])
        leaves.remove(target)
        leaves.extend(_split(target, plan.corridor_chance, rng))
    return leaves


def _split(rect: Rect, corridor_chance: int, rng: random.Random) -> tuple[Rect, Rect]:
    x, y, w, h = rect
    vertical = _split_vertically(w, h, rng)
    length, span = (w, h) if vertical else (h, w)
    if span >= MIN_CORRIDOR_LENGTH and rng.randrange(100) < corridor_chance:
        cut = CORRIDOR_SIDE if rng.randrange(2) == 0 else length - CORRIDOR_SIDE - 1
    else:
        # Cut in the middle third so neither side ends up a sliver.
        cut = rng.randint(max(MIN_SIDE, length // 3), min(length - MIN_SIDE - 1, length - 1 - length // 3))
    if vertical:
        return (x, y, cut, h), (x + cut + 1, y, w - cut - 1, h)
    return (x, y, w, cut), (x, y + cut + 1, w, h - cut - 1)


def _split_vertically(w: int, h: int, rng: random.Random) -> bool:
    if w < _SPLITTABLE or h < _SPLITTABLE:
        return w >= _SPLITTABLE
    if w * 4 > h * 5:
        return True
    if h * 4 > w * 5:
        return False
    return rng.randrange(2) == 0


def _name_rooms(rects: list[Rect], rng: random.Random) -> tuple[Room, ...]:
    rects = sorted(rects, key=lambda rect: (rect[1], rect[0]))
    total = sum(w * h for _, _, w, h in rects)
    kinds = [_shape_kind(w, h, 2 * w * h * len(rects) >= 3 * total) for _, _, w, h in rects]
    everyone = list(range(len(rects)))
    candidates = [index for index in everyone if kinds[index] != "corridor"] or everyone
    start = rng.choice(candidates)
    others = [index for index in candidates if index != start] or [
        index for index in everyone if index != start
    ]
    # The exit goes as far from the start as the grid allows; ties go to the lower index.
    exit_ = max(others, key=lambda index: (_distance(rects[start], rects[index]), -index))
    kinds[start], kinds[exit_] = "start", "exit"
    return tuple(Room(f"r{index}", kinds[index], *rect) for index, rect in enumerate(rects))


def _shape_kind(w: int, h: int, large: bool) -> str:
    if min(w, h) <= CORRIDOR_SIDE or max(w, h) >= 4 * min(w, h):
        return "corridor"
    return "hall" if large else "room"


def _distance(a: Rect, b: Rect) -> int:
    # Doubled centres keep the arithmetic in integers.
    return abs(2 * a[0] + a[2] - 2 * b[0] - b[2]) + abs(2 * a[1] + a[3] - 2 * b[1] - b[3])

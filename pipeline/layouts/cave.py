"""The cave construction: cellular-automaton caverns, the largest kept, cut into chambers.

1. Noise: each cell starts as rock with probability `wall` percent; the border is rock.
2. Four rounds of the 4-5 rule: a cell becomes rock when 5 or more of the 9 cells around it
   (itself included) are rock. The whole grid is one big integer with a 4-bit counter per cell, so
   a round is a handful of shifts and additions however large the grid.
3. Only the largest 4-connected open region is kept.
4. Chambers: seeds spread over the cave (one per bucket of a coarse lattice), grown together by
   breadth-first search. Where two chambers meet, the cells of the one with the higher number
   become rock, so a one-cell wall divides them; each chamber keeps its largest piece, and tiny
   ones are dropped. A few more chambers are seeded than the plan asks for (SPARE_PERCENT), since
   some are lost that way.
5. Every place where that wall is one cell thick between two chambers is offered as a door.
6. Of the chambers those doors join, plan.rooms are kept: a breadth-first walk over the doors from
   the chamber nearest the middle, so the ones left over, which turn to rock, are at the rim.
   Fewer only when fewer were joined: then layouts.build_layout tries a larger grid.

Shape parameters (Style.shape): wall (initial rock, percent), cells (floor per chamber).
"""

from __future__ import annotations

import math
from collections import deque

from ..grid import Grid
from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .draft import Draft, Layout

ROUNDS = 4
MIN_CHAMBER = 8
# Chambers seeded beyond plan.rooms: SPARE_MIN and SPARE_PERCENT of them (a 50-chamber cave
# lost 2-4 of them, a 1,000-chamber one 16-20: too small, split or cut off).
SPARE_MIN = 3
SPARE_PERCENT = 10
# About this share of the grid ends up open cave after the rounds and the largest-region cut.
OPEN_PERCENT = 40
_SIZE_PERCENT = {"small": 75, "medium": 100, "large": 140}


def build_cave(plan: Plan, style: Style, stream: Stream, space: int = 100) -> Layout | None:
    """Grow a cave of plan.rooms chambers joined by doors, on a grid of space percent of the usual
    area; fewer when fewer could be joined, None when no chamber came out."""
    seeded = plan.rooms + SPARE_MIN + plan.rooms * SPARE_PERCENT // 100
    floor = seeded * style.shape["cells"] * _SIZE_PERCENT[plan.size] // 100
    area = floor * space // OPEN_PERCENT
    width = max(24, math.isqrt(area * 8 // 5) + 2)
    height = max(16, area // (width - 2) + 2)
    rock = _automaton(width, height, style.shape["wall"], stream)
    cave = _largest_region(rock, width)
    labels = _chambers(cave, rock, width, seeded, stream)
    chambers = _cut(cave, labels, width)
    if not chambers:
        return None
    draft = Draft(Grid(width, height))
    for cells in chambers:
        draft.add_cells("cave", [(index % width, index // width) for index in cells])
    draft.offer_joints(stream, set())
    mid_x, mid_y = width // 2, height // 2
    distance = [min(abs(i % width - mid_x) + abs(i // width - mid_y) for i in cells) for cells in chambers]
    return draft.finish(_joined(draft, plan.rooms, distance))


def _joined(draft: Draft, wanted: int, distance: list[int]) -> set[int]:
    """Up to wanted regions the draft's links join, walked breadth-first from the region with the
    smallest distance among the largest joined set (region k's distance is distance[k - 1])."""
    neighbours: dict[int, list[int]] = {k: [] for k in range(1, len(draft.kinds) + 1)}
    for a, b, *_ in draft.links:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for near in neighbours.values():
        near.sort()
    parts: list[list[int]] = []
    seen: set[int] = set()
    for start in neighbours:
        if start not in seen:
            part = _walk(neighbours, start, len(neighbours))
            seen.update(part)
            parts.append(part)
    largest = max(parts, key=len)  # the first of the largest: regions are numbered in a fixed order
    start = min(largest, key=lambda k: (distance[k - 1], k))
    return set(_walk(neighbours, start, wanted))


def _walk(neighbours: dict[int, list[int]], start: int, limit: int) -> list[int]:
    """The first limit regions reached breadth-first from start (every one joined to start if fewer)."""
    order, queue, reached = [start], deque([start]), {start}
    while queue and len(order) < limit:
        for other in neighbours[queue.popleft()]:
            if other not in reached and len(order) < limit:
                reached.add(other)
                order.append(other)
                queue.append(other)
    return order


def _automaton(width: int, height: int, wall: int, stream: Stream) -> bytearray:
    """Rock (1) or open (0) per cell after the rounds of the 4-5 rule."""
    count = width * height
    threshold = wall * 256 // 100
    table = bytes(ord("1") if value < threshold else ord("0") for value in range(256))
    cells = bytearray(stream.noise(count).translate(table))
    border = bytearray(b"0" * count)
    for x in range(width):
        border[x] = border[count - width + x] = ord("1")
    for y in range(height):
        border[y * width] = border[y * width + width - 1] = ord("1")
    # Cell i is the hex digit i from the left: the nibble at 4 * (count - 1 - i) bits.
    ones, border_bits = int("1" * count, 16), int(border, 16)
    board = int(cells, 16) | border_bits
    mask = (1 << (4 * count)) - 1
    shifts = [dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for _ in range(ROUNDS):
        total = 0
        for shift in shifts:
            # Neighbour i + shift lands on cell i's nibble.
            total += (board << (4 * shift)) & mask if shift > 0 else board >> (-4 * shift)
        # A count of 5..9 plus 3 sets the counter's 8 bit; 9 + 3 still fits in four bits.
        board = ((total + 3 * ones) >> 3) & ones | border_bits
    return bytearray(format(board, "x").zfill(count).encode("ascii").translate(bytes.maketrans(b"01", b"\x00\x01")))


def _largest_region(rock: bytearray, width: int) -> list[int]:
    """The cells of the largest 4-connected open region; every other open cell becomes rock."""
    # Runs of open cells, row by row, each joined (union-find) to the runs it touches in the row
    # above: a few thousand runs instead of a search through tens of thousands of cells.
    runs: list[tuple[int, int]] = []
    parent: list[int] = []

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    above: list[int] = []
    for row_start in range(0, len(rock), width):
        row_end, here, start = row_start + width, [], rock.find(0, row_start, row_start + width)
        while start != -1:
            end = rock.find(1, start, row_end)
            end = row_end if end == -1 else end
            number = len(runs)
            runs.append((start, end))
            parent.append(number)
            here.append(number)
            start = rock.find(0, end, row_end) if end < row_end else -1
        for number in here:
            start, end = runs[number]
            for other in above:
                other_start, other_end = runs[other]
                if other_start + width < end and start < other_end + width:
                    a, b = root(number), root(other)
                    if a != b:
                        parent[a] = b
        above = here
    sizes: dict[int, int] = {}
    for number, (start, end) in enumerate(runs):
        key = root(number)
        sizes[key] = sizes.get(key, 0) + end - start
    best = max(sizes, key=lambda key: (sizes[key], -key)) if sizes else -1
    rock[:] = b"\x01" * len(rock)
    cells: list[int] = []
    for number, (start, end) in enumerate(runs):
        if root(number) == best:
            rock[start:end] = bytes(end - start)
            cells.extend(range(start, end))
    return cells


def _chambers(cave: list[int], rock: bytearray, width: int, wanted: int, stream: Stream) -> list[int]:
    """A chamber number (0, 1, ...) per cell, -1 for rock: seeds grown together breadth-first."""
    side = max(3, math.isqrt(max(1, len(cave) // max(1, wanted))))
    buckets: dict[tuple[int, int], list[int]] = {}
    for index in cave:
        buckets.setdefault(((index % width) // side, (index // width) // side), []).append(index)
    seeds = [stream.choice(cells) for cells in buckets.values() if len(cells) * 4 >= side * side]
    stream.shuffle(seeds)
    labels = [-1] * len(rock)
    queue: deque[int] = deque()
    for number, seed in enumerate(sorted(seeds[:wanted])):
        labels[seed] = number
        queue.append(seed)
    while queue:
        index = queue.popleft()
        number = labels[index]
        for other in (index + 1, index - 1, index + width, index - width):
            if labels[other] == -1 and not rock[other]:
                labels[other] = number
                queue.append(other)
    return labels


def _cut(cave: list[int], labels: list[int], width: int) -> list[list[int]]:
    """Wall off chambers from each other; each chamber's largest piece, if not tiny."""
    walled = []
    for index in cave:
        number = labels[index]
        if number > 0:
            for other in (labels[index + 1], labels[index - 1], labels[index + width], labels[index - width]):
                if 0 <= other < number:
                    walled.append(index)
                    break
    for index in walled:
        labels[index] = -1
    _open_doorways(walled, labels, width)
    claimed = bytearray(len(labels))
    best: dict[int, list[int]] = {}
    for start in cave:
        number = labels[start]
        if number < 0 or claimed[start]:
            continue
        claimed[start] = 1
        piece, queue = [start], deque([start])
        while queue:
            index = queue.popleft()
            for other in (index + 1, index - 1, index + width, index - width):
                if labels[other] == number and not claimed[other]:
                    claimed[other] = 1
                    piece.append(other)
                    queue.append(other)
        if len(piece) > len(best.get(number, ())):
            best[number] = sorted(piece)
    return [best[number] for number in sorted(best) if len(best[number]) >= MIN_CHAMBER]


def _open_doorways(walled: list[int], labels: list[int], width: int) -> None:
    """Give every two chambers the wall divides at least one cell where a door fits.

    A door needs its two chambers on opposite sides and no floor beside it along the wall. A
    diagonal boundary has none: there, the floor beside the best cell is walled up too, when that
    cannot split its chamber (a simple point: its same-chamber neighbours form one 4-connected arc).
    """
    fitting, fixable = set(), {}
    for index in walled:
        for step, across in ((1, width), (width, 1)):
            a, b = labels[index - step], labels[index + step]
            if a < 0 or b < 0 or a == b:
                continue
            pair = (a, b) if a < b else (b, a)
            beside = [cell for cell in (index - across, index + across) if labels[cell] >= 0]
            if not beside:
                fitting.add(pair)
            elif pair not in fixable and all(_simple(cell, labels, width) for cell in beside):
                fixable[pair] = beside
    for pair, beside in fixable.items():
        if pair not in fitting:
            for cell in beside:
                labels[cell] = -1


def _simple(index: int, labels: list[int], width: int) -> bool:
    """Whether walling this cell up leaves its chamber's 4-connected neighbourhood in one piece."""
    number = labels[index]
    ring = [
        index - width,
        index - width + 1,
        index + 1,
        index + width + 1,
        index + width,
        index + width - 1,
        index - 1,
        index - width - 1,
    ]
    inside = [labels[cell] == number for cell in ring]
    # Yokoi's connectivity number for 4-connectivity: one arc of neighbours means one piece.
    arcs = sum(inside[k] and not (inside[k + 1] and inside[(k + 2) % 8]) for k in (0, 2, 4, 6))
    return arcs == 1

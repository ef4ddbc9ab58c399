"""What a construction makes: regions of floor and the links that could join them, before ids.

Every construction paints into a Grid and records regions in a Draft; finish() names the regions
r1, r2, ... in reading order (top to bottom, then left to right), so ids say where a room is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

from ..grid import Grid
from ..model import Cell, Link, Room
from ..rng import Stream

# A region as drawn: its rectangle (x, y, w, h), or None and its cells in reading order.
Shape = tuple[tuple[int, int, int, int] | None, tuple[Cell, ...] | None]

# A room this many times the average size (or more) is a hall.
HALL_FACTOR_PERCENT = 175
READING_ORDER = itemgetter(1, 0)
_X, _Y = itemgetter(0), itemgetter(1)


@dataclass(frozen=True)
class Layout:
    """Grid size, rooms (corridors included) and candidate links: layout_rooms' output."""

    width: int
    height: int
    rooms: tuple[Room, ...]
    links: tuple[Link, ...]


@dataclass
class Draft:
    """Regions as they are made: region k (1-based) is the grid owner k."""

    grid: Grid
    kinds: list[str] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    # (region a, region b, doors, corridor cells or None, preferred)
    links: list[tuple[int, int, tuple[tuple[int, int, str], ...], tuple[Cell, ...] | None, bool]] = field(
        default_factory=list
    )

    def add_rect(self, kind: str, x: int, y: int, w: int, h: int) -> int:
        """Paint a rectangular region; its number."""
        self.kinds.append(kind)
        self.shapes.append(((x, y, w, h), None))
        number = len(self.kinds)
        owner, width = self.grid.owner, self.grid.width
        for row in range(y, y + h):
            start = row * width + x
            owner[start : start + w] = [number] * w
        return number

    def add_cells(self, kind: str, cells: list[Cell]) -> int:
        """Paint a region of cells; its number."""
        self.kinds.append(kind)
        self.shapes.append((None, tuple(sorted(cells, key=READING_ORDER))))
        number = len(self.kinds)
        self.grid.paint(cells, number)
        return number

    def link(
        self,
        a: int,
        b: int,
        doors: tuple[tuple[int, int, str], ...],
        corridor: tuple[Cell, ...] | None = None,
        preferred: bool = False,
    ) -> None:
        """Offer a way to join regions a and b."""
        self.links.append((a, b, doors, corridor, preferred))

    def offer_joints(self, stream: Stream, linked: set[tuple[int, int]]) -> None:
        """Offer one door cell for every pair of regions a single wall divides, unless already linked."""
        width = self.grid.width
        for pair, joints in self.grid.joints().items():
            if pair in linked:
                continue
            # Away from the ends of a shared wall where there is a choice: doors sit better mid-wall.
            middle = joints[len(joints) // 4 : len(joints) - len(joints) // 4] or joints
            index, orientation = stream.choice(middle)
            self.link(pair[0], pair[1], ((index % width, index // width, orientation),))

    def finish(self, kept: set[int] | None = None) -> Layout:
        """The layout, cropped to what was built (plus the border), regions named in reading order."""
        numbers = [k for k in range(1, len(self.kinds) + 1) if kept is None or k in kept]
        numbers.sort(key=lambda k: _first_cell(self.shapes[k - 1]))
        ids = {k: f"r{position}" for position, k in enumerate(numbers, start=1)}
        links = [link for link in self.links if link[0] in ids and link[1] in ids]
        xs: set[int] = set()
        ys: set[int] = set()
        for k in numbers:
            rect, cells = self.shapes[k - 1]
            if rect is not None:
                xs.update((rect[0], rect[0] + rect[2] - 1))
                ys.update((rect[1], rect[1] + rect[3] - 1))
            else:
                xs.update(map(_X, cells or ()))
                ys.update(map(_Y, cells or ()))
        for _, _, _, corridor, _ in links:
            xs.update(map(_X, corridor or ()))
            ys.update(map(_Y, corridor or ()))
        dx, dy = min(xs) - 1, min(ys) - 1
        areas = [_area(self.shapes[k - 1]) for k in numbers if self.kinds[k - 1] != "corridor"]
        average = sum(areas) // max(1, len(areas))
        rooms = []
        for k in numbers:
            rect, cells = self.shapes[k - 1]
            kind = self.kinds[k - 1]
            if kind == "room" and _area(self.shapes[k - 1]) * 100 >= average * HALL_FACTOR_PERCENT:
                kind = "hall"
            if rect is not None:
                rooms.append(Room(ids[k], kind, rect=(rect[0] - dx, rect[1] - dy, rect[2], rect[3])))
            else:
                rooms.append(Room(ids[k], kind, cells=tuple((x - dx, y - dy) for x, y in cells or ())))
        moved = tuple(
            Link(
                ids[a],
                ids[b],
                tuple((x - dx, y - dy, orientation) for x, y, orientation in doors),
                None if corridor is None else tuple((x - dx, y - dy) for x, y in corridor),
                preferred,
            )
            for a, b, doors, corridor, preferred in links
        )
        return Layout(max(xs) - dx + 2, max(ys) - dy + 2, tuple(rooms), moved)


def _first_cell(shape: Shape) -> tuple[int, int]:
    rect, cells = shape
    if rect is not None:
        return rect[1], rect[0]
    first = (cells or ())[0]  # a shape without a rect has cells
    return first[1], first[0]


def _area(shape: Shape) -> int:
    rect, cells = shape
    return rect[2] * rect[3] if rect is not None else len(cells or ())

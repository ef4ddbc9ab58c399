"""The grid as one flat list of owners: the room each cell is floor of, a door, or solid rock.

Room k (1-based, in list order) owns the cells marked k. Neighbours are found by index arithmetic
(i +- 1, i +- width), which is what keeps a 1,000-room level fast in pure Python. Cells on the
border are never floor or door, so the neighbours of any floor cell are inside the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .contract import PipelineError
from .model import Cell, Door, Room

SOLID, DOOR = 0, -1


class Grid:
    """Owners of the cells of a width x height grid."""

    __slots__ = ("height", "owner", "width")

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.owner = [SOLID] * (width * height)

    @classmethod
    def of_rooms(cls, width: int, height: int, rooms: Sequence[Room], doors: Iterable[Door] = ()) -> Grid:
        """Paint rooms (as 1, 2, ...) and doors; PipelineError where two claim one cell."""
        grid, overlaps = cls.painted(width, height, rooms)
        if overlaps:
            a, b, (x, y) = overlaps[0]
            raise PipelineError(f"rooms {rooms[a - 1].id!r} and {rooms[b - 1].id!r} overlap at [{x}, {y}]")
        owner = grid.owner
        for door in doors:
            index = door.y * width + door.x
            if owner[index] != SOLID:
                raise PipelineError(f"door {door.id!r} stands on a floor or door cell at [{door.x}, {door.y}]")
            owner[index] = DOOR
        return grid

    @classmethod
    def painted(cls, width: int, height: int, rooms: Sequence[Room]) -> tuple[Grid, list[tuple[int, int, Cell]]]:
        """Rooms painted as 1, 2, ... (the first claim of a cell wins), and every cell claimed twice."""
        grid = cls(width, height)
        owner = grid.owner
        overlaps: list[tuple[int, int, Cell]] = []
        for number, room in enumerate(rooms, start=1):
            if room.rect is not None:
                x, y, w, h = room.rect
                for row in range(y, y + h):
                    start = row * width + x
                    if not any(owner[start : start + w]):
                        owner[start : start + w] = [number] * w
                        continue
                    for column in range(x, x + w):
                        _claim(owner, row * width + column, number, overlaps, width)
            else:
                for x, y in room.cells or ():
                    _claim(owner, y * width + x, number, overlaps, width)
        return grid, overlaps

    def touching(self, rooms: Sequence[Room]) -> tuple[int, int, Cell] | None:
        """Two rooms (numbers) with 4-adjacent floor cells, and the cell where, or None."""
        owner, width = self.owner, self.width
        for number, room in enumerate(rooms, start=1):
            if room.rect is not None:
                # Only the ring just outside a rectangle can touch another room.
                x, y, w, h = room.rect
                ring = [(column, row) for column in range(x, x + w) for row in (y - 1, y + h)]
                ring += [(column, row) for row in range(y, y + h) for column in (x - 1, x + w)]
            else:
                ring = [(cx + dx, cy + dy) for cx, cy in room.cells or () for dx, dy in ((1, 0), (0, 1))]
            for cx, cy in ring:
                other = owner[cy * width + cx]
                if other > 0 and other != number:
                    return number, other, (cx, cy)
        return None

    def paint(self, cells: Iterable[Cell], value: int) -> None:
        """Mark cells as owned by value (a room number, DOOR or SOLID)."""
        owner, width = self.owner, self.width
        for x, y in cells:
            owner[y * width + x] = value

    def fits(self, cells: Iterable[Cell]) -> bool:
        """Whether every cell is inside the border, solid, and has no floor or door 4-adjacent."""
        owner, width, height = self.owner, self.width, self.height
        for x, y in cells:
            if not (1 <= x <= width - 2 and 1 <= y <= height - 2):
                return False
            index = y * width + x
            if owner[index] or owner[index - 1] or owner[index + 1] or owner[index - width] or owner[index + width]:
                return False
        return True

    def rect_fits(self, x: int, y: int, w: int, h: int) -> bool:
        """Whether the rectangle is inside the border, solid, and has no floor or door 4-adjacent."""
        owner, width = self.owner, self.width
        if x < 1 or y < 1 or x + w > width - 1 or y + h > self.height - 1:
            return False
        # The rectangle widened by a cell each side, row by row; the rows above and below, unwidened.
        return not (
            any(owner[(y - 1) * width + x : (y - 1) * width + x + w])
            or any(owner[(y + h) * width + x : (y + h) * width + x + w])
            or any(any(owner[row * width + x - 1 : row * width + x + w + 1]) for row in range(y, y + h))
        )

    def joints(self) -> dict[tuple[int, int], list[tuple[int, str]]]:
        """Solid cells where a door could join two rooms, by pair of room numbers (lower first).

        A joint has floor of one room on one side, floor of another opposite, and solid rock on
        its two other sides (so no two doors ever stand side by side). Candidates are found for
        the whole grid at once, one byte per cell in two big integers (floor, solid), shifted
        against each other; only those are then looked at one by one.
        """
        owner, width, count = self.owner, self.width, len(self.owner)
        floor = int.from_bytes(bytes(map((0).__lt__, owner)), "big")
        solid = int.from_bytes(bytes(map((0).__eq__, owner)), "big")
        mask = (1 << (8 * count)) - 1

        def shifted(bits: int, cells: int) -> int:
            # The value of cell i + cells, moved onto cell i.
            return (bits << (8 * cells)) & mask if cells > 0 else bits >> (-8 * cells)

        vertical = solid & shifted(floor, -1) & shifted(floor, 1) & shifted(solid, -width) & shifted(solid, width)
        horizontal = solid & shifted(floor, -width) & shifted(floor, width) & shifted(solid, -1) & shifted(solid, 1)
        candidates = []
        for bits, step, orientation, order in ((vertical, 1, "vertical", 0), (horizontal, width, "horizontal", 1)):
            marks = bits.to_bytes(count, "big")
            index = marks.find(1)
            while index != -1:
                if owner[index - step] != owner[index + step]:
                    candidates.append((index - step, order, index, orientation))
                index = marks.find(1, index + 1)
        found: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for before, _, index, orientation in sorted(candidates):
            a, b = owner[before], owner[2 * index - before]
            found.setdefault((a, b) if a < b else (b, a), []).append((index, orientation))
        return found


def _claim(owner: list[int], index: int, number: int, overlaps: list[Any], width: int) -> None:
    if owner[index]:
        overlaps.append((owner[index], number, (index % width, index // width)))
    else:
        owner[index] = number

"""The level as one byte per grid cell: rock, wall, room floor, corridor floor, door, locked doors.

Both pictures of a level start here: the ASCII minimap (minimap.py) and minimap.png (picture.py).
Walls are the rock cells next to (or diagonal to) floor or a door, found for the whole grid at
once: the open cells as bits of one integer, dilated by a few shifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROCK, WALL, FLOOR, CORRIDOR, DOOR = 0, 1, 2, 3, 4
LOCKED = {"red": 5, "blue": 6, "yellow": 7}

_OPEN = bytes(0x30 if code == ROCK else 0x31 for code in range(256))  # "0" rock, "1" open
_WALL_BITS = bytes(1 if char == 0x31 else 0 for char in range(256))


def rasterize(scene: Mapping[str, Any]) -> bytearray:
    """width * height cell classes, row by row, of a valid scene/1 graph."""
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    cells = bytearray(width * height)
    for room in scene["rooms"]:
        code = CORRIDOR if room["kind"] == "corridor" else FLOOR
        if "rect" in room:
            x, y, w, h = room["rect"]
            for row in range(y, y + h):
                cells[row * width + x : row * width + x + w] = bytes((code,)) * w
        else:
            for x, y in room["cells"]:
                cells[y * width + x] = code
    for door in scene["doors"]:
        x, y = door["at"]
        cells[y * width + x] = LOCKED.get(door["lock"], DOOR)
    count = len(cells)
    opened = int(cells.translate(_OPEN), 2)
    near = opened | opened << 1 | opened >> 1
    near |= near << width | near >> width
    walls = format(near & ~opened & ((1 << count) - 1), "b").zfill(count).encode("ascii").translate(_WALL_BITS)
    # Rock is 0 and a wall 1: adding the wall bits to the rock cells that are walls marks them.
    cells[:] = (int.from_bytes(cells, "big") | int.from_bytes(walls, "big")).to_bytes(count, "big")
    return cells

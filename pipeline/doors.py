"""connect_doors: join every room to the level with doors, plus a few extra doors that make loops.

Doors come from a random spanning tree over rooms that share a wall (randomised Kruskal), so the
level is always fully connected, then from the unused shared walls, up to the plan's loop count.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

from .contract import PipelineError, StepOutput, plural
from .level import Level
from .model import Door


def connect_doors(previous: Mapping) -> StepOutput:
    """Add doors so that every room can be reached from every other."""
    level = Level.from_data(previous)
    rooms = list(level.room_index().values())
    rng = level.request.rng("connect_doors")
    links = [
        (a, b, cells)
        for a, b in combinations(range(len(rooms)), 2)
        if (cells := rooms[a].door_cells(rooms[b]))
    ]
    rng.shuffle(links)
    parent = list(range(len(rooms)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    tree, spare = [], []
    for link in links:
        a, b = root(link[0]), root(link[1])
        if a == b:
            spare.append(link)
        else:
            parent[a] = b
            tree.append(link)
    if len(tree) != len(rooms) - 1:
        raise PipelineError("some rooms share no wall with the rest, so doors cannot connect them all")
    chosen = sorted(tree + spare[: level.plan.loops], key=lambda link: (link[0], link[1]))
    doors = []
    for index, (a, b, cells) in enumerate(chosen):
        # Keep doors off the very ends of a wall, where they would sit against a corner.
        x, y = rng.choice(cells[1:-1] if len(cells) >= 3 else cells)
        doors.append(Door(f"d{index}", rooms[a].id, rooms[b].id, x, y))
    level = level.with_doors(tuple(doors))
    loops = len(doors) - len(tree)
    summary = (
        f"Connected {plural(len(rooms), 'room')} with {plural(len(doors), 'door')} ({plural(loops, 'loop')})"
    )
    return StepOutput(level.to_data(), summary)

"""connect_doors: choose which links become doors, then the progression, then loops.

1. A spanning tree (randomised Kruskal): every preferred link first (the doors a construction
   needs), then the other links in random order wherever they join two separate parts. Only the
   largest part survives: every construction offers links that join all the rooms it builds
   (pipeline/layouts/), so this only guards against one that did not.
2. Labyrinths (Style.shape prune) drop and shorten dead ends (prune.py).
3. On that tree: start, exit, locks and key rooms (progression.py).
4. Loops: unused links inside one zone, the longest way round first (tree hops, Brogue-style),
   up to plan.loops — never across a lock, which would let a player walk around it.
Rooms and doors are then named in reading order: r1, r2, ... and d1, d2, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .contract import StepOutput, plural
from .grid import DOOR, SOLID, Grid
from .level import Level, Lock, Progression
from .model import Door, Link, Room
from .progression import Quest, plan_quest
from .prune import prune_dead_ends
from .styles import style_named

LOOP_MIN_HOPS = 4  # a loop joins rooms at least this many doors apart on the tree
_HOP_LIMIT = 24


def connect_doors(previous: Mapping[str, Any]) -> StepOutput:
    """Turn links into doors: a spanning tree, the progression on it, then loops inside its zones."""
    level = connect(Level.from_data(previous))
    locked = len(level.progression.locks) if level.progression else 0
    loops = len(level.doors or ()) - len(level.rooms or ()) + 1
    summary = (
        f"Connected {plural(len(level.rooms or ()), 'room')} with {plural(len(level.doors or ()), 'door')} "
        f"({plural(loops, 'loop')}, {plural(locked, 'locked door')})"
    )
    return StepOutput(level.to_data(), summary)


def connect(level: Level) -> Level:
    """connect_doors on a Level."""
    level.require("rooms", "links")
    style = style_named(level.request.style)
    stream = level.request.stream("connect_doors", level.attempt)
    rooms, links = list(level.rooms or ()), list(level.links or ())
    grid = Grid.of_rooms(level.width, level.height, rooms)  # PipelineError if two rooms claim a cell
    preferred = [link for link in links if link.preferred]
    others = [link for link in links if not link.preferred]
    stream.shuffle(others)
    tree, spare, kept = _spanning_tree(rooms, preferred, others)
    # The rooms of the parts dropped stay painted: a loop beside one is refused, never wrong.
    builder = _Builder(grid, rooms, kept)
    for link in tree:
        builder.take(link, check=False)
    if style.shape.get("prune"):
        builder.rooms, builder.doors = prune_dead_ends(
            builder.rooms, builder.doors, style.shape["drop"], style.shape["prune"], stream
        )
        builder.repaint()
    quest = plan_quest(builder.rooms, builder.doors, level.plan.locks, stream)
    hops = _TreeHops(builder.rooms, builder.doors, quest.start)
    candidates = [
        (hops.between(link.a, link.b), order, link)
        for order, link in enumerate(spare)
        if link.a in quest.zones and quest.zones.get(link.a) == quest.zones.get(link.b)
    ]
    candidates.sort(key=lambda item: (-item[0], item[1]))
    loops = 0
    for distance, _, link in candidates:
        if loops >= level.plan.loops or distance < LOOP_MIN_HOPS:
            break
        loops += builder.take(link, check=True)
    return _named(level, builder, quest)


def _spanning_tree(
    rooms: list[Room], preferred: list[Link], others: list[Link]
) -> tuple[list[Link], list[Link], set[str]]:
    """(tree links, spare links, ids of the rooms in the largest connected part)."""
    index = {room.id: number for number, room in enumerate(rooms)}
    parent = list(range(len(rooms)))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    tree, spare = [], []
    for link in preferred + others:
        a, b = root(index[link.a]), root(index[link.b])
        if a != b:
            parent[a] = b
            tree.append(link)
        elif link.preferred:
            tree.append(link)
        else:
            spare.append(link)
    sizes: dict[int, list[int]] = {}
    for number, room in enumerate(rooms):
        count = sizes.setdefault(root(number), [0, 0])
        count[0] += room.kind != "corridor"
        count[1] += 1
    best = max(sizes, key=lambda r: (sizes[r][0], sizes[r][1], -r))
    kept = {room.id for number, room in enumerate(rooms) if root(number) == best}
    return (
        [link for link in tree if link.a in kept],
        [link for link in spare if link.a in kept],
        kept,
    )


class _Builder:
    """Rooms and doors as links are taken, with a grid to check that a loop still fits."""

    def __init__(self, grid: Grid, rooms: list[Room], kept: set[str]) -> None:
        self.grid = grid
        self.number = {room.id: number for number, room in enumerate(rooms, start=1)}
        self.rooms = [room for room in rooms if room.id in kept]
        self.doors: list[Door] = []
        self.made = 0  # temporary ids (t1, t2, ...) of the doors and corridors made here

    def repaint(self) -> None:
        self.grid = Grid.of_rooms(self.grid.width, self.grid.height, self.rooms, self.doors)
        self.number = {room.id: number for number, room in enumerate(self.rooms, start=1)}

    def take(self, link: Link, *, check: bool) -> bool:
        """Make the link's doors (and corridor); with check, only if it still fits the level."""
        owner, width = self.grid.owner, self.grid.width
        if link.corridor is None:
            ((x, y, orientation),) = link.doors
            if check and not self._joint_fits(x, y, orientation, link.a, link.b):
                return False
            self._door(link.a, link.b, x, y, orientation)
            return True
        if check and not (
            self.grid.fits(link.corridor) and all(owner[y * width + x] == SOLID for x, y, _ in link.doors)
        ):
            return False
        self.made += 1
        corridor = Room(f"t{self.made}", "corridor", cells=link.corridor)
        self.rooms.append(corridor)
        self.number[corridor.id] = number = len(self.number) + 1
        self.grid.paint(link.corridor, number)
        (x0, y0, o0), (x1, y1, o1) = link.doors
        self._door(link.a, corridor.id, x0, y0, o0)
        self._door(corridor.id, link.b, x1, y1, o1)
        return True

    def _joint_fits(self, x: int, y: int, orientation: str, a: str, b: str) -> bool:
        owner, width = self.grid.owner, self.grid.width
        index = y * width + x
        step, across = (1, width) if orientation == "vertical" else (width, 1)
        sides = {owner[index - step], owner[index + step]}
        return (
            owner[index] == SOLID
            and sides == {self.number[a], self.number[b]}
            and owner[index - across] == SOLID
            and owner[index + across] == SOLID
        )

    def _door(self, a: str, b: str, x: int, y: int, orientation: str) -> None:
        # Room a is the one on the west (or north) side: the first of Door.sides().
        step = 1 if orientation == "vertical" else self.grid.width
        if self.grid.owner[y * self.grid.width + x - step] != self.number[a]:
            a, b = b, a
        self.made += 1
        self.doors.append(Door(f"t{self.made}", a, b, x, y, orientation))
        self.grid.owner[y * self.grid.width + x] = DOOR


class _TreeHops:
    """Doors between two rooms along the tree, counted up to a limit."""

    def __init__(self, rooms: list[Room], doors: list[Door], start: str) -> None:
        links: dict[str, list[str]] = {room.id: [] for room in rooms}
        for door in doors:
            links[door.a].append(door.b)
            links[door.b].append(door.a)
        self.parent, self.depth = {start: start}, {start: 0}
        queue = [start]
        for room in queue:
            for other in links[room]:
                if other not in self.depth:
                    self.parent[other], self.depth[other] = room, self.depth[room] + 1
                    queue.append(other)

    def between(self, a: str, b: str) -> int:
        """Tree hops from a to b, or more than the limit."""
        if a not in self.depth or b not in self.depth:
            return 0
        hops = 0
        while a != b and hops <= _HOP_LIMIT:
            if self.depth[a] < self.depth[b]:
                a, b = b, a
            a = self.parent[a]
            hops += 1
        return hops


def _named(level: Level, builder: _Builder, quest: Quest) -> Level:
    """The level with rooms and doors named in reading order, start and exit rooms marked."""

    def first_cell(room: Room) -> tuple[int, int]:
        cell = next(iter(room.floor()))
        return cell[1], cell[0]

    rooms = sorted(builder.rooms, key=first_cell)
    names = {room.id: f"r{number}" for number, room in enumerate(rooms, start=1)}
    kinds = {quest.start: "start", quest.exit: "exit"}
    rooms = [
        Room(names[room.id], kinds.get(room.id, room.kind), room.rect, room.cells, room.tags, room.light)
        for room in rooms
    ]
    doors = sorted(builder.doors, key=lambda door: (door.y, door.x))
    door_names = {door.id: f"d{number}" for number, door in enumerate(doors, start=1)}
    locks = {lock.door: lock.color for lock in quest.locks}
    doors = [
        Door(door_names[door.id], names[door.a], names[door.b], door.x, door.y, door.orientation, locks.get(door.id))
        for door in doors
    ]
    progression = Progression(
        names[quest.start],
        names[quest.exit],
        tuple(Lock(lock.color, door_names[lock.door], names[lock.key_room]) for lock in quest.locks),
    )
    return replace(level, rooms=tuple(rooms), links=None, doors=tuple(doors), progression=progression, entities=None)

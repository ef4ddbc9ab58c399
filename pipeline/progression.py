"""Progression: where the player starts, where the exit is, and which doors are locked by which keys.

On the spanning tree of doors (before loops, so every door is a bridge):
- the start is the room farthest (in doors) from a random room, the exit the room farthest
  (walking) from the start — a double sweep that finds about the longest walk in the level;
- up to plan.locks doors on the route from start to exit are locked, spread along it (never the
  first door out of the start room): removing them cuts the tree into zones, zone 0 around the
  start, zone i behind the i-th lock;
- the key to lock i lies in zone i - 1, in the room there farthest from the start, preferring rooms
  off the route (a detour to explore), so each key is reachable without its own lock or any later one.
Loops are added afterwards inside a zone only (connect_doors), so a locked door stays a bridge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from .level import Lock
from .model import LOCK_COLORS, Door, Room
from .rng import Stream
from .walk import Reach, Walker


@dataclass(frozen=True)
class Quest:
    """The progression chosen on the tree, and the zones it cuts the tree into."""

    start: str
    exit: str
    locks: tuple[Lock, ...]
    zones: dict[str, int]


def plan_quest(rooms: Sequence[Room], doors: Sequence[Door], wanted_locks: int, stream: Stream) -> Quest:
    """Choose start, exit, locks and key rooms on a tree of rooms and doors."""
    walker = Walker(rooms, doors)
    places = [room for room in rooms if room.kind != "corridor"] or list(rooms)
    first = stream.choice(places)
    # Doors, not steps, for the first sweep: it only has to find a room out at the edge.
    hops = _hops(walker, first.id)
    start = max(places, key=lambda room: hops.get(room.id, -1))
    from_start = walker.reach(start.id, start.center())
    exit_ = _farthest(from_start, places, exclude=start.id) or _farthest(from_start, rooms, exclude=start.id) or start
    route = from_start.route(exit_.id)
    between = {frozenset((door.a, door.b)): door for door in doors}
    route_doors = [between[frozenset(pair)] for pair in pairwise(route)]
    count = max(0, min(wanted_locks, len(route_doors) - 1))
    positions = _spread(len(route_doors), count, stream)
    colors = list(LOCK_COLORS)
    stream.shuffle(colors)
    locked = [route_doors[position] for position in positions]
    # The room past each lock: route[position + 1].
    zones = _zones(walker, start.id, locked, [route[position + 1] for position in positions])
    on_route = set(route)
    locks = []
    for number, door in enumerate(locked):
        zone = [room for room in rooms if zones.get(room.id) == number]
        key_room = (
            _farthest(from_start, [r for r in zone if r.kind != "corridor" and r.id not in on_route], exclude=start.id)
            or _farthest(from_start, [r for r in zone if r.kind != "corridor"], exclude=start.id)
            or _farthest(from_start, zone, exclude=None)
        )
        locks.append(Lock(colors[number], door.id, key_room.id if key_room else start.id))
    return Quest(start.id, exit_.id, tuple(locks), zones)


def _farthest(reach: Reach, rooms: Sequence[Room], exclude: str | None) -> Room | None:
    """The room farthest to walk to (the first of equals); None when none is reachable."""
    best, best_steps = None, -1
    for room in rooms:
        if room.id == exclude:
            continue
        steps = reach.to(room.id)
        if steps is not None and steps > best_steps:
            best, best_steps = room, steps
    return best


def _hops(walker: Walker, start: str) -> dict[str, int]:
    """Doors between start and every room."""
    hops = {start: 0}
    queue = deque([start])
    while queue:
        room = queue.popleft()
        for _, _, other in walker.exits[room]:
            if other not in hops:
                hops[other] = hops[room] + 1
                queue.append(other)
    return hops


def _spread(doors: int, count: int, stream: Stream) -> list[int]:
    """count increasing positions in 1..doors-1, about evenly spread, a little jittered."""
    positions: list[int] = []
    for number in range(1, count + 1):
        low = positions[-1] + 1 if positions else 1
        high = doors - 1 - (count - number)  # leave room for the locks still to come
        ideal = number * doors // (count + 1)
        positions.append(max(low, min(high, ideal + stream.between(-1, 1))))
    return positions


def _zones(walker: Walker, start: str, locked: list[Door], beyond: list[str]) -> dict[str, int]:
    """Zone of each room: how many locks (in route order) lie between it and the start."""
    closed = {door.id for door in locked}
    zones: dict[str, int] = {}
    seeds = [start, *beyond]
    for number, seed in enumerate(seeds):
        if seed in zones:
            continue
        zones[seed] = number
        queue = deque([seed])
        while queue:
            room = queue.popleft()
            for door, _, other in walker.exits[room]:
                if door.id not in closed and other not in zones:
                    zones[other] = number
                    queue.append(other)
    return zones

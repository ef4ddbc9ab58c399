"""The scene graph, scene/1: the level in the shape docs/scene-graph.md documents.

assemble() turns a populated Level into scene/1 and measures it: each room's depth (doors from the
start) and zone (keys needed to reach it), the critical path a player walks (to each key in turn,
through its lock, on to the exit) and the metrics. validate.py checks the result.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from .grid import Grid
from .level import Level, Progression
from .model import Door, Entity, Room
from .styles import Style, style_named
from .walk import Walker, reach_with_keys

SCHEMA = "scene/1"


def assemble(level: Level) -> dict[str, Any]:
    """The scene/1 graph of a populated level."""
    level.require("rooms", "doors", "progression", "entities")
    style = style_named(level.request.style)
    rooms, doors, entities = level.rooms or (), level.doors or (), level.entities or ()
    progression = cast("Progression", level.progression)  # level.require above: it is there
    keys = {entity.type.removesuffix("_key"): entity for entity in entities if entity.kind == "key"}
    adjacency = adjacency_of(rooms, doors)
    locked = {door.id: door.lock for door in doors if door.lock}
    zones, opened = reach_with_keys(adjacency, progression.start, locked, {c: k.room for c, k in keys.items()})
    depths = _depths(adjacency, progression.start)
    path, steps = critical_path(rooms, doors, entities, opened, keys)
    request = level.request
    room_data = []
    for room in rooms:
        data = room.to_data()
        data["depth"] = depths.get(room.id, -1)
        data["zone"] = zones.get(room.id, -1)
        room_data.append(data)
    return {
        "schema": SCHEMA,
        "prompt": request.prompt,
        "seed": request.seed,
        "style": request.style,
        "grid": {"width": level.width, "height": level.height},
        "theme": _theme(style, level),
        "params": {
            **level.plan.to_data(),
            "construction": style.construction,
            "variantOf": style.variant_of,
            "requestedRooms": request.rooms,
            "features": level.features,
            "attempt": level.attempt,
        },
        "rooms": room_data,
        "doors": [door.to_data() for door in doors],
        "entities": [entity.to_data() for entity in entities],
        "locks": [
            {"color": lock.color, "door": lock.door, "key": keys[lock.color].id if lock.color in keys else None}
            for lock in progression.locks
        ],
        "graph": {"start": progression.start, "exit": progression.exit, "criticalPath": path},
        "metrics": measure((level.width, level.height), rooms, doors, entities, len(zones), steps),
    }


def _theme(style: Style, level: Level) -> dict[str, Any]:
    """The style's look, as the prompt's words shade it: darker or brighter than the style's own."""
    light = level.plan.light
    mood = "dark" if light < style.light else "bright" if light > style.light else "plain"
    # Colours scale with the light, within 60% and 125% of the style's own.
    percent = max(60, min(125, 100 * light // max(1, style.light)))
    palette = {
        name: "#" + "".join(f"{min(255, int(color[i : i + 2], 16) * percent // 100):02x}" for i in (1, 3, 5))
        for name, color in style.palette.items()
    }
    return {"name": style.name, "mood": mood, "light": light, "palette": palette}


def adjacency_of(rooms: Sequence[Room], doors: Sequence[Door]) -> dict[str, list[tuple[str, str]]]:
    """room -> [(door id, room beyond)], doors in list order."""
    adjacency: dict[str, list[tuple[str, str]]] = {room.id: [] for room in rooms}
    for door in doors:
        adjacency[door.a].append((door.id, door.b))
        adjacency[door.b].append((door.id, door.a))
    return adjacency


def critical_path(
    rooms: Sequence[Room],
    doors: Sequence[Door],
    entities: Sequence[Entity],
    opened: Sequence[str],
    keys: dict[str, Any],
) -> tuple[list[str], int]:
    """Rooms walked from the start to each key in the order they open, then to the exit; and the steps."""
    start = next((entity for entity in entities if entity.kind == "start"), None)
    exit_ = next((entity for entity in entities if entity.kind == "exit"), None)
    if start is None or exit_ is None or any(color not in keys for color in opened):
        return [], 0
    walker = Walker(rooms, doors)
    locked = {door.lock: door.id for door in doors if door.lock}
    targets = [keys[color] for color in opened] + [exit_]
    path, steps, here = [start.room], 0, start
    for number, target in enumerate(targets):
        closed = [door_id for color, door_id in locked.items() if color not in opened[:number]]
        reach = walker.reach(here.room, (here.x, here.y), closed, until=(target.room, (target.x, target.y)))
        leg = reach.route(target.room, (target.x, target.y))
        walked = reach.to(target.room, (target.x, target.y))
        if not leg or walked is None:
            return path, 0
        path += leg[1:]
        steps += walked
        here = target
    return path, steps


def measure(
    grid: tuple[int, int],
    rooms: Sequence[Room],
    doors: Sequence[Door],
    entities: Sequence[Entity],
    reached: int,
    steps: int,
) -> dict[str, Any]:
    """The metrics of a level: counts, loops, path length, reachable fraction, overlapping cells."""
    width, height = grid
    _, overlaps = Grid.painted(width, height, rooms)
    floor = sum(room.area for room in rooms)
    count = {kind: sum(entity.kind == kind for entity in entities) for kind in ("enemy", "item", "key")}
    return {
        "rooms": len(rooms),
        "corridors": sum(room.kind == "corridor" for room in rooms),
        "doors": len(doors),
        "locks": sum(door.lock is not None for door in doors),
        "keys": count["key"],
        "enemies": count["enemy"],
        "bosses": sum("boss" in entity.tags for entity in entities),
        "items": count["item"],
        "loops": len(doors) - len(rooms) + 1,
        "pathLength": steps,
        "reachable": round(reached / len(rooms), 4) if rooms else 0.0,
        "overlaps": len(overlaps),
        "floorCells": floor - len(overlaps),
    }


def _depths(adjacency: dict[str, list[tuple[str, str]]], start: str) -> dict[str, int]:
    depths = {start: 0}
    queue = deque([start])
    while queue:
        room = queue.popleft()
        for _, other in adjacency[room]:
            if other not in depths:
                depths[other] = depths[room] + 1
                queue.append(other)
    return depths

"""Levels for the Doom tests: hand-made ones drawn as ASCII art, and the real generator's; and WADs
as a node builder leaves them, to check limits against.

In the art, digits are room floor (room "r<digit>"); '#' and ' ' are solid; '+' is a door and
'R', 'B', 'Y' a door locked red, blue or yellow; on floor, '@' is the start, '>' the exit, 'r',
'b', 'y' the red, blue and yellow keys, 'm' an imp and 'i' a medkit (each in the room around it).
"""

from __future__ import annotations

import functools
import json
import struct
from collections import defaultdict

import pipeline
from pipeline.doom.mapwad import MAP_LUMPS
from pipeline.doom.wad import wad_bytes

_DOORS = {"+": None, "R": "red", "B": "blue", "Y": "yellow"}
_ENTITIES = {
    "@": ("start", "player"),
    ">": ("exit", "exit"),
    "r": ("key", "red_key"),
    "b": ("key", "blue_key"),
    "y": ("key", "yellow_key"),
    "m": ("enemy", "imp"),
    "i": ("item", "medkit"),
}

CORRIDOR = """
############
#@1111111>1#
############
"""

TURNS = """
##########
#@111111##
#######1##
#1111111##
#1########
#1111111>#
##########
"""

DOOR = """
#########
#@1+222##
####222##
####2>2##
####2i2##
#########
"""

KEYED = """
#############
#@11+222R33>#
######+######
     #4#
     #4#
     #r#
     ###
"""

# A cave: one room of loose cells around a hole, with two rock cells touching only at a corner.
CAVE = """
############
#11111111###
#11111#1####
#111#111+22#
#11#1111#2>#
#@111111####
############
"""

# Two rooms whose floors touch only at a corner (caves do that): rooms 1 and 2 meet diagonally
# between (3, 3) and (4, 4), and are joined by the door below room 1.
DIAGONAL = """
########
#@11####
#111####
#111####
##+#22##
##222>##
########
"""

# Every kind of lock, a double door, turns, an exit in the open, a monster and an item. Its critical
# path (TOUR_PATH) fetches the blue key from a side room and the others on the way.
TOUR = """
#################
#@111+2222#333###
#1111+22y2B3r3###
##+###2m22#333###
#444#######Y#####
#4b4#     #5#####
#444#    ##5R666#
#####    #i5#6>6#
         ####666#
         ########
"""
TOUR_PATH = "1412356"


def scene_from_art(art: str, path: str, style: str = "doom", light: int | None = None) -> dict:
    """A scene/1 document from ASCII art and the critical path as room digits ("1243")."""
    rows = [line for line in art.strip("\n").split("\n")]
    width, height = max(map(len, rows)), len(rows)
    char = {(x, y): c for y, line in enumerate(rows) for x, c in enumerate(line)}
    room_of = {cell: f"r{c}" for cell, c in char.items() if c.isdigit()}
    pending = {cell for cell, c in char.items() if c in _ENTITIES}
    while pending:  # an entity stands in the room of the floor next to it
        for cell in sorted(pending):
            near = [room_of[n] for n in _neighbours(cell) if n in room_of]
            if near:
                room_of[cell] = near[0]
                pending.discard(cell)
    cells_of = defaultdict(list)
    for cell in sorted(room_of, key=lambda c: (c[1], c[0])):
        cells_of[room_of[cell]].append(cell)
    entities = [
        {"id": f"e{i}", "kind": _ENTITIES[c][0], "type": _ENTITIES[c][1], "room": room_of[cell], "at": list(cell)}
        for i, (cell, c) in enumerate(sorted(((cell, c) for cell, c in char.items() if c in _ENTITIES), key=_reading))
    ]
    doors = []
    for i, (cell, c) in enumerate(sorted(((cell, c) for cell, c in char.items() if c in _DOORS), key=_reading)):
        x, y = cell
        vertical = (x - 1, y) in room_of and (x + 1, y) in room_of
        a, b = ((x - 1, y), (x + 1, y)) if vertical else ((x, y - 1), (x, y + 1))
        doors.append(
            {
                "id": f"d{i}",
                "a": room_of[a],
                "b": room_of[b],
                "at": [x, y],
                "orientation": "vertical" if vertical else "horizontal",
                "lock": _DOORS[c],
            }
        )
    keys = {e["type"]: e["id"] for e in entities if e["kind"] == "key"}
    locks = [{"color": d["lock"], "door": d["id"], "key": keys[f"{d['lock']}_key"]} for d in doors if d["lock"]]
    start = next(e["room"] for e in entities if e["kind"] == "start")
    exit_ = next(e["room"] for e in entities if e["kind"] == "exit")
    return {
        "schema": "scene/1",
        "prompt": "hand-made test level",
        "seed": 0,
        "style": style,
        "grid": {"width": width, "height": height},
        "theme": {} if light is None else {"light": light},
        "params": {},
        "rooms": [_room(room, cells, start, exit_) for room, cells in sorted(cells_of.items())],
        "doors": doors,
        "entities": entities,
        "locks": locks,
        "graph": {"start": start, "exit": exit_, "criticalPath": [f"r{c}" for c in path]},
        "metrics": {},
    }


def corridor(width: int) -> dict:
    """A level one corridor long, `width` cells wide in all: start at the west end, exit at the east."""
    return scene_from_art("#" * width + "\n#@" + "1" * (width - 4) + ">#\n" + "#" * width, "1")


def _room(room: str, cells: list, start: str, exit_: str) -> dict:
    kind = "start" if room == start else "exit" if room == exit_ else "room"
    xs, ys = [x for x, _ in cells], [y for _, y in cells]
    box = [min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1]
    shape = {"rect": box} if box[2] * box[3] == len(cells) else {"cells": [list(c) for c in cells]}
    return {"id": room, "kind": kind, **shape, "depth": 0, "tags": []}


def _neighbours(cell):
    x, y = cell
    return [(x, y - 1), (x + 1, y), (x, y + 1), (x - 1, y)]


def _reading(item):
    (x, y), _ = item
    return y, x


SCENES = {
    "corridor": scene_from_art(CORRIDOR, "1"),
    "turns": scene_from_art(TURNS, "1"),
    "door": scene_from_art(DOOR, "12"),
    "keyed": scene_from_art(KEYED, "12423"),
    "cave": scene_from_art(CAVE, "12", style="cave"),
    "diagonal": scene_from_art(DIAGONAL, "12", style="cave"),
    "tour": scene_from_art(TOUR, TOUR_PATH),
}


# The generated levels the Doom tests build and play, by name: each style's level for each of
# these requests. Each has two or three locks; the lair has a boss.
_LAIR = ("a vast dark lair with a boss", 42)
REQUESTS = (("a spooky hallway", 123), ("a locked keep with three keys", 7), _LAIR)
GENERATED = {f"{style}-{seed}": (prompt, seed, style) for style in pipeline.STYLES for prompt, seed in REQUESTS}
# The unit tier checks one of each style (the lair) beside the hand-made scenes.
GENERATED_LAIRS = tuple(f"{style}-{_LAIR[1]}" for style in pipeline.STYLES)


def generated_scene(prompt: str, seed: int, style: str, rooms: int | None = None) -> dict:
    """The scene graph the job's steps make for a request (each step's output through JSON, as a job passes it)."""
    return json.loads(_generated(prompt, seed, style, rooms))


@functools.cache
def _generated(prompt: str, seed: int, style: str, rooms: int | None) -> str:
    data: dict = {"prompt": prompt, "seed": seed, "style": style} | ({"rooms": rooms} if rooms else {})
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    return json.dumps(data["sceneGraph"])


def scene_named(name: str) -> dict:
    """A hand-made scene (SCENES) or a generated one (GENERATED) by name."""
    return SCENES[name] if name in SCENES else generated_scene(*GENERATED[name])


ONE_BLOCK = struct.pack("<4h", 0, 0, 1, 1) + struct.pack("<H", 5) + struct.pack("<2h", 0, -1)


def node_built(**lumps: bytes) -> bytes:
    """A WAD with MAP01 as a node builder leaves it: the given lumps, a one-block blockmap unless given."""
    lumps = {"BLOCKMAP": ONE_BLOCK, **lumps}
    return wad_bytes([("MAP01", b""), *((name, lumps.get(name, b"")) for name in MAP_LUMPS)])


def blockmap(offsets: list[int], words: int) -> bytes:
    """A blockmap of len(offsets) blocks in one row, padded with end markers to `words` words."""
    head = struct.pack("<4h", 0, 0, len(offsets), 1) + struct.pack(f"<{len(offsets)}H", *offsets)
    return head + b"\xff\xff" * (words - len(head) // 2)

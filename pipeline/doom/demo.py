"""write_demo: a scene/1 document -> a Doom v1.9 demo lump that walks its map to the exit.

The demo plays MAP01 as build_map makes it, monsters off: the player runs the route of
plan_route cell centre to cell centre, stops before each door to use it and waits until it is
open, and at the end faces the exit switch and uses it. Played with -timedemo and -statdump,
a finished level shows up in the stat dump; a demo that falls short does not.

The format: a 13-byte header (version 109, skill, episode, map, deathmatch, respawn, fast,
nomonsters, console player, four players in game), then four bytes a tic (forward move, side
move, turn, buttons), then 0x80.

add_demo puts the demo in the map's WAD as the lump DEMO1, the name Doom II gives its own demos:
`chocolate-doom -file map.wad -playdemo demo1` plays it, and so does the title screen's loop.
"""

from __future__ import annotations

import struct
from typing import Any

from .mapwad import START_ANGLE, thing_position
from .motion import FRACUNIT, Player, Tic, drive
from .route import Route, plan_route
from .scene import Cell, read_scene
from .wad import read_lumps, wad_bytes

DEMO_LUMP = "DEMO1"
DEMO_VERSION = 109
SKILL = 2  # "Hurt Me Plenty"; build_map puts every thing on every skill
BT_USE = 2
DEMO_END = 0x80
# A used door rises 2 units a tic to 4 below the rooms' ceiling: 62 tics, and a margin.
DOOR_OPEN_TICS = 64
# The level ends on the tic after the switch; the rest is margin for the intermission to start.
EXIT_TICS = 35
# A run drifts sideways by about 1/2600 of its length (see motion.HEADINGS): recentre past this.
MAX_DRIFT = 2 * FRACUNIT
_HEADING_OF = {(1, 0): 0, (0, -1): 64, (-1, 0): 128, (0, 1): 192}


def write_demo(scene_data: Any) -> bytes:
    """Return the demo lump that plays the scene's map from the start to the exit switch."""
    tics = play_route(plan_route(read_scene(scene_data)))
    header = bytes([DEMO_VERSION, SKILL, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0])
    body = b"".join(struct.pack("<bbBB", tic.forward, 0, tic.turn, BT_USE if tic.use else 0) for tic in tics)
    return header + body + bytes([DEMO_END])


def add_demo(wad: bytes, scene_data: Any) -> bytes:
    """Return wad with the scene's demo appended as the lump DEMO1 (a node builder keeps it)."""
    return wad_bytes([*read_lumps(wad), (DEMO_LUMP, write_demo(scene_data))])


def play_route(route: Route) -> list[Tic]:
    """The tics that walk a route: straight runs between turns, stops at doors, the exit switch."""
    cells = route.cells
    player = Player(*_centre(cells[0]), angle=START_ANGLE * 256 // 360)
    tics: list[Tic] = []
    last = len(cells) - 1
    index = 0
    while True:
        if index in route.opens:
            tics.append(_use(player, _heading(cells[index], cells[index + 1])))
            tics.extend(Tic() for _ in range(DOOR_OPEN_TICS))
        if index == last:
            break
        direction = _heading(cells[index], cells[index + 1])
        end = index + 1
        while end < last and _heading(cells[end], cells[end + 1]) == direction and end not in route.opens:
            end += 1
        tics.extend(_run_to(player, direction, cells[end]))
        index = end
    tics.append(_use(player, _HEADING_OF[route.switch]))
    tics.extend(Tic() for _ in range(EXIT_TICS))
    return tics


def _run_to(player: Player, heading: int, cell: Cell) -> list[Tic]:
    """Run along heading to the centre of cell, then step back onto the centre line if he drifted."""
    x, y = _centre(cell)
    tics = drive(player, heading, x if heading in (0, 128) else y)
    across, centre = (player.y, y) if heading in (0, 128) else (player.x, x)
    if abs(across - centre) > MAX_DRIFT:
        sideways = (64 if centre > across else 192) if heading in (0, 128) else (0 if centre > across else 128)
        tics += drive(player, sideways, centre)
    if abs(player.x - x) > MAX_DRIFT or abs(player.y - y) > MAX_DRIFT:
        raise AssertionError(f"the demo did not bring the player to rest on cell {list(cell)}")
    return tics


def _use(player: Player, heading: int) -> Tic:
    """A tic that turns the player (at rest) to heading and presses use."""
    tic = Tic(turn=(heading - player.angle) & 255, use=True)
    player.run(tic)
    return tic


def _heading(a: Cell, b: Cell) -> int:
    return _HEADING_OF[(b[0] - a[0], b[1] - a[1])]


def _centre(cell: Cell) -> tuple[int, int]:
    """The fixed-point Doom coordinates of a cell's centre."""
    x, y = thing_position(cell)
    return x * FRACUNIT, y * FRACUNIT

"""build_map: a scene/1 document -> a PWAD holding the classic binary Doom map MAP01, without nodes.

One grid cell is CELL map units square (the player is 32 wide, so a one-cell corridor leaves him
16 units on each side). Grid x is Doom's x; grid y runs down, Doom's y up, so a cell's corners
are (x * CELL, -y * CELL). Every room is one sector; every door cell is a door sector, closed
(ceiling on the floor) until it is used. Doors open and stay open: a level whose keys lie
down side branches is walked back through its doors, and a door that shut again on the way
back would only cost time. The exit is a switch (see Scene.exit_switch).

A node builder must run on the result before an engine can load it: omgifol writes no nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omg.mapedit import Linedef, MapEditor, Sector, Sidedef, Thing, Vertex

from .catalog import (
    DOOR_FACE,
    DOOR_FACE_WIDTH,
    DOOR_FLOOR,
    DOOR_TRACK,
    LOCK_TRACKS,
    Textures,
    style_textures,
    thing_type,
)
from .scene import Cell, Scene, read_scene
from .wad import wad_bytes
from .walls import Wall, trace_walls

CELL = 64
ROOM_HEIGHT = 128
START_ANGLE = 90  # degrees: the player starts facing north, up the minimap
DEFAULT_LIGHT = 160
# Door line specials: D1 "open and stay", manual (used from the front), by lock colour.
DOOR_SPECIALS = {None: 31, "blue": 32, "red": 33, "yellow": 34}
EXIT_SWITCH_SPECIAL = 11  # S1 exit level
# Lump order within a map is fixed: engines find each lump by its offset from the marker.
MAP_LUMPS = ("THINGS", "LINEDEFS", "SIDEDEFS", "VERTEXES", "SEGS", "SSECTORS", "NODES", "SECTORS", "REJECT", "BLOCKMAP")


def build_map(scene_data: Any) -> bytes:
    """Return the WAD bytes of MAP01 built from a scene/1 document (no nodes yet)."""
    scene = read_scene(scene_data)
    textures = style_textures(scene.style)
    editor = MapEditor()
    sectors = _add_sectors(editor, scene, textures)
    locks = {door.sector: door.lock for door in scene.doors}
    vertices: dict[Cell, int] = {}
    for wall in trace_walls(scene):
        _add_line(editor, wall, sectors, locks, textures, vertices)
    for entity in scene.entities:
        number = thing_type(entity.kind, entity.type, scene.style)
        if number is not None:
            x, y = thing_position(entity.cell)
            thing = Thing(x=x, y=y, angle=START_ANGLE if entity.kind == "start" else 0, type=number)
            thing.easy = thing.medium = thing.hard = 1
            editor.things.append(thing)
    lumps = editor.to_lumps()
    return wad_bytes([("MAP01", b"")] + [(name, lumps[name].data) for name in MAP_LUMPS])


def thing_position(cell: Cell) -> tuple[int, int]:
    """Doom map coordinates of the centre of a grid cell."""
    return cell[0] * CELL + CELL // 2, -(cell[1] * CELL + CELL // 2)


def scene_light(theme: Mapping[str, Any]) -> int:
    """Sector light from theme.light (0..255), lifted into 96..255 so a dark theme stays playable."""
    light = theme.get("light")
    if not isinstance(light, int) or isinstance(light, bool) or not 0 <= light <= 255:
        return DEFAULT_LIGHT
    return 96 + light * (255 - 96) // 255


def _add_sectors(editor: MapEditor, scene: Scene, textures: Textures) -> dict[tuple[str, str], int]:
    light = scene_light(scene.theme)
    regions = [(("room", room), ROOM_HEIGHT, textures.floor) for room in scene.rooms]
    door_sectors = dict.fromkeys(door.sector for door in scene.doors)  # in scene order, once each
    regions += [(("door", sector), 0, DOOR_FLOOR) for sector in door_sectors]
    sectors = {}
    for region, ceiling, floor in regions:
        sectors[region] = len(editor.sectors)
        editor.sectors.append(Sector(z_floor=0, z_ceil=ceiling, tx_floor=floor, tx_ceil=textures.ceiling, light=light))
    return sectors


def _add_line(
    editor: MapEditor,
    wall: Wall,
    sectors: dict[Any, int],
    locks: dict[str, str | None],
    textures: Textures,
    vertices: dict[Cell, int],
) -> None:
    kind, name = wall.front
    line = Linedef(vx_a=_vertex(editor, vertices, wall.start), vx_b=_vertex(editor, vertices, wall.end))
    sides = [Sidedef(sector=sectors[wall.front])]
    front = sides[0]
    if wall.back is None:
        line.impassable = 1
        if kind == "room":
            front.tx_mid = textures.switch if wall.switch else textures.wall
            line.action = EXIT_SWITCH_SPECIAL if wall.switch else 0
        else:
            # The jambs of a door passage: coloured for a locked door, pegged to the floor
            # so they stay put while the door moves.
            front.tx_mid = LOCK_TRACKS.get(locks[name] or "", DOOR_TRACK)
            line.lower_unpeg = 1
    else:
        # Walls never join two rooms or two door cells, so this is a room facing a door.
        line.two_sided = 1
        sides.append(Sidedef(sector=sectors[wall.back]))
        width = abs(wall.end[0] - wall.start[0] + wall.end[1] - wall.start[1]) * CELL
        front.tx_up, front.off_x = DOOR_FACE, (DOOR_FACE_WIDTH - width) // 2 % DOOR_FACE_WIDTH  # centred
        line.action = DOOR_SPECIALS[locks[wall.back[1]]]
        line.back = len(editor.sidedefs) + 1
    line.front = len(editor.sidedefs)
    editor.sidedefs.extend(sides)
    editor.linedefs.append(line)


def _vertex(editor: MapEditor, vertices: dict[Cell, int], corner: Cell) -> int:
    if corner not in vertices:
        vertices[corner] = len(editor.vertexes)
        editor.vertexes.append(Vertex(corner[0] * CELL, -corner[1] * CELL))
    return vertices[corner]

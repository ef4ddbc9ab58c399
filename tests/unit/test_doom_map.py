"""pipeline/doom: scene/1 -> MAP01 in a WAD, read back with omgifol and checked line by line."""

from __future__ import annotations

import copy
import json
import struct
from collections import Counter

import pytest
from omg import WAD
from omg.mapedit import MapEditor

from pipeline import STYLES, PipelineError
from pipeline.doom import CELL, build_map, read_scene
from pipeline.doom.catalog import ENEMIES, ITEMS, KEYS, SKULL_KEYS, STYLE_TEXTURES, thing_type
from pipeline.doom.mapwad import MAP_LUMPS, scene_light
from pipeline.doom.wad import read_lumps
from pipeline.styles import style_named
from tests.doom_scenes import DOOR, GENERATED_LAIRS, KEYED, SCENES, scene_from_art, scene_named

LEVELS = [*SCENES, *GENERATED_LAIRS]  # hand-made and generated


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> dict[str, MapEditor]:
    """Every hand-made scene and a generated level of each style, built and read back by omgifol."""
    folder = tmp_path_factory.mktemp("maps")
    read = {}
    for name in LEVELS:
        path = folder / f"{name}.wad"
        path.write_bytes(build_map(scene_named(name)))
        wad = WAD(str(path))
        assert list(wad.maps) == ["MAP01"]
        read[name] = MapEditor(wad.maps["MAP01"])
    return read


def test_same_scene_same_bytes_after_a_json_round_trip():
    scene = SCENES["tour"]
    assert build_map(scene) == build_map(json.loads(json.dumps(scene)))


def test_the_wad_is_a_pwad_with_the_map_lumps_in_engine_order():
    wad = build_map(SCENES["keyed"])
    assert wad[:4] == b"PWAD"
    count, directory = int.from_bytes(wad[4:8], "little"), int.from_bytes(wad[8:12], "little")
    names = [wad[directory + 16 * i + 8 : directory + 16 * i + 16].rstrip(b"\0").decode() for i in range(count)]
    assert names == ["MAP01", *MAP_LUMPS]


@pytest.mark.parametrize("name", LEVELS)
def test_every_sector_is_closed(maps, name):
    """Each sector's sides chain into closed loops: at every vertex as many edges leave as arrive."""
    editor = maps[name]
    balance = Counter()
    for line in editor.linedefs:
        for side, (start, end) in ((line.front, (line.vx_a, line.vx_b)), (line.back, (line.vx_b, line.vx_a))):
            if side != line.NONE:
                sector = editor.sidedefs[side].sector
                balance[(sector, start)] += 1
                balance[(sector, end)] -= 1
    assert not [key for key, value in balance.items() if value], "open sector boundary"
    assert {editor.sidedefs[s].sector for s in range(len(editor.sidedefs))} == set(range(len(editor.sectors)))


@pytest.mark.parametrize("name", LEVELS)
def test_front_sides_face_the_floor_and_back_sides_the_door(maps, name):
    """A point just right of each line is inside its front sector's cell; left of a one-sided line is rock."""
    scene = read_scene(scene_named(name))
    walkable = scene.walkable()
    editor = maps[name]
    for line in editor.linedefs:
        a, b = editor.vertexes[line.vx_a], editor.vertexes[line.vx_b]
        dx, dy = (b.x - a.x) // max(abs(b.x - a.x), abs(b.y - a.y)), (b.y - a.y) // max(abs(b.x - a.x), abs(b.y - a.y))
        middle = ((a.x + b.x) / 2, (a.y + b.y) / 2)
        right, left = (_cell(middle, dy, -dx), _cell(middle, -dy, dx))
        front = editor.sectors[editor.sidedefs[line.front].sector]
        assert right in walkable
        assert front.z_ceil == (0 if right in scene.door_at else 128)
        if line.back == line.NONE:
            assert left not in walkable and line.impassable
        else:
            assert right in scene.floor and left in scene.door_at and line.two_sided
            assert editor.sectors[editor.sidedefs[line.back].sector].z_ceil == 0


def _cell(point, nx, ny):
    x, y = point[0] + nx, point[1] + ny
    return int(x // CELL), int(-y // CELL)


def test_collinear_edges_merge_into_one_line(maps):
    # The corridor: a 10x1 room whose north wall is split by the exit switch.
    assert len(maps["corridor"].linedefs) == 6


def test_doors_by_lock_colour_are_used_from_the_room_side(maps):
    specials = Counter(line.action for line in maps["tour"].linedefs if line.two_sided)
    # Blue, red, yellow: one line on each side of the door; the double door (two cells, one
    # sector) opens from its two faces, as does the door into the side room.
    assert specials == {32: 2, 33: 2, 34: 2, 31: 4}
    editor = maps["tour"]
    double = [line for line in editor.linedefs if line.two_sided and line.action == 31]
    lengths = sorted(abs(editor.vertexes[line.vx_a].y - editor.vertexes[line.vx_b].y) for line in double)
    assert lengths == [0, 0, 2 * CELL, 2 * CELL]


def test_door_sectors_are_closed_and_coloured_by_lock(maps):
    editor = maps["keyed"]
    doors = [i for i, sector in enumerate(editor.sectors) if sector.z_ceil == 0]
    assert len(doors) == 3 and all(editor.sectors[i].z_floor == 0 for i in doors)
    jambs = Counter(
        editor.sidedefs[line.front].tx_mid
        for line in editor.linedefs
        if line.back == line.NONE and editor.sidedefs[line.front].sector in doors
    )
    assert jambs == {"DOORTRAK": 4, "DOORRED": 2}


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("keyed", ((11, 1), (12, 1))),  # the exit cell's own north wall, running east
        ("door", ((7, 3), (7, 4))),  # the exit stands in the open: the nearest wall, east, running south
    ],
)
def test_the_exit_is_one_switch_on_the_wall_nearest_the_exit(maps, name, line):
    editor = maps[name]
    switches = [each for each in editor.linedefs if each.action == 11]
    assert len(switches) == 1 and switches[0].back == switches[0].NONE
    assert editor.sidedefs[switches[0].front].tx_mid == "SW1STRTN"
    ends = [editor.vertexes[switches[0].vx_a], editor.vertexes[switches[0].vx_b]]
    assert [(v.x // CELL, -v.y // CELL) for v in ends] == list(line)


def test_things_stand_on_their_cells_and_the_exit_is_no_thing(maps):
    editor = maps["tour"]
    things = {(t.x, t.y): t.type for t in editor.things}
    expected = {}
    for entity in SCENES["tour"]["entities"]:
        x, y = entity["at"]
        expected[(x * CELL + CELL // 2, -(y * CELL + CELL // 2))] = {
            "start": 1,
            "key": KEYS.get(entity["type"]),
            "enemy": 3001,
            "item": 2012,
        }.get(entity["kind"])
    assert things == {position: kind for position, kind in expected.items() if kind is not None}
    assert all(t.easy and t.medium and t.hard for t in editor.things)
    start = next(t for t in editor.things if t.type == 1)
    assert start.angle == 90


@pytest.mark.parametrize("style", STYLES)
def test_every_word_of_every_style_is_a_doom_thing_chosen_for_it(style):
    """Not the hashed fallback: each enemy, boss and item a style places has its own look-alike."""
    vocabulary = style_named(style)
    assert {word for word, _ in (*vocabulary.enemies, vocabulary.boss)} <= set(ENEMIES)
    assert {word for word, _ in vocabulary.items} <= set(ITEMS)


def test_technological_styles_have_keycards_and_the_others_skull_keys():
    for style, keys in (("doom", KEYS), ("scifi", KEYS), ("dungeon", SKULL_KEYS), ("haunted", SKULL_KEYS)):
        assert {color: thing_type("key", f"{color}_key", style) for color in ("red", "blue", "yellow")} == {
            color: keys[f"{color}_key"] for color in ("red", "blue", "yellow")
        }
    things = dict(read_lumps(build_map(scene_from_art(KEYED, "12423", style="dungeon"))))["THINGS"]
    assert 38 in {thing_number for _, _, _, thing_number, _ in struct.iter_unpack("<hhhhh", things)}  # red skull


def test_unknown_words_become_common_things_the_same_way_every_time():
    scene = copy.deepcopy(SCENES["door"])
    scene["entities"].append({"id": "x", "kind": "enemy", "type": "gelatinous_cube", "room": "r2", "at": [4, 4]})
    assert build_map(scene) == build_map(copy.deepcopy(scene))


def test_style_picks_the_textures_and_theme_light_the_brightness(maps, tmp_path):
    scene = scene_from_art(DOOR, "12", style="cave", light=0)
    path = tmp_path / "cave.wad"
    path.write_bytes(build_map(scene))
    editor = MapEditor(WAD(str(path)).maps["MAP01"])
    walls = {editor.sidedefs[line.front].tx_mid for line in editor.linedefs if line.back == line.NONE}
    assert STYLE_TEXTURES["cave"].wall in walls and "STARTAN2" not in walls
    assert {sector.light for sector in editor.sectors} == {96}
    assert scene_light({}) == 160 and scene_light({"light": 255}) == 255 and scene_light({"light": "dim"}) == 160


def _broken(change):
    scene = copy.deepcopy(SCENES["keyed"])
    change(scene)
    return scene


BAD_SCENES = {
    "not scene/1": _broken(lambda s: s.update(schema="scene/0")),
    "grid too large": _broken(lambda s: s.update(grid={"width": 600, "height": 10})),
    "room on the border": _broken(lambda s: s["rooms"][0].update(rect=[0, 1, 2, 1])),
    "rooms overlap": _broken(lambda s: s["rooms"][1].update(rect=[2, 1, 3, 1])),
    "rooms touch": _broken(lambda s: s["rooms"].append({"id": "r5", "kind": "room", "rect": [7, 3, 1, 1]})),
    "door not between its rooms": _broken(lambda s: s["doors"][0].update(b="r3")),
    "door on floor": _broken(lambda s: s["doors"][0].update(at=[2, 1])),
    "bad lock colour": _broken(lambda s: s["doors"][2].update(lock="green")),
    "lock without key": _broken(lambda s: s.update(locks=[])),
    "entity off its room": _broken(lambda s: s["entities"][0].update(room="r2")),
    "two starts": _broken(lambda s: s["entities"][1].update(kind="start")),
    "path not to the exit": _broken(lambda s: s["graph"].update(criticalPath=["r1", "r2"])),
    "cell not a pair": _broken(lambda s: s["entities"][0].update(at=[1, True])),
    "rooms not a list": _broken(lambda s: s.update(rooms={})),
}


@pytest.mark.parametrize("scene", BAD_SCENES.values(), ids=BAD_SCENES)
def test_a_malformed_scene_is_a_pipeline_error(scene):
    with pytest.raises(PipelineError):
        build_map(scene)

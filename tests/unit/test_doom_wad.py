"""pipeline/doom: the WAD directory, the demo lump in map.wad, and the limits of a vanilla Doom map."""

from __future__ import annotations

import pytest

from pipeline import PipelineError
from pipeline.doom import DEMO_LUMP, MapTooLarge, add_demo, build_map, check_vanilla_limits, write_demo
from pipeline.doom.limits import MAX_INDEX
from pipeline.doom.scene import MAX_GRID
from pipeline.doom.wad import read_lumps, wad_bytes
from tests.doom_scenes import SCENES, blockmap, corridor, node_built


def test_read_lumps_gives_back_what_wad_bytes_wrote():
    lumps = [("MAP01", b""), ("THINGS", b"\x01" * 10), ("DEMO1", b"\x6d\x80")]
    wad = wad_bytes(lumps)
    assert wad[:4] == b"PWAD" and read_lumps(wad) == lumps
    assert read_lumps(build_map(SCENES["tour"]))[0] == ("MAP01", b"")


@pytest.mark.parametrize("wad", [b"", b"PWAD\x01\x00\x00\x00", b"JUNK" + bytes(8), wad_bytes([("A", b"xy")])[:-20]])
def test_what_is_not_a_wad_is_a_pipeline_error(wad):
    with pytest.raises(PipelineError, match="not a WAD"):
        read_lumps(wad)


def test_add_demo_appends_the_scene_demo_as_demo1_and_keeps_the_map():
    scene = SCENES["keyed"]
    wad = build_map(scene)
    with_demo = add_demo(wad, scene)
    assert read_lumps(with_demo) == [*read_lumps(wad), (DEMO_LUMP, write_demo(scene))]
    assert DEMO_LUMP == "DEMO1"  # the lump name `-playdemo demo1` and the title screen look up


def test_a_map_within_the_limits_passes():
    check_vanilla_limits(node_built(SIDEDEFS=bytes(30 * MAX_INDEX), BLOCKMAP=blockmap([6, 6], 8)))


@pytest.mark.parametrize(
    ("lumps", "message"),
    [
        ({"SIDEDEFS": bytes(30 * (MAX_INDEX + 1))}, "32,768 sidedefs"),
        ({"SEGS": bytes(12 * (MAX_INDEX + 1))}, "32,768 segs"),
        ({"NODES": b"XNOD" + bytes(24)}, "extended nodes"),
        ({"BLOCKMAP": blockmap([6, MAX_INDEX + 1], MAX_INDEX + 3)}, "reaches at most 32,767 words"),
        ({"BLOCKMAP": blockmap([6, 6], 0x10000)}, "65,536 words"),
    ],
    ids=["sidedefs", "segs", "extended nodes", "blockmap offset", "blockmap length"],
)
def test_a_map_past_a_vanilla_limit_is_too_large(lumps, message):
    with pytest.raises(MapTooLarge, match=message):
        check_vanilla_limits(node_built(**lumps))


def test_a_map_without_nodes_is_not_too_large_but_wrong():
    with pytest.raises(PipelineError, match="no blockmap") as raised:
        check_vanilla_limits(build_map(SCENES["door"]))
    assert not isinstance(raised.value, MapTooLarge)


def test_a_grid_wider_than_a_doom_map_is_too_large_and_the_widest_builds():
    build_map(corridor(MAX_GRID))
    with pytest.raises(MapTooLarge, match="510x3 cells; a Doom map holds at most 509 a side"):
        build_map(corridor(MAX_GRID + 1))

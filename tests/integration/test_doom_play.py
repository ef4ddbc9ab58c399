"""map.wad played to the exit in a real Doom engine: build_map, zdbsp, write_demo, chocolate-doom.

Each hand-made level is built, given nodes by zdbsp and played headless with its demo
(`-timedemo -nodraw -statdump`); chocolate-doom writes a level's statistics to the dump only
when the level was finished, so the dump is the proof that the player reached the exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from omg import WAD
from omg.txdef import Textures

from pipeline.doom import build_map, write_demo
from pipeline.doom.catalog import DOOR_FACE, DOOR_FLOOR, DOOR_TRACK, LOCK_TRACKS, STYLE_TEXTURES
from tasks.doom_nodes import NodeBuilderError, NodeBuilderMissing, build_nodes, node_builder
from tests.doom_scenes import SCENES

pytestmark = pytest.mark.integration

FREEDOOM2 = Path("/usr/share/games/doom/freedoom2.wad")
ENGINE = shutil.which("chocolate-doom") or shutil.which("chocolate-doom", path="/usr/games")
PLAY_TIMEOUT_SECONDS = 60


def _require(present: object, what: str, package: str) -> None:
    if not present:
        pytest.skip(f"{what} is not installed (Debian package {package}; .ci/run installs it)")


@pytest.fixture(scope="module")
def engine() -> str:
    _require(node_builder(), "zdbsp", "zdbsp")
    _require(ENGINE, "chocolate-doom", "chocolate-doom")
    _require(FREEDOOM2.is_file(), str(FREEDOOM2), "freedoom")
    return ENGINE


def play(engine: str, folder: Path, wad: bytes, demo: bytes) -> int:
    """Play demo on wad headless; return how many levels the stat dump says were finished."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "map.wad").write_bytes(wad)
    (folder / "demo.lmp").write_bytes(demo)
    stats = folder / "stats.txt"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "HOME": str(folder)}
    command = [engine, "-iwad", str(FREEDOOM2), "-file", "map.wad", "-timedemo", "demo.lmp"]
    command += ["-nodraw", "-nosound", "-nomusic", "-statdump", str(stats)]
    # -timedemo ends with a non-zero exit status even when all went well: the dump is what counts.
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=PLAY_TIMEOUT_SECONDS)
    assert "timed" in done.stdout + done.stderr, f"the demo did not play:\n{done.stdout}{done.stderr}"
    return stats.read_text().count("MAP01") if stats.is_file() else 0


@pytest.mark.parametrize("name", SCENES)
def test_the_demo_finishes_the_level(engine, tmp_path, name):
    scene = SCENES[name]
    assert play(engine, tmp_path, build_nodes(build_map(scene)), write_demo(scene)) == 1


def test_a_demo_that_stops_short_of_the_switch_does_not_finish(engine, tmp_path):
    scene = SCENES["keyed"]
    demo = write_demo(scene)
    # Drop the last second and the switch press before it, keeping the end marker.
    short = demo[: -(4 * 37) - 1] + demo[-1:]
    assert play(engine, tmp_path, build_nodes(build_map(scene)), short) == 0


def test_zdbsp_builds_the_same_nodes_every_time(engine):
    wad = build_map(SCENES["tour"])
    built = build_nodes(wad)
    assert built == build_nodes(wad) and len(built) > len(wad)


def test_a_broken_wad_is_a_node_builder_error(engine):
    with pytest.raises(NodeBuilderError) as raised:
        build_nodes(b"PWAD\x01\x00\x00\x00garbage")
    assert not isinstance(raised.value, NodeBuilderMissing)


def test_a_node_builder_that_hangs_is_cut_off(engine, tmp_path):
    sleeper = tmp_path / "zdbsp"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    with pytest.raises(NodeBuilderError, match=r"longer than 0\.5 s"):
        build_nodes(build_map(SCENES["corridor"]), timeout=0.5, executable=str(sleeper))


def test_every_texture_and_flat_the_builder_uses_is_in_freedoom2(engine):
    wad = WAD(str(FREEDOOM2))
    textures, flats = set(Textures(wad.txdefs)), set(wad.flats)
    used_textures = {DOOR_FACE, DOOR_TRACK, *LOCK_TRACKS.values()}
    used_flats = {DOOR_FLOOR}
    for style in STYLE_TEXTURES.values():
        used_textures |= {style.wall, style.switch}
        used_flats |= {style.floor, style.ceiling}
    assert used_textures <= textures and used_flats <= flats

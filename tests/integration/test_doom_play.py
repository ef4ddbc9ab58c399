"""map.wad played to the exit in a real Doom engine: the map.wad a job makes, played in chocolate-doom.

Each level becomes map.wad as a job makes it (tasks.artifacts.doom_map: build_map, zdbsp's nodes,
the demo as the lump DEMO1) and is played headless with that demo (`-timedemo demo1 -nodraw
-statdump`). chocolate-doom writes a level's statistics to the dump only when the level was
finished, so the dump is the proof that the player reached the exit. The levels are the
hand-made ones and the real generator's, in every style (tests/doom_scenes.py). They are played
a few at a time: each run spends most of its second asleep in the engine's start-up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from omg import WAD
from omg.txdef import Textures

from pipeline.doom import DEMO_LUMP, build_map, write_demo
from pipeline.doom.catalog import DOOR_FACE, DOOR_FLOOR, DOOR_TRACK, LOCK_TRACKS, STYLE_TEXTURES
from pipeline.doom.scene import MAX_GRID
from tasks.artifacts import ArtifactSkipped, doom_map
from tasks.doom_nodes import NodeBuilderError, NodeBuilderMissing, build_nodes, node_builder
from tests.doom_scenes import GENERATED, SCENES, corridor, generated_scene, scene_named

pytestmark = pytest.mark.integration

FREEDOOM2 = Path("/usr/share/games/doom/freedoom2.wad")
ENGINE = shutil.which("chocolate-doom") or shutil.which("chocolate-doom", path="/usr/games")
PLAY_TIMEOUT_SECONDS = 60
PLAYS_AT_ONCE = 6
LEVELS = [*SCENES, *GENERATED]  # every hand-made level, and each style's for each request


def _require(present: object, what: str, package: str) -> None:
    if not present:
        pytest.skip(f"{what} is not installed (Debian package {package}; .ci/run installs it)")


@pytest.fixture(scope="module")
def engine() -> str:
    _require(node_builder(), "zdbsp", "zdbsp")
    _require(ENGINE, "chocolate-doom", "chocolate-doom")
    _require(FREEDOOM2.is_file(), str(FREEDOOM2), "freedoom")
    return ENGINE


def play(engine: str, folder: Path, wad: bytes, demo: bytes | None = None) -> int:
    """Play a demo on wad headless (its own DEMO1 unless one is given); levels the stat dump says were finished."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "map.wad").write_bytes(wad)
    if demo is not None:
        (folder / "demo.lmp").write_bytes(demo)
    stats = folder / "stats.txt"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "HOME": str(folder)}
    # A name with no such file in the folder is looked up as a lump: DEMO1 in map.wad.
    command = [engine, "-iwad", str(FREEDOOM2), "-file", "map.wad"]
    command += ["-timedemo", "demo.lmp" if demo is not None else DEMO_LUMP.lower()]
    command += ["-nodraw", "-nosound", "-nomusic", "-statdump", str(stats)]
    # -timedemo ends with a non-zero exit status even when all went well: the dump is what counts.
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=PLAY_TIMEOUT_SECONDS)
    assert "timed" in done.stdout + done.stderr, f"the demo did not play:\n{done.stdout}{done.stderr}"
    return stats.read_text().count("MAP01") if stats.is_file() else 0


@pytest.fixture(scope="module")
def played(engine, tmp_path_factory) -> dict[str, Future]:
    """Every level's map.wad, made as a job makes it and played with its own demo: levels finished, by name."""
    folder = tmp_path_factory.mktemp("played")

    def make_and_play(name: str) -> int:
        return play(engine, folder / name, doom_map({"sceneGraph": scene_named(name)}))

    with ThreadPoolExecutor(PLAYS_AT_ONCE) as pool:
        futures = {name: pool.submit(make_and_play, name) for name in LEVELS}
    return futures


@pytest.mark.parametrize("name", LEVELS)
def test_map_wad_plays_to_the_exit(played, name):
    assert played[name].result() == 1


def test_a_demo_that_stops_short_of_the_switch_does_not_finish(engine, tmp_path):
    scene = SCENES["keyed"]
    demo = write_demo(scene)
    # Drop the last second and the switch press before it, keeping the end marker.
    short = demo[: -(4 * 37) - 1] + demo[-1:]
    wad = build_nodes(build_map(scene))
    assert play(engine, tmp_path / "whole", wad, demo) == 1  # the same path, the whole demo: finished
    assert play(engine, tmp_path / "short", wad, short) == 0


def test_a_job_leaves_a_map_wad_that_plays_to_the_exit(live, engine, tmp_path):
    job_id = live.submit()["jobId"]
    body = live.wait_terminal(job_id)
    result = body["result"]
    assert body["state"] == "done" and "no map.wad" not in result["summary"]
    assert result["doomMapKey"] == f"jobs/{job_id}/map.wad"
    downloaded = requests.get(result["doomMapUrl"], timeout=10)
    assert downloaded.status_code == 200 and downloaded.headers["Content-Type"] == "application/x-doom"
    served = requests.get(f"{live.url}/jobs/{job_id}/artifacts/map.wad", timeout=10)  # 302 to the same bytes
    scene = requests.get(result["sceneGraphUrl"], timeout=10).json()
    assert downloaded.content == served.content == doom_map({"sceneGraph": scene})
    assert play(engine, tmp_path, downloaded.content) == 1


def test_a_level_too_large_for_vanilla_doom_gets_no_map_wad(engine):
    scene = generated_scene("a vast base", 1, "scifi", rooms=300)  # its blockmap would pass 32,767 words
    with pytest.raises(ArtifactSkipped, match="blockmap is .* words; vanilla Doom reaches at most 32,767"):
        doom_map({"sceneGraph": scene})


def test_the_widest_map_gets_nodes(engine):
    widest = build_map(corridor(MAX_GRID))
    assert len(build_nodes(widest)) > len(widest)


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

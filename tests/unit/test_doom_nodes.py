"""tasks/doom_nodes.py and the map.wad producer, without the real zdbsp.

The unit tier runs as where zdbsp is missing (tests/unit/conftest.py); where a test needs a
node builder, it is a small script standing in for zdbsp. The real one is played in
tests/integration/test_doom_play.py.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from pipeline import PipelineError
from pipeline.doom import DEMO_LUMP, build_map, write_demo
from pipeline.doom.wad import read_lumps
from storage.errors import ArtifactTooLarge, DependencyUnavailable
from tasks import doom_nodes
from tasks.artifacts import ArtifactSkipped, Written, doom_map, write_artifacts
from tasks.checkpoints import artifact_key
from tasks.doom_nodes import NodeBuilderMissing, build_nodes
from tasks.doom_nodes import node_builder as real_node_builder
from tests.doom_scenes import SCENES, blockmap, corridor, generated_scene, node_built
from tests.fakes import FakeArtifactStore


def listing(written: Written) -> bytes:
    """A result.json: what was written, and what was not."""
    return json.dumps({"artifacts": written.keys, "skipped": written.skipped}).encode()


@pytest.fixture
def path_without_zdbsp(monkeypatch, tmp_path):
    """The real lookup of zdbsp, on a PATH that has none."""
    monkeypatch.setattr(doom_nodes, "node_builder", real_node_builder)
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """Install a shell script as zdbsp: it is called as `zdbsp -R -t -o OUT IN`, so $4 is OUT and $5 IN."""

    def install(body: str, output: bytes | None = None) -> None:
        if output is not None:
            (tmp_path / "built.wad").write_bytes(output)
        script = tmp_path / "zdbsp"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
        monkeypatch.setattr(doom_nodes, "node_builder", lambda: str(script))

    return install


def test_no_zdbsp_on_the_path_says_so(path_without_zdbsp):
    assert doom_nodes.node_builder() is None
    with pytest.raises(NodeBuilderMissing, match="zdbsp is not installed") as raised:
        build_nodes(b"PWAD")
    assert raised.value.code == "NODE_BUILDER_MISSING"


def test_a_node_builder_that_cannot_start_is_missing(tmp_path):
    with pytest.raises(NodeBuilderMissing, match="could not be started"):
        build_nodes(b"PWAD", executable=str(tmp_path / "no-such-zdbsp"))


def test_without_zdbsp_the_job_completes_without_map_wad_and_says_why(path_without_zdbsp):
    scene = generated_scene("a spooky hallway", 123, "doom")
    store = FakeArtifactStore()
    written = write_artifacts(store, "job-1", {"sceneGraph": scene, "asciiMinimap": "@>"}, index=listing)
    assert set(written.keys) == {"sceneGraph", "asciiMinimap", "minimapPng"}
    assert artifact_key("job-1", "map.wad") not in store.blobs
    assert written.summary("Drew it") == "Drew it; no map.wad: zdbsp is not installed (Debian package zdbsp)"
    assert json.loads(store.blobs[artifact_key("job-1", "result.json")])["artifacts"] == written.keys


def test_a_missing_zdbsp_is_noticed_before_the_map_is_built(path_without_zdbsp):
    # A scene the builder would refuse: the skip comes first, so it costs nothing.
    with pytest.raises(ArtifactSkipped, match="zdbsp is not installed"):
        doom_map({"sceneGraph": {"schema": "not a scene"}})


def test_map_wad_is_the_node_built_map_and_then_the_demo(stand_in):
    stand_in('cp "$(dirname "$0")/built.wad" "$4"', output=node_built())
    scene = SCENES["keyed"]
    assert read_lumps(doom_map({"sceneGraph": scene})) == [*read_lumps(node_built()), (DEMO_LUMP, write_demo(scene))]


def test_the_node_builder_is_given_the_scene_map(stand_in, tmp_path):
    stand_in('cp "$5" "$(dirname "$0")/given.wad"; exit 1')
    with pytest.raises(ArtifactSkipped):
        doom_map({"sceneGraph": SCENES["tour"]})
    assert (tmp_path / "given.wad").read_bytes() == build_map(SCENES["tour"])


@pytest.mark.parametrize(
    ("body", "output", "scene", "reason"),
    [
        ("echo 'Assertion failed' >&2; exit 3", None, SCENES["door"], r"zdbsp failed \(exit 3\)"),
        (
            'cp "$(dirname "$0")/built.wad" "$4"',
            node_built(BLOCKMAP=blockmap([6, 40000], 40002)),
            SCENES["door"],
            "vanilla Doom reaches at most 32,767 words",
        ),
        ("exit 0", None, corridor(600), "600x3 cells; a Doom map holds at most 509 a side"),
    ],
    ids=["zdbsp fails", "blockmap too large", "grid too large"],
)
def test_map_wad_is_skipped_when_zdbsp_fails_or_the_level_is_too_large(stand_in, body, output, scene, reason):
    stand_in(body, output)
    with pytest.raises(ArtifactSkipped, match=reason):
        doom_map({"sceneGraph": scene})


def test_a_builder_bug_is_not_skipped_but_fails_loudly(stand_in):
    # A "node builder" that builds nothing: the map has no blockmap, which no limit explains.
    stand_in('cp "$5" "$4"')
    with pytest.raises(PipelineError, match="no blockmap") as raised:
        doom_map({"sceneGraph": SCENES["door"]})
    assert not isinstance(raised.value, ArtifactSkipped)


class SmallStore(FakeArtifactStore):
    """Refuses what demo mode's table refuses: a body over its limit (admitted first, as there)."""

    def __init__(self, limit: int) -> None:
        super().__init__(presign=False)
        self.limit = limit

    def admit(self, key: str, size: int) -> None:
        if size > self.limit:
            raise ArtifactTooLarge(f"{key} is {size} bytes, over the {self.limit}-byte inline limit")

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.admit(key, len(body))
        super().put(key, body, content_type)


def test_a_map_wad_too_large_for_the_store_is_left_out_but_a_scene_too_large_fails(stand_in):
    stand_in('cp "$(dirname "$0")/built.wad" "$4"', output=node_built(REJECT=bytes(100_000)))
    data = {"sceneGraph": generated_scene("a spooky hallway", 123, "doom"), "asciiMinimap": "@>"}
    written = write_artifacts(SmallStore(60_000), "job-1", data, index=listing)
    assert set(written.keys) == {"sceneGraph", "asciiMinimap", "minimapPng"}
    assert written.skipped == (
        f"no map.wad: jobs/job-1/map.wad is {len(doom_map(data))} bytes, over the 60000-byte inline limit",
    )
    refusing = SmallStore(1_000)
    with pytest.raises(ArtifactTooLarge, match="sceneGraph.json"):
        write_artifacts(refusing, "job-1", data, index=listing)
    assert artifact_key("job-1", "result.json") not in refusing.blobs  # a failed step names nothing


class HeldUpload(FakeArtifactStore):
    """Holds minimap.png's upload until result.json's has begun, for at most 5 s."""

    def __init__(self) -> None:
        super().__init__()
        self.result_begun = threading.Event()
        self.overlapped: bool | None = None

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if key.endswith("/result.json"):
            self.result_begun.set()
        elif key.endswith("/minimap.png"):
            self.overlapped = self.result_begun.wait(5)
        super().put(key, body, content_type)


def test_result_json_is_uploaded_beside_the_artifacts_not_after_them(path_without_zdbsp):
    # result.json depends on which artifacts were made and admitted, not on their uploads: on AWS
    # that is one PUT's time off the last step.
    store = HeldUpload()
    data = {"sceneGraph": generated_scene("a spooky hallway", 123, "doom"), "asciiMinimap": "@>"}
    written = write_artifacts(store, "job-1", data, index=listing)
    assert store.overlapped is True
    assert set(store.blobs) == {
        artifact_key("job-1", name) for name in ("sceneGraph.json", "asciiMinimap.txt", "minimap.png", "result.json")
    }
    assert json.loads(store.blobs[artifact_key("job-1", "result.json")])["artifacts"] == written.keys


class FailingUpload(FakeArtifactStore):
    """minimap.png's upload fails at once; the others take a while."""

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if key.endswith("/minimap.png"):
            raise DependencyUnavailable("s3 is down")
        time.sleep(0.3)
        super().put(key, body, content_type)


def test_an_upload_that_fails_fails_the_step_once_every_upload_has_ended(path_without_zdbsp):
    store = FailingUpload()
    data = {"sceneGraph": generated_scene("a spooky hallway", 123, "doom"), "asciiMinimap": "@>"}
    with pytest.raises(DependencyUnavailable, match="s3 is down"):
        write_artifacts(store, "job-1", data, index=listing)
    # Nothing is left uploading once the step has failed: the slower uploads have ended.
    assert {artifact_key("job-1", name) for name in ("sceneGraph.json", "asciiMinimap.txt")} <= set(store.blobs)

"""The artifacts a finished job leaves in the store: one table, one producer each.

An Artifact is its file name (under jobs/{jobId}/), its content type, the field the job's status
shows it under (result.{field}Key and result.{field}Url), how demo mode shows it when there is no
bucket to presign from, and the producer that makes its bytes from the last step's data. The
runner calls write_artifacts() with that data; the status, the artifacts endpoint, the OpenAPI
document and the CLI all read this table, so a new artifact is one entry and one producer.

Demo mode (no bucket): "json" and "text" artifacts are inlined in the status as result.{field};
the others (binary, like minimap.png) get result.{field}Url = the API's own
/jobs/{jobId}/artifacts/{name}, which serves their bytes.

A job completes without an artifact its producer skips (ArtifactSkipped), and without an optional
one its store refuses as too large (demo mode's table); the last step's summary says which and why.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass

import pipeline
from pipeline.doom import MapTooLarge, add_demo, build_map
from pipeline.picture import render_png
from storage.errors import ArtifactTooLarge
from storage.ports import ArtifactStore
from tasks.checkpoints import RESULT, artifact_key
from tasks.doom_nodes import NodeBuilderError, build_nodes, require_node_builder
from tasks.logs import get_logger

log = get_logger(__name__)


class ArtifactSkipped(Exception):
    """A producer cannot make its artifact for this job (a tool is missing, say): the job completes
    without it, and the last step's summary says why (the exception's message)."""


@dataclass(frozen=True)
class Artifact:
    """One kind of final artifact."""

    name: str
    content_type: str
    field: str
    produce: Callable[[Mapping], bytes]
    inline: str | None = None  # demo mode: "json" or "text" inlines it in the status; None links to it
    optional: bool = False  # too large for the store: left out (summary says so) instead of failing the job


def doom_map(data: Mapping) -> bytes:
    """map.wad: the level as the Doom map MAP01, with its nodes and DEMO1, a demo that walks it to the exit.

    Skipped where zdbsp is missing or fails, and for a level too big for a vanilla Doom map; any
    other error of the builder is a bug and fails the job like any step's.
    """
    scene = data["sceneGraph"]
    try:
        executable = require_node_builder()  # first: where zdbsp is missing, skipping costs nothing
        wad = build_nodes(build_map(scene), executable=executable)
    except (NodeBuilderError, MapTooLarge) as exc:
        raise ArtifactSkipped(str(exc)) from exc
    return add_demo(wad, scene)


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(
        "sceneGraph.json",
        "application/json",
        "sceneGraph",
        lambda data: pipeline.encode_json(data["sceneGraph"]),
        inline="json",
    ),
    Artifact(
        "asciiMinimap.txt",
        "text/plain; charset=utf-8",
        "asciiMinimap",
        lambda data: data["asciiMinimap"].encode("utf-8"),
        inline="text",
    ),
    Artifact("minimap.png", "image/png", "minimapPng", lambda data: render_png(data["sceneGraph"])),
    Artifact("map.wad", "application/x-doom", "doomMap", doom_map, optional=True),
)
BY_NAME = {artifact.name: artifact for artifact in ARTIFACTS}
# Every name GET /jobs/<jobId>/artifacts/<name> serves, and its content type.
ARTIFACT_NAMES = (*BY_NAME, RESULT)
CONTENT_TYPES = {artifact.name: artifact.content_type for artifact in ARTIFACTS} | {RESULT: "application/json"}


@dataclass(frozen=True)
class Written:
    """What write_artifacts stored: keys by result field, and why any artifact was left out."""

    keys: dict[str, str]
    skipped: tuple[str, ...] = ()

    def summary(self, step_summary: str) -> str:
        """The last step's summary, with a word on any artifact left out."""
        return "; ".join((step_summary, *self.skipped))


def write_artifacts(store: ArtifactStore, job_id: str, data: Mapping, *, index: Callable[[Written], bytes]) -> Written:
    """Produce and store every artifact from the last step's data, and result.json, ``index``'s
    bytes for what was written (overwriting: same data, same bytes).

    One thread an artifact: each is made, admitted by the store (``ArtifactStore.admit``) and
    uploaded at once, so the uploads wait on the network while map.wad is built. result.json names
    the artifacts the store admitted, so it is known once the last of them is made, and uploaded
    then, beside the uploads still in flight: the step holds one PUT's time after its slowest
    artifact is made, not two in a row. It returns once every upload has ended: none outlives the
    step, even after one fails. A required artifact that cannot be made fails the step with no
    result.json.
    """

    def make(artifact: Artifact) -> tuple[str, bytes]:
        key = artifact_key(job_id, artifact.name)
        body = artifact.produce(data)
        store.admit(key, len(body))
        return key, body

    def submit(fn: Callable, *args) -> Future:
        # Each thread runs in a copy of this context, so its log lines keep the job's ids.
        return _pool().submit(contextvars.copy_context().run, fn, *args)

    started = time.monotonic()
    made = {submit(make, artifact): artifact for artifact in ARTIFACTS}
    uploads: list[Future] = []
    keys: dict[Artifact, str] = {}
    skipped: dict[Artifact, str] = {}
    failure: BaseException | None = None
    for future in as_completed(made):
        artifact = made[future]
        try:
            key, body = future.result()
        except (ArtifactSkipped, ArtifactTooLarge) as exc:
            if isinstance(exc, ArtifactTooLarge) and not artifact.optional:
                failure = failure or exc
                continue
            log.warning("artifact.skipped", artifact=artifact.name, reason=str(exc))
            skipped[artifact] = f"no {artifact.name}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - raised below, once every thread has ended
            failure = failure or exc
            continue
        keys[artifact] = key
        uploads.append(submit(store.put, key, body, artifact.content_type))
    made_ms = _ms_since(started)
    written = Written(
        {a.field: keys[a] for a in ARTIFACTS if a in keys}, tuple(skipped[a] for a in ARTIFACTS if a in skipped)
    )
    try:
        if failure is None:
            store.put(artifact_key(job_id, RESULT), index(written), CONTENT_TYPES[RESULT])
    finally:
        wait(uploads)
    if failure is not None:
        raise failure
    for upload in uploads:
        upload.result()  # an upload's error is the step's
    # How long the artifacts took to make (with the uploads they waited beside), and to store.
    log.info("artifacts.written", count=len(keys) + 1, madeMs=made_ms, ms=_ms_since(started))
    return written


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The producers' threads, kept for the process's life.

    Made on first use, in the process that runs the last step (never before the worker's fork).
    A pool made for each job spent milliseconds starting its threads: each start waits for the
    new thread to run, and the thread building map.wad held the interpreter meanwhile.
    """
    return ThreadPoolExecutor(max_workers=len(ARTIFACTS), thread_name_prefix="artifact")

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
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
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


def write_artifacts(store: ArtifactStore, job_id: str, data: Mapping) -> Written:
    """Produce and store every artifact from the last step's data (overwriting: same data, same bytes).

    Side by side, one thread each: the uploads wait on the network while map.wad is built, so the
    last step takes about as long as its slowest artifact, not as all of them one after another.
    """

    def write(artifact: Artifact) -> str:
        key = artifact_key(job_id, artifact.name)
        store.put(key, artifact.produce(data), artifact.content_type)
        return key

    keys, skipped = {}, []
    # Each thread runs in a copy of this context, so its log lines keep the job's ids.
    futures = [(a, _pool().submit(contextvars.copy_context().run, write, a)) for a in ARTIFACTS]
    wait(future for _, future in futures)  # all of them, even after one fails: none outlives the step
    for artifact, future in futures:
        try:
            keys[artifact.field] = future.result()
        except (ArtifactSkipped, ArtifactTooLarge) as exc:
            if isinstance(exc, ArtifactTooLarge) and not artifact.optional:
                raise
            log.warning("artifact.skipped", artifact=artifact.name, reason=str(exc))
            skipped.append(f"no {artifact.name}: {exc}")
    return Written(keys, tuple(skipped))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The producers' threads, kept for the process's life.

    Made on first use, in the process that runs the last step (never before the worker's fork).
    A pool made for each job spent milliseconds starting its threads: each start waits for the
    new thread to run, and the thread building map.wad held the interpreter meanwhile.
    """
    return ThreadPoolExecutor(max_workers=len(ARTIFACTS), thread_name_prefix="artifact")

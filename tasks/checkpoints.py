"""Where a job's checkpoints and artifacts live in the artifact store, and their shapes."""

from __future__ import annotations

SCENE_GRAPH = "sceneGraph.json"
ASCII_MINIMAP = "asciiMinimap.txt"
RESULT = "result.json"
ARTIFACT_NAMES = (SCENE_GRAPH, ASCII_MINIMAP, RESULT)
CONTENT_TYPES = {
    SCENE_GRAPH: "application/json",
    ASCII_MINIMAP: "text/plain; charset=utf-8",
    RESULT: "application/json",
}


def checkpoint_key(job_id: str, step: str) -> str:
    """The S3 key of one step's output."""
    return f"jobs/{job_id}/steps/{step}.json"


def artifact_key(job_id: str, name: str) -> str:
    """The S3 key of a final artifact (``sceneGraph.json``, ``asciiMinimap.txt``, ``result.json``)."""
    return f"jobs/{job_id}/{name}"

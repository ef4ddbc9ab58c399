"""Where a job's checkpoints and artifacts live in the artifact store.

The final artifacts themselves (names, content types, producers) are listed in tasks/artifacts.py.
"""

from __future__ import annotations

from storage.model import artifact_prefix

RESULT = "result.json"


def checkpoint_key(job_id: str, step: str) -> str:
    """The S3 key of one step's output."""
    return f"{artifact_prefix(job_id)}steps/{step}.json"


def artifact_key(job_id: str, name: str) -> str:
    """The S3 key of a final artifact (``sceneGraph.json``, ``minimap.png``, ``result.json``, ...)."""
    return f"{artifact_prefix(job_id)}{name}"

"""A step's checkpoint: where it lives in the artifact store, its bytes, and its form in a message.

A checkpoint is kept in S3 for what a retry needs (an operator's retry starts from the first
incomplete step and reads its predecessor's checkpoint there). A small one also travels in the
next step's message — the handover — so that step need not fetch it: one S3 round trip fewer on
the job's critical path, and one GetObject fewer on its bill. The handover is optional: a message
without one (an operator's retry, a redelivered step that hands on again, a checkpoint too big for
a message) makes the next step read S3, and a checkpoint missing there is recomputed.

The final artifacts themselves (names, content types, producers) are listed in tasks/artifacts.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping

import pipeline
from storage.model import artifact_prefix

RESULT = "result.json"

# The longest handover (its compressed, base64 body) a message carries. kombu base64-encodes a
# Celery body and then the whole SQS message, so a message is about 16/9 of its handover plus
# 1.5-4.3 KB of headers and the rest of the chain (measured on the emulator's recorder:
# tests/integration/test_job_cost.py). At 32 KiB a message stays under 63 KB, inside SQS's first
# 64 KB billing chunk — so a handover never makes a send or a receive dearer than the GetObject
# it saves — and at a quarter of SQS's 256 KB limit. Compressed, that is ~150 KB of checkpoint
# JSON: a default level's are 3-8 KB; a 150-room level's fit, a 350-room one's last ones go by S3
# (docs/performance.md, "How big a handover may be").
HANDOVER_MAX_BYTES = 32 * 1024
ZLIB_LEVEL = 6  # ~1 ms for a 100 KB checkpoint; level 9 saves 2 % more for three times the time
# What a handover may inflate to: far above any level's checkpoint (a 1,000-room one is under
# 1 MB), so a forged message cannot make a worker inflate gigabytes.
INFLATED_MAX_BYTES = 16 * 1024 * 1024


def checkpoint_key(job_id: str, step: str) -> str:
    """The S3 key of one step's output."""
    return f"{artifact_prefix(job_id)}steps/{step}.json"


def artifact_key(job_id: str, name: str) -> str:
    """The S3 key of a final artifact (``sceneGraph.json``, ``minimap.png``, ``result.json``, ...)."""
    return f"{artifact_prefix(job_id)}{name}"


def encode_checkpoint(step: str, output: pipeline.StepOutput) -> bytes:
    """A checkpoint's bytes, as stored in S3 and (compressed) carried in a handover."""
    return pipeline.encode_json({"step": step, "summary": output.summary, "data": output.data})


def decode_checkpoint(body: bytes) -> pipeline.StepOutput:
    """The step output in a checkpoint's bytes (ValueError, KeyError or TypeError if it is not one)."""
    checkpoint = json.loads(body)
    return pipeline.StepOutput(data=checkpoint["data"], summary=checkpoint["summary"])


def handover(step: str, body: bytes, reserved: int = 0) -> dict | None:
    """The message form of ``step``'s checkpoint ``body``, or None when it is too big for a message:
    longer than what HANDOVER_MAX_BYTES leaves beside the ``reserved`` bytes the message also
    carries (the job, with a handed lease: tasks/runner.py)."""
    packed = base64.b64encode(zlib.compress(body, ZLIB_LEVEL)).decode("ascii")
    if len(packed) > HANDOVER_MAX_BYTES - reserved:
        return None
    return {"step": step, "zlib": packed}


def from_handover(value: object, step: str) -> pipeline.StepOutput | None:
    """The output of ``step`` carried in a message, or None if it carries none (or not ``step``'s).

    A handover that does not decode (which zlib's checksum and JSON would tell) counts as none:
    the step then reads the checkpoint from S3, as it would without one.
    """
    if not isinstance(value, Mapping) or value.get("step") != step or not isinstance(value.get("zlib"), str):
        return None
    if len(value["zlib"]) > HANDOVER_MAX_BYTES:
        return None
    try:
        inflate = zlib.decompressobj()
        body = inflate.decompress(base64.b64decode(value["zlib"], validate=True), INFLATED_MAX_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            return None
        return decode_checkpoint(body)
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError):
        return None

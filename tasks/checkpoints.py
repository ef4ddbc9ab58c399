"""A step's checkpoint: where it is kept, its bytes, and its forms in a record and in a message.

A checkpoint is kept for what a retry needs (an operator's retry starts from the first incomplete
step and reads its predecessor's checkpoint). A small one (RECORD_CHECKPOINT_MAX_BYTES compressed:
a default level's all are) is kept in the job's item by the step's own record, in place of the
step before's — the latest recorded step's is the one a retry reads — so keeping it adds no
request to the step; a bigger one is an object in S3, uploaded beside the record. A checkpoint
also travels in the next step's message — the handover — so that step need not fetch it: one
round trip fewer on the job's critical path. The handover is optional: a message without one (an
operator's retry, a redelivered step that hands on again, a checkpoint too big for a message)
makes the next step read the item's, or S3's, and a checkpoint missing from both is recomputed.

The final artifacts themselves (names, content types, producers) are listed in tasks/artifacts.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping

import pipeline
from storage.model import RecordedCheckpoint, artifact_prefix, inflate

# A checkpoint's key lives in storage, whose export writes the checkpoint a job's item keeps at
# that key: re-exported here, beside a checkpoint's other forms.
from storage.model import checkpoint_key as checkpoint_key

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
# The largest checkpoint (compressed) a step's record keeps in the job's item; a bigger one is an
# object in S3. A write is billed on the larger of the item before and after it, so a checkpoint
# in the item adds its size in 1 KB write units to two records (its own, and the next one's,
# which replaces it): at 4 KB that is 8 units, $5.00 per million at on-demand prices, as much as
# the PutObject it saves. A default level's are 0.9-2.0 KB (docs/performance.md, "The latest
# checkpoint in the record"); the item stays far below DynamoDB's 400 KB.
RECORD_CHECKPOINT_MAX_BYTES = 4 * 1024
ZLIB_LEVEL = 6  # ~1 ms for a 100 KB checkpoint; level 9 saves 2 % more for three times the time


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


def compress(body: bytes) -> bytes:
    """A checkpoint's bytes as a record keeps them and (base64'd) a handover carries them."""
    return zlib.compress(body, ZLIB_LEVEL)


def handover(step: str, body: bytes, reserved: int = 0, *, compressed: bytes | None = None) -> dict | None:
    """The message form of ``step``'s checkpoint ``body``, or None when it is too big for a message:
    longer than what HANDOVER_MAX_BYTES leaves beside the ``reserved`` bytes the message also
    carries (the job, with a handed lease: tasks/runner.py). ``compressed``: ``compress(body)``,
    if made already."""
    packed = base64.b64encode(compressed if compressed is not None else compress(body)).decode("ascii")
    if len(packed) > HANDOVER_MAX_BYTES - reserved:
        return None
    return {"step": step, "zlib": packed}


def for_record(step: str, compressed: bytes) -> RecordedCheckpoint | None:
    """The record form of ``step``'s compressed checkpoint, or None when it goes to S3 instead."""
    return RecordedCheckpoint(step, compressed) if len(compressed) <= RECORD_CHECKPOINT_MAX_BYTES else None


def from_record(checkpoint: RecordedCheckpoint | None, step: str) -> pipeline.StepOutput | None:
    """The output of ``step`` that a job's item keeps, or None if it keeps none (or another step's,
    or one that does not decode: the step then reads S3, as it would without one)."""
    if checkpoint is None or checkpoint.step != step:
        return None
    return _inflated(checkpoint.zlib)


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
        compressed = base64.b64decode(value["zlib"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return _inflated(compressed)


def _inflated(compressed: bytes) -> pipeline.StepOutput | None:
    body = inflate(compressed)
    if body is None:
        return None
    try:
        return decode_checkpoint(body)
    except (ValueError, KeyError, TypeError):
        return None

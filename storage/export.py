"""Export: every durable entity of a jobs table (and its bucket) as versioned JSON Lines.

The table is read with a parallel Scan (an export may scan; the API never does) and the
bucket with a paginated listing of ``jobs/``. Items are turned into entities one page at a
time and handed on as they come, so memory stays flat however many jobs there are.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import entities
from storage.aws_errors import translated
from storage.dynamo_items import ARTIFACT_KEY_PREFIX, ENTITY_JOB, entity_type, from_item, job_from_item
from storage.errors import InvalidExport
from storage.model import (
    ARTIFACTS_ROOT,
    CHECKPOINT_CONTENT_TYPE,
    RecordedCheckpoint,
    checkpoint_key,
    inflate,
    job_of_artifact,
    utc_now,
)

STORE_TABLE, STORE_S3 = "table", "s3"
PAGE_SIZE = 100  # items per Scan page: small pages keep memory low and progress lively


@dataclass(frozen=True)
class ExportSource:
    """Where the execution state lives: the jobs table and, unless in demo mode, the bucket."""

    dynamodb: Any
    table: str
    s3: Any = None
    bucket: str | None = None


def export_entities(
    source: ExportSource,
    *,
    artifact_dir: Path | None = None,
    segments: int = 4,
    page_size: int = PAGE_SIZE,
    progress: Callable[[dict[str, Any]], None] = lambda entity: None,
) -> Iterator[dict[str, Any]]:
    """Header, every entity, end line; with ``artifact_dir``, each artifact's bytes go to ``artifact_dir/key``.

    Lazy: entities come as the Scan's pages arrive, at most about ``3 * segments`` pages ahead.
    """
    counts: Counter[str] = Counter()
    yield entities.header(exported_at=utc_now(), source={"table": source.table, "bucket": source.bucket})
    for entity in _all_entities(source, artifact_dir, segments, page_size):
        counts[entity["type"]] += 1
        progress(entity)
        yield entity
    yield entities.end(counts)


def artifact_path(root: Path, key: str) -> Path:
    """Where an artifact's bytes go under ``root``; InvalidExport for a key that would leave it."""
    path = (root / key).resolve()
    if not job_of_artifact(key) or ".." in key.split("/") or not path.is_relative_to(root.resolve()):
        raise InvalidExport(f"artifact key {key!r} is not a job's key", details={"key": key})
    return path


def _all_entities(
    source: ExportSource, artifact_dir: Path | None, segments: int, page_size: int
) -> Iterator[dict[str, Any]]:
    for raw in _scan(source.dynamodb, source.table, segments, page_size):
        item = from_item(raw)
        if entity_type(item) == ENTITY_JOB:
            job = job_from_item(item)
            yield from entities.job_entities(job)
            kept = _kept_checkpoint(job.job_id, job.checkpoint, artifact_dir) if job.checkpoint else None
            if kept is not None:
                yield kept
        else:
            key = item.get("artifactKey") or item["jobId"].removeprefix(ARTIFACT_KEY_PREFIX)
            body = bytes(item["body"].value)
            yield _artifact(key, item["contentType"], body, STORE_TABLE, artifact_dir)
    if source.bucket:
        yield from _bucket(source.s3, source.bucket, artifact_dir)


def _kept_checkpoint(job_id: str, checkpoint: RecordedCheckpoint, artifact_dir: Path | None) -> dict[str, Any] | None:
    """The checkpoint a job's item keeps (its latest recorded step's), as the artifact it stands
    for: the object a bigger one would be, at its key. An import stores it there, where a retry
    of the restored job finds it. None for one that does not inflate, which the worker would not
    read either: a retry recomputes it (the pipeline is deterministic)."""
    body = inflate(checkpoint.zlib)
    if body is None:
        return None
    key = checkpoint_key(job_id, checkpoint.step)
    return _artifact(key, CHECKPOINT_CONTENT_TYPE, body, STORE_TABLE, artifact_dir)


def _artifact(key: str, content_type: str, body: bytes, store: str, artifact_dir: Path | None) -> dict[str, Any]:
    if artifact_dir is not None:
        path = artifact_path(artifact_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return entities.artifact_entity(key, job_of_artifact(key), content_type, body, store)


def _bucket(s3: Any, bucket: str, artifact_dir: Path | None) -> Iterator[dict[str, Any]]:
    """Every object under ``jobs/``, read once for its checksum (and copied with ``artifact_dir``)."""
    with translated("s3", "ListObjectsV2"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ARTIFACTS_ROOT):
            for listed in page.get("Contents", []):
                with translated("s3", "GetObject"):
                    obj = s3.get_object(Bucket=bucket, Key=listed["Key"])
                    body = obj["Body"].read()
                yield _artifact(listed["Key"], obj.get("ContentType", ""), body, STORE_S3, artifact_dir)


_DONE = object()


def _scan(client: Any, table: str, segments: int, page_size: int) -> Iterator[dict[str, Any]]:
    """Every item of ``table``, from ``segments`` Scan segments read side by side.

    Each segment's thread hands its pages over a small bounded queue: a slow consumer
    slows the scan down instead of letting pages pile up in memory.
    """
    pages: queue.Queue[Any] = queue.Queue(maxsize=segments)
    stop = threading.Event()

    def scan_segment(segment: int) -> None:
        request = {
            "TableName": table,
            "ConsistentRead": True,
            "Limit": page_size,
            "Segment": segment,
            "TotalSegments": segments,
        }
        try:
            while not stop.is_set():
                with translated("dynamodb", "Scan"):
                    response = client.scan(**request)
                _hand_over(pages, response.get("Items", []), stop)
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            _hand_over(pages, exc, stop)
        _hand_over(pages, _DONE, stop)

    threads = [threading.Thread(target=scan_segment, args=(n,), daemon=True) for n in range(segments)]
    for thread in threads:
        thread.start()
    running = segments
    try:
        while running:
            page = pages.get()
            if page is _DONE:
                running -= 1
            elif isinstance(page, Exception):
                raise page
            else:
                yield from page
    finally:
        stop.set()  # the consumer stopped early or failed: let the threads end
        for thread in threads:
            thread.join(timeout=5)


def _hand_over(pages: queue.Queue[Any], value: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            pages.put(value, timeout=0.2)
            return
        except queue.Full:
            continue

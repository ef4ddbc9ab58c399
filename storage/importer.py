"""Import: load an export into a jobs table (and bucket), idempotently.

Each job is written with its records in one conditional put (the job store's own create,
so the item has exactly the layout the services write), each artifact with a conditional
put: what is already there is left as it is, so a second import changes nothing. The file
is read line by line, holding one job's entities at a time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import entities
from storage.errors import InvalidExport, JobExists
from storage.export import artifact_path
from storage.ports import ArtifactStore, JobStore


@dataclass
class ImportReport:
    """What an import did: entities written, entities already there, artifacts listed without bytes."""

    written: Counter[Any] = field(default_factory=Counter)
    present: Counter[Any] = field(default_factory=Counter)
    without_bytes: int = 0


def import_entities(
    lines: Iterable[str],
    jobs: JobStore,
    artifacts: ArtifactStore,
    *,
    artifact_dir: Path | None = None,
    progress: Callable[[dict[str, Any]], None] = lambda entity: None,
) -> ImportReport:
    """Load an export's lines; InvalidExport (naming the line) for anything this code cannot read."""
    report = ImportReport()
    job: dict[str, Any] | None = None
    children: list[dict[str, Any]] = []
    for number, kind, entity in entities.read_export(lines):
        if kind == entities.JOB:
            _write_job(job, children, jobs, report)
            job, children = entity, []
        elif kind == entities.ARTIFACT:
            _write_artifact(entity, artifacts, artifact_dir, report)
        elif job is None:
            raise InvalidExport(f"line {number}: a {kind} before any job", details={"line": number})
        else:
            children.append(entity)
        progress(entity)
    _write_job(job, children, jobs, report)
    return report


def _write_job(
    job: dict[str, Any] | None, children: list[dict[str, Any]], jobs: JobStore, report: ImportReport
) -> None:
    if job is None:
        return
    restored = entities.job_from_entities(job, children)
    written = report.written
    try:
        jobs.create(restored)
    except JobExists:
        written = report.present
    written[entities.JOB] += 1
    for child in children:
        written[child["type"]] += 1


def _write_artifact(
    entity: dict[str, Any], artifacts: ArtifactStore, artifact_dir: Path | None, report: ImportReport
) -> None:
    if artifact_dir is None:
        report.without_bytes += 1
        return
    key = entity["key"]
    path = artifact_path(artifact_dir, key)
    if not path.is_file():
        raise InvalidExport(f"the bytes of {key} are not in {artifact_dir}", details={"key": key})
    body = path.read_bytes()
    if len(body) != entity["size"] or hashlib.sha256(body).hexdigest() != entity["sha256"]:
        raise InvalidExport(f"{path} does not match the size and SHA-256 the export lists", details={"key": key})
    counter = report.written if artifacts.put_if_absent(key, body, entity["contentType"]) else report.present
    counter[entities.ARTIFACT] += 1

"""Helpers for the execution-state tests: the fixture export, imports, exports and API answers."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from api import create_app
from storage.bootstrap import Services, aws_client
from storage.export import ExportSource, export_entities
from storage.importer import ImportReport, import_entities
from storage.model import JobState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "export-v1.jsonl"
FIXTURE_ARTIFACTS = FIXTURES / "export-v1-artifacts"


def import_file(
    services: Services, path: Path = FIXTURE, artifact_dir: Path | None = FIXTURE_ARTIFACTS
) -> ImportReport:
    """Import an export into the services' table (and bucket)."""
    with path.open(encoding="utf-8") as lines:
        return import_entities(lines, services.jobs, services.artifacts, artifact_dir=artifact_dir)


def export_to(services: Services, path: Path, artifact_dir: Path | None = None) -> list[dict]:
    """Export the services' table (and bucket) to ``path``; the entities written."""
    settings = services.settings
    source = ExportSource(
        aws_client(settings, "dynamodb"),
        settings.jobs_table_name,
        aws_client(settings, "s3") if settings.artifacts_bucket else None,
        settings.artifacts_bucket,
    )
    written = list(export_entities(source, artifact_dir=artifact_dir))
    path.write_text("".join(json.dumps(entity, ensure_ascii=False) + "\n" for entity in written), encoding="utf-8")
    return written


def comparable(entities: list[dict], *, drop: tuple[str, ...] = ()) -> list[str]:
    """The entities without the header (its export time), in a stable order, as JSON."""
    return sorted(
        json.dumps({k: v for k, v in entity.items() if k not in drop}, sort_keys=True, ensure_ascii=False)
        for entity in entities
        if entity["type"] != "header"
    )


def raw_items(services: Services) -> list[dict]:
    """Every item of the services' table, as DynamoDB returns it, in key order."""
    client = aws_client(services.settings, "dynamodb")
    items = [
        item
        for page in client.get_paginator("scan").paginate(
            TableName=services.settings.jobs_table_name, ConsistentRead=True
        )
        for item in page["Items"]
    ]
    return sorted(items, key=lambda item: item["jobId"]["S"])


def api_answers(services: Services, limit: int = 2) -> dict:
    """Every /jobs page (all jobs and each state, ``limit`` a page) and every /status/<id>, through the API."""
    client = create_app(services, enqueue=lambda *args, **kwargs: None).test_client()
    listings = {}
    for state in [None, *JobState]:
        pages, cursor = [], None
        while True:
            query = {
                "limit": limit,
                **({"state": state.value} if state else {}),
                **({"cursor": cursor} if cursor else {}),
            }
            response = client.get("/jobs", query_string=query)
            assert response.status_code == 200, response.json
            pages.append(response.json)
            if (cursor := response.json["nextCursor"]) is None:
                break
        listings[state.value if state else "all"] = pages
    statuses = {}
    for page in listings["all"]:
        for job in page["jobs"]:
            response = client.get(f"/status/{job['jobId']}")
            assert response.status_code == 200, response.json
            statuses[job["jobId"]] = _without_signatures(response.json)
    return {"jobs": listings, "status": statuses}


def _without_signatures(status: dict) -> dict:
    """Presigned URLs name the bucket and carry a signature and a time: keep the key they point at."""
    result = status.get("result") or {}
    for field in ("sceneGraphUrl", "asciiMinimapUrl"):
        if field in result:
            result[field] = urlsplit(result[field]).path.split("/", 2)[2]
    return status

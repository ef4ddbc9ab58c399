"""The execution state in PostgreSQL: apply schema.sql, load an export, answer the access patterns.

Needs psycopg 3 (``pip install 'ghost-engine[postgres]'``). Nothing in the services uses
this: it is the proof that the state is not locked into DynamoDB, and the way out of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from storage import entities

SCHEMA = Path(__file__).with_name("schema.sql")

# Each access pattern of docs/schema.md in SQL, served by the index schema.sql names after it.
QUERIES = {
    "job_by_id": "SELECT job_id::text FROM jobs WHERE job_id = %(job_id)s",
    "newest_jobs": "SELECT job_id::text FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT %(limit)s",
    "jobs_by_state": (
        "SELECT job_id::text FROM jobs WHERE state = %(state)s ORDER BY created_at DESC, job_id DESC LIMIT %(limit)s"
    ),
    "failed_since": (
        "SELECT job_id::text FROM jobs WHERE state = 'failed' AND updated_at >= %(since)s"
        " ORDER BY created_at DESC, job_id DESC"
    ),
    "stalled_jobs": (
        "SELECT job_id::text FROM jobs WHERE state IN ('queued', 'running') AND updated_at < %(cutoff)s"
        " ORDER BY state, created_at DESC, job_id DESC"
    ),
    "job_steps": "SELECT step_id FROM step_records WHERE job_id = %(job_id)s ORDER BY sequence",
    "job_attempts": "SELECT attempt_id FROM attempts WHERE job_id = %(job_id)s ORDER BY attempt",
    "job_operator_actions": "SELECT action_id FROM operator_actions WHERE job_id = %(job_id)s ORDER BY acted_at",
    "job_artifacts": "SELECT key, content_type, size FROM artifacts WHERE job_id = %(job_id)s ORDER BY key",
    "job_by_idempotency_key": "SELECT job_id::text FROM idempotency_keys WHERE key = %(key)s",
}

_INSERTS = {
    entities.JOB: (
        "INSERT INTO jobs (job_id, state, created_at, updated_at, prompt, seed, style, progress, total_steps,"
        " plugin, attempt, result_keys, result_summary, error, fault_drill, expires_at)"
        " VALUES (%(jobId)s, %(state)s, %(createdAt)s, %(updatedAt)s, %(prompt)s, %(seed)s, %(style)s,"
        " %(progress)s, %(totalSteps)s, %(plugin)s, %(attempt)s, %(resultKeys)s, %(resultSummary)s, %(error)s,"
        " %(faultDrill)s, %(expiresAt)s) ON CONFLICT DO NOTHING"
    ),
    entities.STEP: (
        "INSERT INTO step_records (step_id, job_id, attempt, sequence, name, status, started_at, ended_at,"
        " duration_ms, summary) VALUES (%(stepId)s, %(jobId)s, %(attempt)s, %(sequence)s, %(name)s, %(status)s,"
        " %(startedAt)s, %(endedAt)s, %(durationMs)s, %(summary)s) ON CONFLICT DO NOTHING"
    ),
    entities.ATTEMPT: (
        "INSERT INTO attempts (attempt_id, job_id, attempt, started_at, from_step, action_id)"
        " VALUES (%(attemptId)s, %(jobId)s, %(attempt)s, %(startedAt)s, %(fromStep)s, %(actionId)s)"
        " ON CONFLICT DO NOTHING"
    ),
    entities.ACTION: (
        "INSERT INTO operator_actions (action_id, job_id, kind, attempt, acted_at, acted_by, reason)"
        " VALUES (%(actionId)s, %(jobId)s, %(kind)s, %(attempt)s, %(at)s, %(by)s, %(reason)s)"
        " ON CONFLICT DO NOTHING"
    ),
    entities.LEASE: (
        "INSERT INTO step_leases (step_id, job_id, owner, expires_at)"
        " VALUES (%(stepId)s, %(jobId)s, %(owner)s, %(expiresAt)s) ON CONFLICT DO NOTHING"
    ),
    entities.IDEMPOTENCY_KEY: (
        "INSERT INTO idempotency_keys (key, job_id, request_fingerprint)"
        " VALUES (%(key)s, %(jobId)s, %(requestFingerprint)s) ON CONFLICT DO NOTHING"
    ),
    entities.ARTIFACT: (
        "INSERT INTO artifacts (key, job_id, content_type, size, sha256, store)"
        " VALUES (%(key)s, %(jobId)s, %(contentType)s, %(size)s, %(sha256)s, %(store)s) ON CONFLICT DO NOTHING"
    ),
}

# Objects can outlive their job item by a little (TTL deletes up to 48 h late, lifecycle
# rules run daily), so an export may list artifacts of a job it no longer has.
_ORPHANS = "DELETE FROM artifacts a WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = a.job_id)"


def apply_schema(conn: psycopg.Connection) -> None:
    """Create the tables and indexes (idempotent)."""
    with conn.transaction():
        conn.execute(SCHEMA.read_text())


def load_export(conn: psycopg.Connection, lines: Iterable[str]) -> Counter[Any]:
    """Load an export in one transaction (a second load changes nothing); rows inserted by type."""
    inserted: Counter[str] = Counter()
    # One transaction: a file that read_export refuses, even at its last line, loads nothing.
    with conn.transaction(), conn.cursor() as cursor:
        for _, kind, entity in entities.read_export(lines):
            cursor.execute(_INSERTS[kind], _row(kind, entity))
            inserted[kind] += cursor.rowcount
        cursor.execute(_ORPHANS)
        inserted[entities.ARTIFACT] -= cursor.rowcount
    return inserted


def answer(conn: psycopg.Connection, pattern: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of one access pattern (a key of QUERIES)."""
    return conn.execute(QUERIES[pattern], params).fetchall()


def _row(kind: str, entity: dict[str, Any]) -> dict[str, Any]:
    if kind != entities.JOB:
        return entity
    request = entity["request"]
    return {
        **entity,
        "prompt": request["prompt"],
        "seed": request["seed"],
        "style": request["style"],
        "resultKeys": Jsonb(entity["resultKeys"]) if entity.get("resultKeys") else None,
        "error": Jsonb(entity["error"]) if entity.get("error") else None,
    }

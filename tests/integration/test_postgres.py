"""Proof that the execution state moves to PostgreSQL: the fixture export loaded into a real server
answers every access pattern of docs/schema.md in SQL as DynamoDB (moto, dynalite) answers it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from storage.errors import InvalidExport
from storage.model import JobState, attempt_id, job_id_for_key
from storage.sql.postgres import answer, apply_schema, load_export
from tasks.cli import failed_since
from tasks.sweeper import stalled_jobs
from tests.integration.execution_state import FIXTURE, import_file

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stores(postgres, state_factory):
    """(DynamoDB services, a connection to a PostgreSQL database of its own, rows loaded), both holding the fixture."""
    services = state_factory()
    import_file(services)
    with _new_database(postgres) as conn:
        with FIXTURE.open(encoding="utf-8") as lines:
            loaded = load_export(conn, lines)
        yield services, conn, loaded


def _new_database(postgres) -> psycopg.Connection:
    """A connection to a new, empty database on the server, with the schema applied."""
    database = f"ghost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    conn = psycopg.connect(postgres.dsn.rsplit("/", 1)[0] + f"/{database}")
    apply_schema(conn)
    return conn


def _ids(rows: list[tuple]) -> list[str]:
    return [row[0] for row in rows]


def _all(jobs, state=None) -> list[str]:
    found, cursor = [], None
    while True:
        page = jobs.list_jobs(limit=2, cursor=cursor, state=state)
        found += [job.job_id for job in page.jobs]
        if (cursor := page.cursor) is None:
            return found


def test_loading_is_complete_and_a_second_load_changes_nothing(stores):
    services, conn, loaded = stores
    assert loaded == {
        "job": 6,
        "step_record": 17,
        "attempt": 8,
        "operator_action": 3,
        "step_lease": 1,
        "idempotency_key": 1,
        "artifact": 20,
    }
    with FIXTURE.open(encoding="utf-8") as lines:
        again = load_export(conn, lines)
    assert all(n == 0 for n in again.values()), again


def test_a_file_whose_end_line_does_not_match_loads_nothing(postgres):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    end = json.loads(lines[-1])
    end["counts"]["job"] += 1
    with _new_database(postgres) as conn:
        with pytest.raises(InvalidExport, match="end line does not match"):
            load_export(conn, [*lines[:-1], json.dumps(end) + "\n"])
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


def test_newest_jobs_and_jobs_by_state(stores):
    services, conn, _ = stores
    newest = _all(services.jobs)
    assert len(newest) == 6
    assert _ids(answer(conn, "newest_jobs", limit=100)) == newest
    for state in JobState:
        assert _ids(answer(conn, "jobs_by_state", state=state.value, limit=100)) == _all(services.jobs, state), state


def test_job_by_id_and_by_idempotency_key(stores):
    services, conn, _ = stores
    for job_id in _all(services.jobs):
        job = services.jobs.get(job_id)
        row = conn.execute("SELECT state, attempt, updated_at FROM jobs WHERE job_id = %s", (job_id,)).fetchone()
        assert _ids(answer(conn, "job_by_id", job_id=job_id)) == [job_id]
        assert (row[0], row[1], row[2]) == (job.state.value, job.attempt, _time(job.updated_at))
    key = "fixture-key-1"
    assert services.jobs.get(job_id_for_key(key)).idempotency_key == key
    assert _ids(answer(conn, "job_by_idempotency_key", key=key)) == [job_id_for_key(key)]


def test_failed_since_and_stalled_at_every_boundary(stores):
    services, conn, _ = stores
    for job_id in _all(services.jobs):
        cutoff = services.jobs.get(job_id).updated_at  # each job's own time: >= and < both bite
        at = _time(cutoff)
        assert _ids(answer(conn, "failed_since", since=at)) == failed_since(services.jobs, timedelta(0), now=at)
        assert _ids(answer(conn, "stalled_jobs", cutoff=at)) == [
            job.job_id for job in stalled_jobs(services.jobs, cutoff)
        ]


def test_a_jobs_steps_attempts_actions_and_artifacts(stores):
    services, conn, _ = stores
    for job_id in _all(services.jobs):
        job = services.jobs.get(job_id)
        assert _ids(answer(conn, "job_steps", job_id=job_id)) == [step.step_id for step in job.steps]
        attempts = [attempt_id(job_id, 1)] + [entry["attemptId"] for entry in job.attempts]
        assert _ids(answer(conn, "job_attempts", job_id=job_id)) == attempts
        actions = [entry["actionId"] for entry in job.attempts] + (
            [job.cancellation["actionId"]] if job.cancellation else []
        )
        assert _ids(answer(conn, "job_operator_actions", job_id=job_id)) == actions
        stored = sorted((a.key, a.content_type, a.size) for a in services.artifacts.artifacts_of(job_id))
        assert answer(conn, "job_artifacts", job_id=job_id) == stored


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))

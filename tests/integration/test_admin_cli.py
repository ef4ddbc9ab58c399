"""ghost-engine-admin as an operator runs it: export, import and to-postgres, in processes of their own."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from storage.bootstrap import aws_client
from tests.integration.dynamo_backends import create_jobs_table
from tests.integration.execution_state import FIXTURE, FIXTURE_ARTIFACTS

pytestmark = pytest.mark.integration

ADMIN = [sys.executable, "-c", "from storage.admin import main; main()"]


def admin(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ADMIN, *args], env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2]
    )


@pytest.fixture
def env(emulator) -> dict:
    """The environment of an operator's shell: the emulator, a new table, demo mode."""
    table = f"jobs-{uuid.uuid4().hex[:8]}"
    create_jobs_table(aws_client(emulator.settings, "dynamodb"), table)
    return {**emulator.env, "JOBS_TABLE_NAME": table, "ARTIFACTS_BUCKET": "", "AWS_EMF_ENVIRONMENT": "Local"}


def test_import_then_export_from_the_command_line(env, tmp_path):
    imported = admin(env, "import", str(FIXTURE), "--artifacts", str(FIXTURE_ARTIFACTS))
    assert imported.returncode == 0, imported.stderr
    assert "wrote 20 artifact, 8 attempt, 1 idempotency_key, 6 job" in imported.stderr
    again = admin(env, "import", str(FIXTURE), "--artifacts", str(FIXTURE_ARTIFACTS))
    assert "wrote nothing; already there: 20 artifact" in again.stderr, again.stderr

    out = tmp_path / "state.jsonl"
    exported = admin(env, "export", "--out", str(out), "--with-artifacts", str(tmp_path / "bytes"), "--segments", "2")
    assert exported.returncode == 0, exported.stderr
    assert (
        f"exported 20 artifact, 8 attempt, 1 idempotency_key, 6 job, 3 operator_action, 1 step_lease, "
        f"17 step_record from {env['JOBS_TABLE_NAME']} to {out}" in exported.stderr
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(FIXTURE.read_text(encoding="utf-8").splitlines())
    assert not list(tmp_path.glob("*.partial"))
    copied = sorted(p.relative_to(tmp_path / "bytes") for p in (tmp_path / "bytes").rglob("*") if p.is_file())
    assert copied == sorted(p.relative_to(FIXTURE_ARTIFACTS) for p in FIXTURE_ARTIFACTS.rglob("*") if p.is_file())


def test_a_file_of_an_unknown_version_or_cut_short_is_refused_with_one_line_and_nothing_written(
    emulator, env, tmp_path
):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    newer = tmp_path / "newer.jsonl"
    newer.write_text(json.dumps(json.loads(lines[0]) | {"formatVersion": 9}) + "\n" + "".join(lines[1:]))
    result = admin(env, "import", str(newer))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: unsupported export format version 9")
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]))
    result = admin(env, "import", str(cut))
    assert result.returncode == 1 and "the file is incomplete" in result.stderr
    table = aws_client(emulator.settings, "dynamodb").scan(TableName=env["JOBS_TABLE_NAME"], Select="COUNT")
    assert table["Count"] == 0  # refused before its first job was written
    assert admin(env, "export").returncode == 2  # --out is required


def test_to_postgres_loads_the_fixture(postgres):
    result = admin({"PATH": "/usr/bin:/bin"}, "to-postgres", str(FIXTURE), "--dsn", postgres.dsn)
    assert result.returncode == 0, result.stderr
    assert "loaded into PostgreSQL:" in result.stderr and "6 job" in result.stderr
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM step_records").fetchone() == (17,)


def test_import_into_a_table_that_does_not_exist_says_so_before_writing_anything(emulator, env, tmp_path):
    missing = f"jobs-missing-{uuid.uuid4().hex[:8]}"
    result = admin(env, "import", str(FIXTURE), "--artifacts", str(FIXTURE_ARTIFACTS), "--table", missing)
    assert result.returncode == 1
    # One line, and no progress line that reads as if something had been imported.
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"error: table {missing} does not exist"), result.stderr
    assert "importing" not in result.stderr and "unavailable" not in result.stderr

    bucket = f"artifacts-missing-{uuid.uuid4().hex[:8]}"
    result = admin(env, "import", str(FIXTURE), "--artifacts", str(FIXTURE_ARTIFACTS), "--bucket", bucket)
    assert result.returncode == 1 and f"bucket {bucket} does not exist" in result.stderr, result.stderr
    table = aws_client(emulator.settings, "dynamodb").scan(TableName=env["JOBS_TABLE_NAME"], Select="COUNT")
    assert table["Count"] == 0  # nothing written into the table that is there either


def test_create_table_makes_the_table_the_restore_runbook_imports_into(emulator, env):
    """The README's restore, rehearsed locally as written: create-table, then import into it."""
    name = f"ghost-engine-jobs-new-{uuid.uuid4().hex[:6]}"
    made = admin(env, "create-table", name)
    assert made.returncode == 0, made.stderr
    assert f"created table {name}" in made.stderr
    client = aws_client(emulator.settings, "dynamodb")
    described = client.describe_table(TableName=name)["Table"]
    assert {index["IndexName"] for index in described["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2"}
    assert client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["AttributeName"] == "ttl"

    imported = admin(env, "import", str(FIXTURE), "--artifacts", str(FIXTURE_ARTIFACTS), "--table", name)
    assert imported.returncode == 0 and f"imported into {name}: wrote" in imported.stderr, imported.stderr

    again = admin(env, "create-table", name)
    assert again.returncode == 1 and f"table {name} already exists" in again.stderr
    for env_name in ("prod", "staging"):
        refused = admin({**env, "ENV": env_name}, "create-table", f"{name}-x")
        assert refused.returncode == 1 and "local emulator only" in refused.stderr, refused.stderr
        assert f"{name}-x" not in client.list_tables()["TableNames"]

"""ghost-engine-admin's guards that act before any request.

The commands themselves, against the emulator: tests/integration/test_admin_cli.py.
"""

from __future__ import annotations

import errno
import os
import sys

import pytest
from botocore.exceptions import EndpointConnectionError

from storage import admin, provision
from storage.aws_errors import translated


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The tables create-table made: nothing connects, the client and the CreateTable are fakes."""
    tables: list[str] = []
    monkeypatch.setattr(admin, "aws_client", lambda settings, service: object())
    monkeypatch.setattr(provision, "create_jobs_table", lambda client, name: tables.append(name) or True)
    return tables


def run_admin(monkeypatch, capsys, environ: dict[str, str | None], *args: str) -> tuple[int, str]:
    """Run ghost-engine-admin's entry point as the shell would: its exit code and its stderr (None: unset)."""
    for key, value in environ.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["ghost-engine-admin", *args])
    try:
        admin.main()  # returns on success
    except SystemExit as exited:
        return int(exited.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "why"),
    [
        ({"ENV": "local", "AWS_ENDPOINT_URL": ""}, "AWS_ENDPOINT_URL is empty (AWS itself)"),
        (
            {"ENV": "local", "AWS_ENDPOINT_URL": "https://dynamodb.eu-west-1.amazonaws.com"},
            "AWS_ENDPOINT_URL is https://dynamodb.eu-west-1.amazonaws.com",
        ),
        ({"ENV": "local", "AWS_ENDPOINT_URL": "http://10.0.0.7:4566"}, "AWS_ENDPOINT_URL is http://10.0.0.7:4566"),
        ({"ENV": "prod", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "ENV is prod"),
    ],
)
def test_create_table_refuses_anything_but_the_local_emulator_in_one_line(monkeypatch, capsys, made, environ, why):
    """ENV=local alone is not enough: with AWS itself or another host's endpoint it would make a real table."""
    code, stderr = run_admin(monkeypatch, capsys, environ, "create-table", "ghost-engine-jobs-new")
    assert code == 1 and made == []
    assert stderr.startswith("error: create-table is for the local emulator only"), stderr
    assert why in stderr and len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4700", "http://localhost:4566", "http://[::1]:4566"])
def test_create_table_makes_the_table_on_an_emulator_on_loopback(monkeypatch, capsys, made, endpoint):
    code, stderr = run_admin(
        monkeypatch, capsys, {"ENV": "local", "AWS_ENDPOINT_URL": endpoint}, "create-table", "ghost-engine-jobs-new"
    )
    assert code == 0, stderr
    assert made == ["ghost-engine-jobs-new"] and f"created table ghost-engine-jobs-new on {endpoint}" in stderr


@pytest.mark.parametrize("name", ["", "ab", "bad name!", "x" * 256], ids=["empty", "short", "space", "long"])
def test_create_table_refuses_a_name_dynamodb_would_refuse_as_a_usage_error(monkeypatch, capsys, made, name):
    """The emulator takes "bad name!" (AWS would not); an empty name reached it as "unreachable"."""
    environ = {"ENV": "local", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    code, stderr = run_admin(monkeypatch, capsys, environ, "create-table", name)
    assert code == 2 and made == []
    assert stderr.startswith(f"usage error: Invalid value for 'NAME': {name!r} is not a table name"), stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.fixture
def exported(monkeypatch) -> None:
    """export connects nowhere: its clients are placeholders, and what it reads is two fake entities."""
    monkeypatch.setattr(admin, "aws_client", lambda settings, service: object())
    monkeypatch.setattr(admin, "export_entities", lambda source, **kwargs: iter([{"type": "header"}, {"type": "job"}]))


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"ENV": "prod", "ARTIFACTS_BUCKET": None}, "error: ARTIFACTS_BUCKET must be set outside ENV=local"),
        ({"AWS_ENDPOINT_URL": "notaurl"}, "error: AWS_ENDPOINT_URL is not valid: notaurl"),
        ({"JOBS_TABLE_NAME": ""}, "error: JOBS_TABLE_NAME is not valid: ''"),
    ],
    ids=["prod-without-bucket", "endpoint-not-a-url", "table-name"],
)
def test_a_bad_setting_is_one_line_naming_it_and_a_usage_error(monkeypatch, capsys, tmp_path, exported, environ, says):
    code, stderr = run_admin(monkeypatch, capsys, environ, "export", "--out", str(tmp_path / "state.jsonl"))
    assert code == 2 and stderr.startswith(says) and len(stderr.strip().splitlines()) == 1, stderr


def test_export_into_a_directory_that_is_not_there_is_refused_before_reading(monkeypatch, capsys, exported):
    def never(*args, **kwargs):
        raise AssertionError("the table was read")

    monkeypatch.setattr(admin, "export_entities", never)
    code, stderr = run_admin(monkeypatch, capsys, {}, "export", "--out", "/missing/dir/x.jsonl")
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "/missing/dir/x.jsonl: there is no directory /missing/dir" in stderr


def test_export_that_cannot_write_says_so_in_one_line_and_leaves_no_file(monkeypatch, capsys, tmp_path, exported):
    def disk_full(source, **kwargs):
        yield {"type": "header"}
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(admin, "export_entities", disk_full)
    out = tmp_path / "state.jsonl"
    code, stderr = run_admin(monkeypatch, capsys, {}, "export", "--out", str(out))
    assert code == 1 and stderr.strip().splitlines()[-1] == f"error: cannot write {out}: No space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("endpoint", "lines"),
    [
        (
            "http://127.0.0.1:4566",
            [
                "error: dynamodb is unreachable at http://127.0.0.1:4566",
                "hint: http://127.0.0.1:4566 is the default endpoint: start the local stack (make run), or paste the "
                "export lines it printed under 'Operators'",
            ],
        ),
        ("http://127.0.0.1:4700", ["error: dynamodb is unreachable at http://127.0.0.1:4700"]),
    ],
    ids=["local-default", "pasted"],
)
def test_an_unreachable_table_is_named_with_its_endpoint(monkeypatch, capsys, tmp_path, exported, endpoint, lines):
    def unreachable(source, **kwargs):
        with translated("dynamodb", "Scan"):
            raise EndpointConnectionError(endpoint_url=endpoint)
        yield

    monkeypatch.setattr(admin, "export_entities", unreachable)
    code, stderr = run_admin(
        monkeypatch, capsys, {"AWS_ENDPOINT_URL": endpoint}, "export", "--out", str(tmp_path / "state.jsonl")
    )
    assert code == 1 and stderr.strip().splitlines()[-len(lines) :] == lines, stderr

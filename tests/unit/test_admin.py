"""ghost-engine-admin's guards that act before any request.

The commands themselves, against the emulator: tests/integration/test_admin_cli.py.
"""

from __future__ import annotations

import sys

import pytest

from storage import admin, provision


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The tables create-table made: nothing connects, the client and the CreateTable are fakes."""
    tables: list[str] = []
    monkeypatch.setattr(admin, "aws_client", lambda settings, service: object())
    monkeypatch.setattr(provision, "create_jobs_table", lambda client, name: tables.append(name) or True)
    return tables


def run_admin(monkeypatch, capsys, environ: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ghost-engine-admin's entry point as the shell would: its exit code and its stderr."""
    for key, value in environ.items():
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

"""Architecture rules that code review would otherwise have to catch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sources(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def test_api_and_tasks_never_create_aws_resources():
    """Production resources come from Terraform; only the local stack's code path provisions."""
    pattern = re.compile(r"create_table|create_bucket|create_queue")
    offenders = [str(p) for pkg in ("api", "tasks") for p in _sources(pkg) if pattern.search(p.read_text())]
    assert offenders == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_dependencies_flow_one_way():
    """api -> tasks -> pipeline; api/tasks -> storage; storage and pipeline import neither."""
    forbidden = {
        "pipeline": {"api", "tasks", "storage", "boto3", "botocore", "celery", "flask"},
        "storage": {"api", "tasks", "pipeline", "celery", "flask"},
        "tasks": {"api"},
    }
    for package, banned in forbidden.items():
        for path in _sources(package):
            assert not (_imports(path) & banned), f"{path} imports {_imports(path) & banned}"


def test_no_vendor_errors_outside_storage():
    """botocore's exceptions are translated inside storage/."""
    for package in ("api", "tasks", "pipeline"):
        for path in _sources(package):
            assert "botocore" not in _imports(path), path

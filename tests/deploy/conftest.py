"""`make deploy-check`: the Terraform checked, tested, applied to a fresh emulator, booted and destroyed.

Each step adds a line to the report printed at the end of the run (resources applied, the job
that reached done, timings), or the line saying why it was skipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import report as run_report
from tests.deploy.terraform_cli import (
    SOURCE,
    Terraform,
    cli_config,
    find_mirror,
    find_terraform,
    locked_provider_version,
)

pytestmark = pytest.mark.deploy


def report(line: str) -> None:
    """Add a line to the deploy-check report, printed at the end of the run (tests/report.py)."""
    run_report.add(f"deploy-check: {line}")


@pytest.fixture(scope="session")
def terraform_tools(tmp_path_factory) -> tuple[str, Path]:
    """The terraform binary and a CLI configuration for the provider mirror; skip, saying which is missing."""
    binary = find_terraform()
    if binary is None:
        report("SKIPPED: terraform not found (set TERRAFORM_BIN or put terraform on PATH)")
        pytest.skip("SKIPPED: terraform not found")
    version = locked_provider_version()
    mirror = find_mirror(version)
    if mirror is None:
        report(f"SKIPPED: hashicorp/aws {version} provider mirror not found (set TF_PROVIDER_MIRROR)")
        pytest.skip(f"SKIPPED: provider mirror for hashicorp/aws {version} not found")
    config = tmp_path_factory.mktemp("terraform-cli") / "offline.tfrc"
    config.write_text(cli_config(mirror))
    return binary, config


def scratch_copy(tools: tuple[str, Path], workdir: Path) -> Terraform:
    """deploy/terraform copied to ``workdir`` (never its .terraform or state), with a Terraform to run there."""
    shutil.copytree(SOURCE, workdir, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfvars"))
    binary, config = tools
    return Terraform(binary, config, workdir)

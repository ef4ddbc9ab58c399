"""Terraform for the deploy checks: found on this machine, run offline from a provider mirror.

Neither terraform nor the hashicorp/aws provider comes from PyPI, npm or Debian, so nothing
installs them: the checks find them (TERRAFORM_BIN / PATH, TF_PROVIDER_MIRROR / the usual
plugin directories) and are SKIPPED, with a line saying which one is missing, where absent.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "deploy" / "terraform"
PROVIDER = "registry.terraform.io/hashicorp/aws"
OVERRIDE_TEMPLATE = Path(__file__).with_name("emulator_override.tf.in")

# Where Terraform itself looks for plugins on Linux (its implied local mirrors), and /opt/tf-plugins.
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)

# Provider `endpoints` keys of every AWS service the configuration manages or reads.
EMULATED_SERVICES = (
    "appautoscaling",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "iam",
    "kms",
    "logs",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
)


def locked_provider_version() -> str:
    """The aws provider version .terraform.lock.hcl pins."""
    lock = (SOURCE / ".terraform.lock.hcl").read_text()
    block = lock.split(f'provider "{PROVIDER}"', 1)[1]
    return block.split("version", 1)[1].split('"')[1]


def find_terraform() -> str | None:
    """The terraform binary (TERRAFORM_BIN, else PATH), or None."""
    explicit = os.environ.get("TERRAFORM_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("terraform")


def find_mirror(version: str) -> Path | None:
    """A filesystem mirror holding the locked aws provider (TF_PROVIDER_MIRROR first), or None."""
    explicit = os.environ.get("TF_PROVIDER_MIRROR")
    candidates = (Path(explicit),) if explicit else MIRROR_CANDIDATES
    for mirror in candidates:
        if (mirror / PROVIDER / version / "linux_amd64").is_dir():
            return mirror
    return None


def cli_config(mirror: Path) -> str:
    """A CLI configuration that installs the aws provider from the mirror and never from the network."""
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{PROVIDER}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
        "}\n"
    )


def render_override(endpoint: str) -> str:
    """The test-only override file that points every service at the emulator."""
    lines = "\n".join(f'    {service} = "{endpoint}"' for service in EMULATED_SERVICES)
    return string.Template(OVERRIDE_TEMPLATE.read_text()).substitute(endpoints=lines)


@dataclass
class Terraform:
    """Runs terraform in one working directory with an offline CLI configuration."""

    binary: str
    config_file: Path
    workdir: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(self.config_file),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check over the network
            "TF_PLUGIN_CACHE_DIR": "",
        }

    def run(
        self, *args: str, timeout: float = 600, cwd: Path | None = None
    ) -> tuple[subprocess.CompletedProcess, float]:
        """Run one terraform command; return its result and how long it took."""
        started = time.monotonic()
        result = subprocess.run(
            [self.binary, *args],
            cwd=cwd or self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return result, time.monotonic() - started

    def check(self, *args: str, timeout: float = 600, cwd: Path | None = None) -> tuple[str, float]:
        """Run one terraform command that must succeed; return its stdout and duration."""
        result, elapsed = self.run(*args, timeout=timeout, cwd=cwd)
        assert result.returncode == 0, (
            f"terraform {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
        return result.stdout, elapsed

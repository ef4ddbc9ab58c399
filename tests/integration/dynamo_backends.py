"""A second DynamoDB implementation for the integration tests: dynalite, next to the emulator (moto).

moto is the AWS emulator the whole local stack runs on. dynalite (npm, pinned in package.json,
installed by `make test`) is an independent implementation of DynamoDB's rules, so a conditional
write that behaves the same on both is not an artefact of one emulator. The fixtures that use
this module are at the end of conftest.py.

Known differences, found by running the job store's contract on both:
- dynalite ignores ReturnValuesOnConditionCheckFailure: a failed condition returns no item.
- dynalite has no UpdateTimeToLive (and DescribeTimeToLive always says DISABLED); moto stores the
  setting but deletes nothing either, so no test relies on TTL expiry.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_stack import HOST, ROOT, port_free, stop_process_group, wait_http
from storage.aws_errors import error_code
from storage.provision import _create_table
from storage.settings import Settings

DYNAMO_BACKENDS = ("moto", "dynalite")
DYNALITE_CLI = ROOT / "node_modules" / "dynalite" / "cli.js"


class Dynalite:
    """dynalite on 127.0.0.1:``port``, in memory, started and stopped by the test session."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def settings(self) -> Settings:
        """Local settings with only the DynamoDB endpoint pointing here (dynalite has no S3 or SQS)."""
        # A minimal environment: nothing from the developer's shell (AWS_ENDPOINT_URL...) leaks in.
        base = Settings.from_env({"ENV": "local", "AWS_REGION": "us-east-1"})
        return dataclasses.replace(base, aws_endpoint_url=self.url, artifacts_bucket=None)

    def start(self) -> None:
        node = shutil.which("node")
        if node is None or not DYNALITE_CLI.exists():
            raise RuntimeError(f"dynalite is not installed ({DYNALITE_CLI}): run `make test` or `npm ci`")
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                # Tables go ACTIVE at once instead of after dynalite's default 500 ms, which
                # boto3's table_exists waiter would otherwise wait out for 20 s.
                [
                    node,
                    str(DYNALITE_CLI),
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--createTableMs",
                    "0",
                    "--deleteTableMs",
                    "0",
                    "--updateTableMs",
                    "0",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_http(self.url, 30, self.proc)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) and wait, so no process is left and the port is free."""
        proc, self.proc = self.proc, None
        stop_process_group(proc, timeout=10)


def create_jobs_table(client: Any, name: str) -> None:
    """The jobs table in provision's shape (keys, GSI1, GSI2, TTL) on either implementation."""
    try:
        _create_table(client, name)
    except ClientError as exc:
        # Only dynalite lacks UpdateTimeToLive; the table and its indexes exist by then.
        if not (error_code(exc) == "UnknownOperationException" and exc.operation_name == "UpdateTimeToLive"):
            raise

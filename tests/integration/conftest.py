"""Real processes on loopback: moto's server, Celery workers and gunicorn, started and stopped here."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from local_stack import Stack, StackConfig
from storage.bootstrap import Services, aws_client, build_services
from storage.dynamo import DynamoJobStore
from storage.provision import _create_bucket
from storage.settings import Settings
from tests.integration.dynamo_backends import DYNAMO_BACKENDS, Dynalite, create_jobs_table
from tests.integration.postgres_server import PostgresServer

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float) -> None:
    """Poll ``condition`` every 0.25 s until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(scope="session", autouse=True)
def _aws_credentials() -> Iterator[None]:
    """boto3 in the test process signs with the emulator's dummy credentials."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack-logs")


@pytest.fixture(scope="session")
def emulator(logs_dir) -> Iterator[Stack]:
    """moto's server on a free port, shared by every integration test."""
    stack = Stack(StackConfig(emulator_port=free_port()), log_dir=logs_dir / "emulator")
    stack.start_emulator()
    yield stack
    stack.stop()


class LiveStack:
    """A worker and an API on the shared emulator, with their own table, bucket and queue."""

    def __init__(self, emulator: Stack, logs_dir: Path, env: dict[str, str], *, measured: bool = True) -> None:
        suffix = uuid.uuid4().hex[:8]
        names = {
            "JOBS_TABLE_NAME": f"jobs-{suffix}",
            "ARTIFACTS_BUCKET": f"artifacts-{suffix}",
            "QUEUE_NAME": f"jobs-{suffix}",
            "DEAD_LETTER_QUEUE_NAME": f"jobs-dlq-{suffix}",
        }
        self.log_dir = logs_dir / suffix
        self.stack = Stack(
            StackConfig(emulator_port=emulator.config.emulator_port, api_port=free_port(), api_workers=2),
            # Short long-polls: a stopped worker's last poll can still take a message
            # (on SQS too); it comes back after the visibility timeout, too slow for a test.
            # A roomier AWS timeout than production's 1 s: the shared emulator, on two busy
            # cores, can take longer than that, which is not what these tests are about
            # (test_outage.py runs with the production value and proves the fast 503s).
            extra_env={**names, "SQS_WAIT_TIME_SECONDS": "1", "AWS_TIMEOUT_SECONDS": "5", **env},
            log_dir=self.log_dir,
            measured=measured,
        )
        self.stack.provision()
        self.services: Services = build_services(self.stack.settings)
        self.url = self.stack.api_url
        self.workers = 0

    def start_worker(self, concurrency: int = 2) -> str:
        self.workers += 1
        name = f"worker{self.workers}"
        self.stack.start_worker(name, concurrency=concurrency)
        return name

    def start_api(self) -> None:
        self.stack.start_api()

    def stop(self) -> None:
        self.stack.stop()

    def submit(self, body: dict | None = None, headers: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/generate-scene",
            json=body or {"prompt": "a spooky hallway", "seed": 123, "style": "doom"},
            headers=headers or {},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def status(self, job_id: str) -> dict:
        response = requests.get(f"{self.url}/status/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_terminal(self, job_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.status(job_id)
            if body["state"] in {"done", "failed", "cancelled"}:
                return body
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} not terminal after {timeout}s: {body}")

    def send_task(self, name: str, *args, **kwargs) -> None:
        """Send one Celery message to this stack's queue, from a process configured like its API."""
        code = (
            "import json, sys; from tasks import app; "
            "app.send_task(sys.argv[1], args=json.loads(sys.argv[2]), kwargs=json.loads(sys.argv[3]))"
        )
        subprocess.run(
            [sys.executable, "-c", code, name, json.dumps(args), json.dumps(kwargs)],
            env=self.stack.env,
            check=True,
            timeout=60,
            cwd=self.stack_root,
        )

    @property
    def stack_root(self) -> Path:
        return Path(__file__).resolve().parents[2]

    def log_events(self, process: str) -> list[dict]:
        """The JSON log lines of one of this stack's processes."""
        return [json.loads(line) for line in self.log_lines(process) if line.startswith("{")]

    def worker_events(self) -> list[dict]:
        """The JSON log lines of every worker this stack started."""
        return [event for path in sorted(self.log_dir.glob("worker*.log")) for event in self.log_events(path.stem)]

    def log_lines(self, process: str) -> list[str]:
        path = self.log_dir / f"{process}.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def raw_item(self, job_id: str) -> dict:
        client = aws_client(self.stack.settings, "dynamodb")
        return client.get_item(
            TableName=self.stack.settings.jobs_table_name, Key={"jobId": {"S": job_id}}, ConsistentRead=True
        )["Item"]


@pytest.fixture(scope="module")
def make_stack(emulator, logs_dir) -> Iterator[Callable[..., LiveStack]]:
    """Build LiveStacks, stopped when the test module ends; env overrides settings for that stack only.

    ``measured=False`` runs the stack's worker and API without coverage's tracer under `make test
    COVERAGE=1`: for a test about load, whose lines the other tests cover.

    Per module, not per session: an idle stack still polls the shared emulator (its worker's long
    polls, heartbeats, sweeps), and a dozen of them left running slow every later test down.
    """
    made: list[LiveStack] = []

    def make(
        env: dict[str, str] | None = None, *, worker: bool = True, api: bool = True, measured: bool = True
    ) -> LiveStack:
        live = LiveStack(emulator, logs_dir, env or {}, measured=measured)
        made.append(live)
        if worker:
            live.start_worker()
        if api:
            live.start_api()
        return live

    yield make
    for live in made:
        live.stop()


@pytest.fixture(scope="module")
def live(make_stack) -> LiveStack:
    """The default stack: one worker, one API, S3 artifacts."""
    return make_stack({"FAULT_DRILLS": "1"})


# --- DynamoDB implementations: the emulator and dynalite (see dynamo_backends.py) ---


@pytest.fixture(scope="session")
def dynalite(logs_dir) -> Iterator[Dynalite]:
    """dynalite (npm) on a free loopback port, in memory; stopped, port freed, at session end."""
    server = Dynalite(free_port(), logs_dir / "dynalite.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=DYNAMO_BACKENDS)
def dynamo_settings(request) -> Settings:
    """Settings whose DynamoDB endpoint is one implementation: a test using this runs once per backend.

    Test ids end in ``[moto]`` or ``[dynalite]``. Use only the DynamoDB client of these settings:
    dynalite serves nothing else. dynalite is started only when a test asks for it.
    """
    if request.param == "moto":
        return request.getfixturevalue("emulator").settings
    return request.getfixturevalue("dynalite").settings


@pytest.fixture(scope="session")
def job_store_factory(dynamo_settings) -> Callable[[], DynamoJobStore]:
    """Make a DynamoJobStore on a new table of provision's shape, on each backend in turn.

    Any integration test (or module-scoped fixture) that takes this runs on moto and on dynalite,
    so conditional writes are shown to behave alike on two implementations of DynamoDB's rules.
    """
    client = aws_client(dynamo_settings, "dynamodb")

    def make() -> DynamoJobStore:
        name = f"jobs-{uuid.uuid4().hex[:8]}"
        create_jobs_table(client, name)
        return DynamoJobStore(client, name)

    return make


@pytest.fixture(scope="session")
def state_factory(dynamo_settings) -> Callable[..., Services]:
    """Make Services on a new jobs table of provision's shape, on each backend in turn.

    On moto the artifacts go to a new bucket (unless ``demo=True``); dynalite has no S3, so
    there they are demo-mode items in the table.
    """
    client = aws_client(dynamo_settings, "dynamodb")

    def make(*, demo: bool = False) -> Services:
        suffix = uuid.uuid4().hex[:8]
        settings = dataclasses.replace(dynamo_settings, jobs_table_name=f"jobs-{suffix}", artifacts_bucket=None)
        create_jobs_table(client, settings.jobs_table_name)
        if dynamo_settings.artifacts_bucket is not None and not demo:  # the emulator serves S3 too
            settings = dataclasses.replace(settings, artifacts_bucket=f"artifacts-{suffix}")
            _create_bucket(aws_client(settings, "s3"), settings.artifacts_bucket, settings.region)
        return build_services(settings)

    return make


@pytest.fixture(scope="session")
def postgres(logs_dir) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server (Debian's postgresql package); the test is SKIPPED where it cannot start."""
    server = PostgresServer(free_port())
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"SKIPPED: PostgreSQL could not start here: {exc}")
    yield server
    server.stop()

"""The image's Python environment, built as deploy/docker/Dockerfile builds it, boots and gets a job done.

No Docker engine runs here, so this builds the same environment: a clean virtualenv (no system
site-packages, nothing of the dev virtualenv) given the locked, hash-checked runtime set
(deploy/docker/requirements.txt) with the Dockerfile's pip flags, then the project's wheel with
--no-deps, built from the files the image's build context admits by the locked build backend; then
`pip check`. The API and the worker start from it with the ECS task definitions' commands
(deploy/terraform/ecs.tf), outside the source tree, against the emulator (from the dev virtualenv,
standing in for AWS), and a job reaches `done`. A dependency only a dev extra brings in would fail
here, not in production.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local_stack import Stack, StackConfig, stop_process_group, wait_http
from tests.deploy.conftest import report
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
ECS = ROOT / "deploy" / "terraform" / "ecs.tf"

pytestmark = pytest.mark.deploy


def _pip(venv: Path, *args: str, timeout: float = 900) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _context(dest: Path) -> Path:
    """The Docker build context: only what Dockerfile.dockerignore admits (an allow-list)."""
    rules = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()]
    admitted = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    for entry in admitted:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(source, dest / entry, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        elif source.is_file():
            (dest / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / entry)
    return dest


def _runtime_flags() -> list[str]:
    """The pip flags the Dockerfile installs the runtime set with, read from the Dockerfile itself."""
    found = re.search(
        r"pip install (--no-deps --require-hashes[^\n]*?) -r /tmp/requirements\.txt",
        (DOCKER / "Dockerfile").read_text(),
    )
    assert found, "the Dockerfile no longer installs deploy/docker/requirements.txt with --no-deps --require-hashes"
    return found[1].split()


def _ecs_command(service: str) -> list[str]:
    """The service's command from ecs.tf, with its port interpolation filled in."""
    block = re.search(rf"^\s+{service} = \{{\n\s+command\s+= (\[.*?\])\n", ECS.read_text(), re.M)
    assert block, f"no command for {service} in {ECS}"
    return json.loads(block[1])


@pytest.fixture(scope="module")
def image_env(tmp_path_factory) -> Path:
    """The image's virtualenv: the locked runtime set, then the project's wheel, then pip check."""
    base = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    # Stage 1 (build): the locked build backend, the project's wheel built with it, no isolation.
    builder = base / "build-venv"
    subprocess.run([sys.executable, "-m", "venv", str(builder)], check=True, timeout=120)
    _pip(builder, "install", "--no-deps", "--require-hashes", "-r", str(DOCKER / "build-requirements.txt"))
    context = _context(base / "context")
    _pip(builder, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(base / "wheels"), str(context))
    (wheel,) = (base / "wheels").glob("ghost_engine-*.whl")
    # Stage 2 (runtime): a virtualenv that sees nothing else, the runtime set, the wheel, pip check.
    venv = base / "runtime-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "install", *_runtime_flags(), "-r", str(DOCKER / "requirements.txt"))
    _pip(venv, "install", "--no-deps", "--no-index", str(wheel))
    _pip(venv, "check")
    report(
        f"image environment: locked runtime set and {wheel.name} installed, pip check clean,"
        f" in {time.monotonic() - started:.0f} s"
    )
    return venv


def test_the_image_environment_holds_the_runtime_set_and_nothing_of_dev(image_env):
    installed = {
        entry["name"].lower().replace("_", "-") for entry in json.loads(_pip(image_env, "list", "--format=json"))
    }
    locked = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (DOCKER / "requirements.txt").read_text().splitlines()
        if re.match(r"^[A-Za-z0-9]", line)
    }
    assert "ghost-engine" in installed
    for dev_only in ("moto", "pytest", "hypothesis", "ruff", "mypy", "coverage", "psycopg"):
        assert dev_only not in installed, f"{dev_only} is not part of the runtime set"
    # pip freeze names what pip itself brought, plus the locked set (markers may skip a few).
    assert installed - locked - {"ghost-engine", "pip", "setuptools", "wheel"} == set()
    # The code comes from the installed wheel, not from a source tree on the path.
    where = subprocess.run(
        [
            str(image_env / "bin" / "python"),
            "-c",
            "import api, tasks, storage, pipeline, celeryconfig as c; print(c.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=image_env,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(image_env)), where.stdout


@pytest.fixture(scope="module")
def booted(image_env, tmp_path_factory) -> Iterator[tuple[str, dict[str, Path]]]:
    """The emulator (dev virtualenv) provisioned; the API and worker from the image's virtualenv."""
    logs = tmp_path_factory.mktemp("image-logs")
    suffix = uuid.uuid4().hex[:8]
    names = {
        "JOBS_TABLE_NAME": f"jobs-{suffix}",
        "ARTIFACTS_BUCKET": f"artifacts-{suffix}",
        "QUEUE_NAME": f"jobs-{suffix}",
        "DEAD_LETTER_QUEUE_NAME": f"jobs-dlq-{suffix}",
    }
    stack = Stack(
        StackConfig(emulator_port=free_port()),
        extra_env={**names, "SQS_WAIT_TIME_SECONDS": "1"},
        log_dir=logs / "emulator",
    )
    stack.start_emulator()  # and provisions the table, bucket and queues
    # The processes get the app's settings and nothing of this process's environment: no
    # PYTHONPATH, no dev virtualenv on PATH, no coverage; PATH starts with the image's venv.
    settings = {key: value for key, value in stack.env.items() if key != "PYTHONPATH" and os.environ.get(key) != value}
    settings |= {key: stack.env[key] for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    env = {
        **settings,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "PATH": f"{image_env / 'bin'}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(logs),
        "PYTHONUNBUFFERED": "1",
        "WORKER_HEARTBEAT_FILE": str(logs / "worker.alive"),
    }
    port = free_port()
    api_command = _ecs_command("api")
    bind = api_command.index("--bind") + 1
    assert api_command[bind].startswith("0.0.0.0:")
    api_command[bind] = f"127.0.0.1:{port}"  # one change: each ECS task has its own network namespace
    workdir = logs / "app"  # not the source tree: the code must come from the installed wheel
    workdir.mkdir()
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in (("worker", _ecs_command("worker")), ("api", api_command)):
            with (logs / f"{name}.log").open("ab") as out:
                procs[name] = subprocess.Popen(
                    command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", 60, procs["api"])
        yield url, {name: logs / f"{name}.log" for name in procs}
    finally:
        for proc in procs.values():
            stop_process_group(proc, timeout=30)
        stack.stop()


def test_api_and_worker_from_the_image_environment_get_a_job_done(booted):
    url, logs = booted
    started = time.monotonic()
    submitted = requests.post(
        f"{url}/generate-scene", json={"prompt": "a spooky hallway", "seed": 123, "style": "doom"}, timeout=30
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["jobId"]
    deadline = time.monotonic() + 90
    body: dict = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{url}/status/{job_id}", timeout=30).json()
        if body["state"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert body.get("state") == "done", f"{body}\nworker log:\n{logs['worker'].read_text()[-3000:]}"
    report(
        f"image environment: api and worker booted with the ECS commands, job {job_id} done"
        f" in {time.monotonic() - started:.1f} s"
    )

"""The faulted stack: the emulator behind the fault proxy, and a worker and an API that reach AWS only through it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_stack import Stack, StackConfig
from tests.faults.proxy import FaultProxy
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def start_emulator_behind_proxy(log_dir: Path, *, seed: int = 13) -> tuple[Stack, FaultProxy]:
    """The emulator on a free port and the proxy in front of it, faults off.

    The emulator builds the queue URLs it hands out from MOTO_PORT: the proxy's port, so
    kombu's requests to a queue's URL go through the proxy as well.
    """
    emulator_port = free_port()
    proxy = FaultProxy(emulator_port, seed=seed).start()
    emulator = Stack(
        StackConfig(emulator_port=emulator_port), extra_env={"MOTO_PORT": str(proxy.port)}, log_dir=log_dir
    )
    emulator.start_emulator()
    return emulator, proxy


def faulted_stack(proxy: FaultProxy, log_dir: Path, env: dict[str, str] | None = None) -> Stack:
    """A stack (own table, bucket, queues) whose every AWS endpoint is the proxy; provisioned, nothing started."""
    suffix = uuid.uuid4().hex[:8]
    stack = Stack(
        StackConfig(emulator_port=proxy.port, api_port=free_port(), api_workers=2),
        extra_env={
            "JOBS_TABLE_NAME": f"jobs-{suffix}",
            "ARTIFACTS_BUCKET": f"artifacts-{suffix}",
            "QUEUE_NAME": f"jobs-{suffix}",
            "DEAD_LETTER_QUEUE_NAME": f"jobs-dlq-{suffix}",
            "CONTROL_PREFIX": f"f{suffix}-",
            # AWS_ENDPOINT_URL and the broker URL (built from it) name the proxy.
            "AWS_ENDPOINT_URL": proxy.url,
            # Clients give up on an answer after 1 s (production's value): a "slow" fault is longer.
            "AWS_TIMEOUT_SECONDS": "1",
            "SQS_WAIT_TIME_SECONDS": "1",
            # The visibility timeout and the step limit are production's (30 s, 120 s) unless a test says.
            "WORKER_LIVENESS_SECONDS": "30",
            **(env or {}),
        },
        log_dir=log_dir / suffix,
    )
    stack.provision()
    return stack


@pytest.fixture(scope="session")
def fault_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="session")
def emulator_and_proxy(fault_logs) -> Iterator[tuple[Stack, FaultProxy]]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    emulator, proxy = start_emulator_behind_proxy(fault_logs / "emulator")
    yield emulator, proxy
    emulator.stop()
    proxy.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def proxy(emulator_and_proxy) -> Iterator[FaultProxy]:
    """The proxy, faults off and counts zero at the start and the end of each test."""
    proxy = emulator_and_proxy[1]
    proxy.clear()
    proxy.reset_counts()
    yield proxy
    proxy.clear()


@pytest.fixture
def emulator(emulator_and_proxy) -> Stack:
    return emulator_and_proxy[0]


@pytest.fixture
def make_faulted_stack(proxy, fault_logs) -> Iterator[Callable[..., Stack]]:
    """Build faulted stacks (stopped when the test ends)."""
    made: list[Stack] = []

    def make(env: dict[str, str] | None = None) -> Stack:
        stack = faulted_stack(proxy, fault_logs, env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()

"""Control queues left by killed processes are swept; a live process's are not (tasks/control_sweep.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
import requests

from local_stack import wait_http
from storage.bootstrap import aws_client
from tests.integration.conftest import LiveStack, free_port
from tests.integration.test_flower import AUTH, eventually

# One beat a second, so a queue is stale 5 s after its owner died; every worker sweeps each second.
HEARTBEAT = {"CONTROL_HEARTBEAT_SECONDS": "1", "SWEEP_INTERVAL_SECONDS": "1"}


@pytest.fixture(scope="module")
def swept(make_stack) -> LiveStack:
    # A prefix of its own: this stack's one-second threshold must not judge other stacks' queues.
    prefix = f"gs{uuid.uuid4().hex[:6]}-ctl-"
    live = make_stack({"CONTROL_PREFIX": prefix, "FLOWER_BASIC_AUTH": ":".join(AUTH), **HEARTBEAT})
    live.stack.config.flower_port = free_port()
    live.stack.start_flower()
    return live  # stopped with the module (make_stack), before its beats could load later tests


class ControlPlane:
    """What the emulator holds under one control prefix: queue names and subscribed queue names."""

    def __init__(self, live: LiveStack) -> None:
        settings = live.stack.settings
        self.prefix = settings.control_prefix
        self.sqs = aws_client(settings, "sqs")
        self.sns = aws_client(settings, "sns")

    def queues(self) -> set[str]:
        urls = self.sqs.list_queues(QueueNamePrefix=self.prefix).get("QueueUrls", [])
        return {url.rsplit("/", 1)[-1] for url in urls}

    def subscribed(self) -> set[str]:
        topics = [t["TopicArn"] for t in self.sns.list_topics()["Topics"] if f":{self.prefix}" in t["TopicArn"]]
        return {
            sub["Endpoint"].rsplit(":", 1)[-1]
            for topic in topics
            for sub in self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        }


def _flower_queues_settled(live: LiveStack, plane: ControlPlane, port: int, before: set[str]) -> set[str] | None:
    """The queues a Flower made since ``before``, once its event and reply queues both exist."""
    requests.get(f"http://127.0.0.1:{port}/api/workers", params={"refresh": "1"}, auth=AUTH, timeout=15)
    new = plane.queues() - before
    kinds = {"event": any("celeryev" in q for q in new), "reply": any(q.endswith("reply-celery-pidbox") for q in new)}
    return new if all(kinds.values()) else None


def test_queues_of_a_killed_worker_and_flower_are_swept_and_live_ones_stay(swept):
    plane = ControlPlane(swept)
    survivor_port = swept.stack.config.flower_port
    survivors = eventually(
        lambda: _flower_queues_settled(swept, plane, survivor_port, set()), 30, "live Flower's queues"
    )
    survivors |= eventually(lambda: {q for q in plane.queues() if "worker1" in q}, 30, "worker1's pidbox queue")

    victim_worker = swept.start_worker()
    mine = eventually(lambda: {q for q in plane.queues() if victim_worker in q}, 30, f"{victim_worker}'s pidbox queue")
    before = plane.queues()
    port = free_port()
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1", f"--port={port}"],
        env=swept.stack.env,
        cwd=swept.stack_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthcheck", 30, flower)
        mine |= eventually(lambda: _flower_queues_settled(swept, plane, port, before), 30, "victim Flower's queues")
        assert mine <= plane.subscribed() | {q for q in mine if q.endswith("reply-celery-pidbox")}
    finally:
        os.killpg(flower.pid, signal.SIGKILL)
        flower.wait(10)
    swept.stack.stop_process(victim_worker, kill=True)

    eventually(lambda: not (mine & plane.queues()), 30, "the killed processes' queues deleted")
    eventually(lambda: not (mine & plane.subscribed()), 10, "their subscriptions removed")
    assert survivors <= plane.queues(), f"a live process's queue was swept: {survivors - plane.queues()}"
    assert {q for q in survivors if "celeryev" in q or "worker1" in q} <= plane.subscribed()
    events = [e for e in swept.worker_events() if e.get("event") == "control_sweep.queue_deleted"]
    assert {e["queue"] for e in events} >= mine

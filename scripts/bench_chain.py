"""Chained no-op Celery tasks with ghost-engine's broker settings: the floor under a job (make bench).

As many tasks as a job has steps (pipeline.STEPS), so the two chains make the same hops.

Its worker runs with the same celeryconfig.py — transport, long polling, acks, prefetch, events —
on a queue of its own (QUEUE_NAME, SQS_QUEUE_URL in its environment). The last task writes the
time it finished to BENCH_MARK_DIR/<chain id>, so the benchmark times a chain without a result
backend and without a request to the emulator.

With BENCH_CHAIN_TRANSPORT=stock the same chain rides kombu's own SQS transport instead of
ghost-engine's (tasks/sqs_fanout.py), as a Celery project on SQS runs out of the box: the
baseline issue 17 measured, before this project's transport polled a freed slot at once and took
the delete off the consumer's loop, which sped up every chain on it, the bare one too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery, chain

import pipeline

LENGTH = len(pipeline.STEPS)


def make_app(transport: str, queue: str | None = None) -> Celery:
    """The chain's app on ghost-engine's transport (``ours``) or kombu's own (``stock``)."""
    app = Celery(f"bare-chain-{transport}", config_source="celeryconfig")
    app.conf.include = []  # not ghost-engine's step tasks: only the no-op below
    if queue:
        app.conf.task_default_queue = queue
    if transport == "stock":
        app.conf.broker_transport = "sqs"
        app.conf.worker_enable_remote_control = False  # kombu's own SQS has no fanout exchanges

    @app.task(name="bench.noop", shared=False)  # each app its own: two live in the benchmark's process
    def noop(chain_id: str, index: int) -> None:
        """Do nothing; the last link records when the chain ended."""
        if index == LENGTH - 1:
            marks = Path(os.environ["BENCH_MARK_DIR"])
            (marks / chain_id).write_text(repr(time.time()))

    return app


app = make_app(os.environ.get("BENCH_CHAIN_TRANSPORT", "ours"))


def send(chain_id: str, sender: Celery = app) -> None:
    """Send one chain of LENGTH no-op tasks, as ghost-engine sends a job's steps."""
    noop = sender.tasks["bench.noop"]
    chain(*(noop.si(chain_id, index) for index in range(LENGTH))).apply_async()

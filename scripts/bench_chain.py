"""Chained no-op Celery tasks with ghost-engine's broker settings: the floor under a job (make bench).

As many tasks as a job has steps (pipeline.STEPS), so the two chains make the same hops.

Its worker runs with the same celeryconfig.py — transport, long polling, acks, prefetch, events —
on a queue of its own (QUEUE_NAME, SQS_QUEUE_URL in its environment). The last task writes the
time it finished to BENCH_MARK_DIR/<chain id>, so the benchmark times a chain without a result
backend and without a request to the emulator.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery, chain

import pipeline

LENGTH = len(pipeline.STEPS)

app = Celery("bare-chain", config_source="celeryconfig")
app.conf.include = []  # not ghost-engine's step tasks: only the no-op below


@app.task(name="bench.noop")
def noop(chain_id: str, index: int) -> None:
    """Do nothing; the last link records when the chain ended."""
    if index == LENGTH - 1:
        marks = Path(os.environ["BENCH_MARK_DIR"])
        (marks / chain_id).write_text(repr(time.time()))


def send(chain_id: str) -> None:
    """Send one chain of LENGTH no-op tasks, as ghost-engine sends a job's steps."""
    chain(*(noop.si(chain_id, index) for index in range(LENGTH))).apply_async()

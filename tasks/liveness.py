"""Is this worker still taking messages? A heartbeat file that only a consuming worker keeps fresh.

A Celery worker on SQS can stop consuming while its process stays alive and
silent (seen with stock Celery 5.7 / kombu 5.7: messages visible, none in
flight). A process check cannot see that, so the worker's consumer refreshes
``WORKER_HEARTBEAT_FILE`` from its own event loop (tasks/celery_app.py), and
only when the job queue's last receive completed recently — or when every
slot is busy, which is the one legitimate reason not to poll. The ECS
container health check and the local stack run ``python -m tasks.liveness``,
which fails once the file is older than ``WORKER_LIVENESS_SECONDS``; the
stuck worker is then replaced and its messages go to the others.

This module imports no Celery: the health check runs it every 30 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

_last_receive = time.monotonic()  # when a receive on a job queue last completed in this process


def note_receive() -> None:
    """A receive on a job queue completed (with or without messages)."""
    global _last_receive
    _last_receive = time.monotonic()


def received_within(seconds: float) -> bool:
    """True when a job-queue receive completed in the last ``seconds``."""
    return time.monotonic() - _last_receive <= seconds


def beat(path: str) -> None:
    """Refresh the heartbeat file (its modification time is the heartbeat)."""
    file = Path(path)
    file.touch(exist_ok=True)
    os.utime(file)


def age(path: str) -> float | None:
    """Seconds since the last heartbeat, or None when there has been none."""
    try:
        return max(0.0, time.time() - Path(path).stat().st_mtime)
    except FileNotFoundError:
        return None


def main() -> int:
    """The health check: exit 0 while the heartbeat is fresh, 1 (saying why) once it is not."""
    from storage.settings import Settings

    settings = Settings.from_env()
    path, limit = settings.worker_heartbeat_file, settings.worker_liveness_seconds
    seconds = age(path)
    if seconds is None:
        print(f"unhealthy: no heartbeat at {path}", file=sys.stderr)
        return 1
    if seconds > limit:
        print(f"unhealthy: last heartbeat {seconds:.0f} s ago (limit {limit} s) at {path}", file=sys.stderr)
        return 1
    print(f"healthy: last heartbeat {seconds:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())

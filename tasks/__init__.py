"""The Celery side of ghost-engine: one task per pipeline step, chained over SQS.

``celery -A tasks worker`` finds the app as ``tasks.app``. It is built on first
access (tasks/celery_app.py), not when this package is imported: the celery
command imports ``tasks.cli`` for its entry points in every Celery app's
environment, and that import must change nothing for anyone else.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from tasks.celery_app import app

        return app
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")

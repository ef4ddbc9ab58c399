"""gunicorn settings (``gunicorn -c python:api.gunicorn_conf 'api:create_app()'``).

gunicorn installs its own plain-text handlers; these settings hand its loggers
to the root logger instead, so its lines are JSON like the API's own.
"""

import os

from storage.settings import Settings
from tasks.heap import freeze_startup_heap
from tasks.logs import configure_logging, get_logger

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
}
# The API logs one JSON line per request itself, with its requestId.
accesslog = None
# The API mostly waits on DynamoDB and SQS: threads keep a slow dependency from
# queueing every other request behind the few worker processes. Read with the other settings, so
# a bad API_THREADS stops gunicorn with a message naming it; the AWS clients keep as many
# connections (Settings.aws_pool_connections).
worker_class = "gthread"
threads = Settings.from_env().api_threads
# Let a request in flight finish on SIGTERM, but not for long (ECS waits 30 s).
graceful_timeout = 10
# No control socket (gunicorn 25.1+, for its gunicornc tool, which nothing here uses): its default
# path is one per user ($XDG_RUNTIME_DIR or ~/.gunicorn), so two stacks on one machine (make run
# beside the tests) took each other's, and either one's stop deleted it. ECS stops the API by signal.
control_socket_disable = True


def on_starting(server) -> None:
    """Configure JSON logging in the master; forked workers inherit it."""
    configure_logging("api", os.environ.get("LOG_LEVEL", "INFO").upper())


def post_worker_init(worker) -> None:
    """Once a worker has built the app: build what it sends jobs with (tasks/celery_app.py:
    warm_sender), so its first submission does not wait for it; then freeze what it holds
    (tasks/heap.py), so the collector's full passes stop walking it in the middle of requests."""
    from tasks.celery_app import app, warm_sender  # in the worker, as the app's own imports are

    log = get_logger(__name__)
    try:
        log.info("api.sender_warmed", pid=os.getpid(), ms=round(warm_sender(app), 1))
    except Exception as exc:  # noqa: BLE001 - not built now: the first submission builds it, and answers for it
        log.warning("api.sender_warm_failed", pid=os.getpid(), error=f"{type(exc).__name__}: {exc}")
    frozen = freeze_startup_heap()
    log.info("api.heap_frozen", pid=os.getpid(), frozenObjects=frozen.objects, freezeMs=frozen.ms)

"""The Celery app: one task per pipeline step, chained over SQS (``celery -A tasks worker``)."""

from celery import Celery
from celery.signals import setup_logging

from tasks.logs import configure_logging

app = Celery("ghost-engine", config_source="celeryconfig")


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:
    # Connecting to setup_logging stops Celery from installing its own handlers.
    configure_logging("worker", app.conf.get("worker_log_level") or loglevel or "INFO")

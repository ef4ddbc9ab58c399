"""The Celery app: one task per pipeline step, chained over SQS (``celery -A tasks worker``)."""

from celery import Celery
from celery.signals import setup_logging, worker_ready, worker_shutdown

from tasks.logs import configure_logging

app = Celery("ghost-engine", config_source="celeryconfig")


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:
    # Connecting to setup_logging stops Celery from installing its own handlers.
    configure_logging("worker", app.conf.get("worker_log_level") or loglevel or "INFO")


_sweepers: list = []


@worker_ready.connect
def _start_sweeper(**_kwargs) -> None:
    # In the worker's main process, not its pool children: one sweeper per worker.
    from storage.bootstrap import build_services
    from tasks import metrics
    from tasks.sweeper import Sweeper

    services = build_services()
    metrics.configure(services.settings.metrics_namespace)
    settings = services.settings
    if settings.sweep_interval_seconds > 0:
        sweeper = Sweeper(
            services, interval=settings.sweep_interval_seconds, stall_after_seconds=settings.stall_after_seconds
        )
        sweeper.start()
        _sweepers.append(sweeper)


@worker_shutdown.connect
def _stop_sweeper(**_kwargs) -> None:
    for sweeper in _sweepers:
        sweeper.stop()

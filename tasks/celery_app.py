"""The Celery app of ghost-engine, with everything that happens only in its own worker.

Nothing here is connected to Celery's global signals: logging is set up by the
app's own Logging class and the stall sweeper runs as a bootstep of this app's
worker, so another Celery app in the same environment (whose ``celery`` command
loads our CLI entry points) never runs any of it.
"""

from __future__ import annotations

from celery import Celery, bootsteps
from celery.app.log import Logging

from tasks.logs import configure_logging


class JsonLogging(Logging):
    """Celery's logging set-up for this app only: every line through structlog's JSON renderer."""

    def setup_logging_subsystem(self, loglevel=None, logfile=None, format=None, colorize=None, **kwargs):
        if self.already_setup:
            return True
        Logging._setup = True
        configure_logging("worker", loglevel or self.loglevel or "INFO")
        # True: handled, so Celery neither installs its own handlers nor redirects stdout.
        return True


class StallSweeperStep(bootsteps.StartStopStep):
    """Runs the stall sweeper in the worker's main process (not in its pool children)."""

    label = "stall sweeper"

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.sweeper = None

    def start(self, worker):
        from storage.bootstrap import build_services
        from tasks import metrics
        from tasks.sweeper import Sweeper

        services = build_services()
        metrics.configure(services.settings.metrics_namespace)
        settings = services.settings
        if settings.sweep_interval_seconds > 0:
            self.sweeper = Sweeper(
                services, interval=settings.sweep_interval_seconds, stall_after_seconds=settings.stall_after_seconds
            )
            self.sweeper.start()

    def stop(self, worker):
        if self.sweeper is not None:
            self.sweeper.stop()


def create_app() -> Celery:
    """The ghost-engine Celery app, its settings from celeryconfig.py."""
    app = Celery("ghost-engine", config_source="celeryconfig", log=JsonLogging)
    app.steps["worker"].add(StallSweeperStep)
    return app


app = create_app()

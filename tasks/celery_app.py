"""The Celery app of ghost-engine, with everything that happens only in its own worker.

Nothing here is connected to Celery's global signals: logging is set up by the
app's own Logging class and the stall sweeper runs as a bootstep of this app's
worker, so another Celery app in the same environment (whose ``celery`` command
loads our CLI entry points) never runs any of it.
"""

from __future__ import annotations

from celery import Celery, bootsteps
from celery.app.log import Logging
from celery.worker import state as worker_state

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


class LivenessStep(bootsteps.StartStopStep):
    """Refreshes the heartbeat file from the consumer's own loop while it still takes messages.

    A timer of the consumer's event loop, so a frozen loop stops the heartbeat; and it beats only
    if the job queue's last receive completed within the liveness limit or every slot is busy,
    so a loop that runs but no longer polls (the hang seen on SQS) stops it too. See tasks/liveness.py.
    """

    label = "liveness heartbeat"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.timer = None

    def start(self, c):
        from storage.settings import Settings
        from tasks import liveness

        settings = Settings.from_env()
        path, limit = settings.worker_heartbeat_file, settings.worker_liveness_seconds
        liveness.note_receive()  # the first receive is still on its way
        liveness.beat(path)

        def check() -> None:
            busy = len(worker_state.reserved_requests) >= max(1, c.qos.value)
            if busy or liveness.received_within(limit / 2):
                liveness.beat(path)

        self.timer = c.timer.call_repeatedly(max(1.0, limit / 6), check, priority=10)

    def stop(self, c):
        if self.timer is not None:
            self.timer.cancel()


def create_app() -> Celery:
    """The ghost-engine Celery app, its settings from celeryconfig.py."""
    app = Celery("ghost-engine", config_source="celeryconfig", log=JsonLogging)
    app.steps["worker"].add(StallSweeperStep)
    app.steps["consumer"].add(LivenessStep)
    return app


app = create_app()

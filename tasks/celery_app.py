"""The Celery app of ghost-engine, with everything that happens only in its own worker.

Nothing here is connected to Celery's global signals at import: logging is set
up by the app's own Logging class, and the stall sweeper and the pool's warm-up
are bootsteps of this app's worker (the warm-up connects its pool processes'
signal as that worker is built), so another Celery app in the same environment
(whose ``celery`` command loads our CLI entry points) never runs any of it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from celery import Celery, bootsteps, signals
from celery.app.log import Logging
from celery.worker import control as celery_control
from celery.worker import state as worker_state

from tasks.heap import freeze_startup_heap
from tasks.logs import configure_logging, get_logger

log = get_logger(__name__)


class JsonLogging(Logging):
    """Celery's logging set-up for this app only: every line through structlog's JSON renderer."""

    # The stubs add `hostname`; Celery passes it by keyword, so it arrives in **kwargs here.
    def setup_logging_subsystem(  # type: ignore[override]
        self, loglevel=None, logfile=None, format=None, colorize=None, **kwargs
    ):
        if self.already_setup:
            return True
        Logging._setup = True  # type: ignore[attr-defined]  # Celery's own "set up" flag, private
        # Celery hands on the level as given (--loglevel INFO); the stubs allow an int as well.
        configure_logging("worker", loglevel or self.loglevel or "INFO")  # type: ignore[arg-type]
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


class WaitOutDeclarationsStep(bootsteps.Step):
    """The worker's main process waits out SQS failing its consumer's declarations (tasks/sqs_faults.py).

    Set as the worker is built, before its consumer starts; its pool's children, forked from it,
    declare as any other process does (a failure is the hand-on's, which has its own retries).
    """

    label = "wait out declarations"

    def __init__(self, worker, **kwargs):
        from tasks import sqs_faults

        super().__init__(worker, **kwargs)
        sqs_faults.wait_out_declarations(True)
        os.register_at_fork(after_in_child=lambda: sqs_faults.wait_out_declarations(False))


class WarmPoolStep(bootsteps.Step):
    """Each pool process builds its AWS clients and what it sends the next step with as it starts,
    not in its first step, then freezes what it holds (tasks/heap.py). The main process freezes
    what it holds before it forks them, so each one's own freeze walks only what it made.

    A process's stores (tasks/steps.py: services; boto3 loads and parses each service's model)
    take about a quarter of a second of CPU, and its sender (kombu's producer, connection, channel
    and the channel's SQS client: warm_sender) 50-150 ms more. Built on first
    use, they made a fresh worker's first job wait that long in each of its processes. Connected
    by this app's worker only (Celery's worker_process_init, which a pool process sends once
    Celery has reset what it inherited), so another app's pool never builds them.
    """

    label = "warm pool"

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        _log_frozen("before its pool forks")
        signals.worker_process_init.connect(_warm_process, weak=False)


class RevokedStepsStep(bootsteps.Step):
    """A step's task revoked by an operator (celery control revoke; Flower's Revoke and Terminate
    buttons) is acked by the worker and never runs: its job fails REVOKED, which an operator can
    retry, instead of showing running until the stall sweeper (tasks/steps.py: fail_revoked).

    Celery sends task_revoked in the worker's main process, in its consumer's loop: the write goes
    to a thread, on stores of the main process's own, which no pool process (forked from it later,
    as one replaces a terminated process) ever uses.
    """

    label = "revoked steps"

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._lock = threading.Lock()
        self._services = None
        signals.task_revoked.connect(self._on_revoked, weak=False)

    def _on_revoked(self, sender=None, request=None, terminated=False, **_signal) -> None:
        step = getattr(sender, "step", "")
        if step and request is not None:  # one of our steps
            args = (step, request.args, request.kwargs, bool(terminated))
            threading.Thread(target=self._fail, args=args, name="revoked-step", daemon=True).start()

    def _fail(self, step: str, args, kwargs, terminated: bool) -> None:
        from storage.bootstrap import build_services

        # The step tasks' module, which the worker imported to run them (as _warm_process finds it).
        steps = sys.modules["tasks.steps"]
        with self._lock:
            if self._services is None:
                self._services = build_services()
            current = self._services
        steps.fail_revoked(current, step, args, kwargs, terminated=terminated)


def _warm_process(**_signal) -> None:
    # The step tasks' module, which the worker imported before it forked its pool.
    steps = sys.modules.get("tasks.steps")
    if steps is None:
        return
    started = time.monotonic()
    try:
        steps.services()
        sender_ms = warm_sender(app)
    except Exception as exc:  # noqa: BLE001 - not built now: the first step builds them, and fails as it did
        log.warning("worker.process_warm_failed", pid=os.getpid(), error=f"{type(exc).__name__}: {exc}")
        return
    built = round((time.monotonic() - started) * 1000)
    frozen = freeze_startup_heap()
    log.info(
        "worker.process_warmed",
        pid=os.getpid(),
        ms=built,
        senderMs=round(sender_ms),
        frozenObjects=frozen.objects,
        freezeMs=frozen.ms,
    )


def warm_sender(celery: Celery) -> float:
    """Build what ``celery`` sends messages with (a producer, its connection and channel, the
    channel's SQS client), so a process's first send does not wait for it (50-150 ms of kombu
    and boto3 set-up); the milliseconds it took. Makes no request: the job queue's URL is
    configured (celeryconfig.py: job_queues)."""
    started = time.perf_counter()
    with celery.producer_or_acquire() as producer:
        producer.channel.sqs(queue=celery.conf.task_default_queue)
    return (time.perf_counter() - started) * 1000


class FreezeHeapStep(bootsteps.StartStopStep):
    """The worker's main process freezes what it holds once its consumer is set up (tasks/heap.py).

    After the task consumer's step, so kombu's SQS channel and its boto3 client are among what is
    frozen: the consumer's loop receives every message, and a full collection there held back
    whichever was due. A consumer restarted after a lost connection has made a new one: it thaws
    before it freezes again, so the old connection's objects are collected, not kept for ever.
    """

    label = "freeze heap"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.started = False

    def start(self, c):
        _log_frozen("once its consumer is set up", thaw=self.started)
        self.started = True


def _log_frozen(stage: str, *, thaw: bool = False) -> None:
    frozen = freeze_startup_heap(thaw=thaw)
    log.info(
        "worker.heap_frozen",
        pid=os.getpid(),
        stage=stage,
        thawed=thaw,
        frozenObjects=frozen.objects,
        freezeMs=frozen.ms,
    )


class _RepeatingStep(bootsteps.StartStopStep):
    """A consumer bootstep whose work runs on the consumer's own event loop, every so often."""

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.timer = None

    def start(self, c):
        interval, tick = self.prepare(c)
        self.timer = c.timer.call_repeatedly(interval, tick, priority=10)

    def stop(self, c):
        if self.timer is not None:
            self.timer.cancel()

    def prepare(self, c) -> tuple[float, Callable[[], None]]:
        """Set up; return how often to tick, and the tick."""
        raise NotImplementedError


class LivenessStep(_RepeatingStep):
    """Refreshes the heartbeat file from the consumer's own loop while it still takes messages.

    A timer of the consumer's event loop, so a frozen loop stops the heartbeat; and it beats only
    if the job queue's last receive completed within the liveness limit or every slot is busy,
    so a loop that runs but no longer polls (the hang seen on SQS) stops it too. See tasks/liveness.py.
    """

    label = "liveness heartbeat"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def prepare(self, c):
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

        return max(1.0, limit / 6), check


class TaskEventsStep(_RepeatingStep):
    """Task events only while someone is watching.

    Workers start with task events off (celeryconfig.py): each would cost every step an SNS
    publish per event, received and deleted by every subscriber. Flower turns them on with the
    ``enable_events`` remote control command, and repeats it every 5 s while it runs; this step
    remembers when it was last asked and turns them off TASK_EVENTS_SECONDS after that, so they
    stop once Flower does. A worker started with ``-E`` (every event, always) is left alone.
    """

    label = "task events while watched"
    requires = ("celery.worker.consumer.events:Events",)

    def prepare(self, c):
        from storage.settings import Settings

        keep_for = Settings.from_env().task_events_seconds
        asked = {"at": time.monotonic()}

        def enable_events(state):
            """Tell worker(s) to send task-related events (for a while: ask again to keep them on)."""
            asked["at"] = time.monotonic()
            return celery_control.enable_events(state)  # type: ignore[attr-defined]  # the stubs omit it

        # The registry is per process; only ghost-engine's worker runs this.
        # type= picks control or inspect; the stubs omit the parameter.
        celery_control.Panel.register(enable_events, name="enable_events", type="control")  # type: ignore[call-arg]

        def expire() -> None:
            groups = c.event_dispatcher.groups if c.event_dispatcher is not None else None
            if groups and "task" in groups and time.monotonic() - asked["at"] > keep_for:
                groups.discard("task")
                log.info("events.task_events_off", reason=f"no enable_events for {keep_for} s")

        return min(5.0, keep_for / 2), expire


def create_app() -> Celery:
    """The ghost-engine Celery app, its settings from celeryconfig.py."""
    app = Celery("ghost-engine", config_source="celeryconfig", log=JsonLogging)
    app.steps["worker"].add(StallSweeperStep)
    app.steps["worker"].add(WaitOutDeclarationsStep)
    app.steps["worker"].add(WarmPoolStep)
    app.steps["worker"].add(RevokedStepsStep)
    app.steps["consumer"].add(LivenessStep)
    app.steps["consumer"].add(TaskEventsStep)
    app.steps["consumer"].add(FreezeHeapStep)
    return app


app = create_app()

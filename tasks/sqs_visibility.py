"""Job messages a worker holds stay invisible while it holds them, and only that long.

The jobs queue's visibility timeout is short (``VISIBILITY_TIMEOUT_SECONDS``, 15 s by default):
it is what a message waits before SQS hands it out again when the worker that received it died,
or never saw it (a ReceiveMessage answer lost after SQS applied it). A step may legitimately run
longer (``STEP_TIME_LIMIT_SECONDS``, 120 s), and a retried step's message is held until its
countdown ends, so while a worker holds a message — from its delivery to its ack or reject —
a ``VisibilityExtender`` keeps it invisible: a daemon thread of the worker's main process sets
the timeout of each held message again a third of the timeout after its delivery and after
each extension, with ChangeMessageVisibilityBatch (up to 10 entries a request, per queue), so
a message held for less than that (most steps take well under a second) costs no request. A
worker that dies stops extending, so its messages come back within the timeout. A message
held longer than ``hold_limit_seconds`` (longer than any legitimate hold: see
Settings.hold_limit_seconds) is no longer extended, so a wedged worker cannot keep a message
from the others for ever.

Every failure is logged once at WARNING (``sqs.call_failed`` with the operation, the queue and
the error; ``sqs.hold_lost`` for a message SQS no longer lets this worker extend) and nothing is
raised: at worst the message comes back, and its claim finds the step leased or recorded. A
failed call is tried again after a jittered back-off of 1 s doubling up to the interval. The
thread has its own boto3 client (kombu's, with the project's ``client-config``), so its retries
spend no other client's retry quota.

An extension that meets a message whose ack (DeleteMessage) got there first fails with
ReceiptHandleIsInvalid: that race is expected and logged at DEBUG only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from tasks import backoff
from tasks.logs import get_logger
from tasks.sqs_faults import describe

log = get_logger(__name__)

BATCH_SIZE = 10  # SQS takes at most 10 entries per ChangeMessageVisibilityBatch
RETRY_SECONDS = 1.0  # after a failed call, try again this soon, doubling up to the interval
MIN_WAIT_SECONDS = 0.05  # the thread's shortest sleep between two looks
# What SQS answers for a receipt handle it will not extend again: the message was deleted, or
# handed out again (its timeout ran out), or is no longer in flight.
GONE_CODES = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})


@dataclass
class Hold:
    """A message this worker received and has not yet acked or rejected."""

    queue: str  # its queue's name, for the log lines
    queue_url: str
    receipt_handle: str
    since: float  # monotonic time of its delivery
    due: float  # monotonic time of its next extension
    invisible_until: float  # monotonic time its visibility ends, as far as this worker knows


class VisibilityExtender:
    """The messages one channel holds, and the thread that keeps them invisible."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        visibility_timeout: int,
        hold_limit_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.visibility_timeout = visibility_timeout
        self.interval = max(1.0, visibility_timeout / 3)
        self.hold_limit_seconds = hold_limit_seconds
        self._clock = clock
        self._holds: dict[Hashable, Hold] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self.failures = 0  # failed calls in a row

    def hold(self, tag: Hashable, queue: str, queue_url: str, receipt_handle: str) -> None:
        """Keep the message delivered as ``tag`` invisible until ``release``."""
        now = self._clock()
        with self._lock:
            self._holds[tag] = Hold(
                queue, queue_url, receipt_handle, now, now + self.interval, now + self.visibility_timeout
            )
        self._ensure_thread()

    def release(self, tag: Hashable) -> None:
        """Stop extending ``tag``'s message (acked, rejected or handed back)."""
        with self._lock:
            self._holds.pop(tag, None)

    def release_all(self) -> None:
        with self._lock:
            self._holds.clear()

    def held(self) -> list[Hashable]:
        with self._lock:
            return list(self._holds)

    def stop(self) -> None:
        """Release every message and end the thread (the channel closes)."""
        self.release_all()
        self._stop.set()

    def extend(self) -> float:
        """Extend the held messages that are due; return the seconds to wait before looking again.

        A message is due a third of the timeout after its delivery or its last extension, so a
        step shorter than that costs no request at all.
        """
        now = self._clock()
        with self._lock:
            holds = list(self._holds.items())
        due: dict[str, list[tuple[Hashable, Hold]]] = {}
        for tag, hold in holds:
            if now - hold.since >= self.hold_limit_seconds:
                self._drop(tag, hold)
                log.warning(
                    "sqs.hold_limit_reached",
                    queue=hold.queue,
                    heldSeconds=round(now - hold.since),
                    consequence="no longer kept invisible: SQS delivers it again after the visibility timeout",
                )
            elif hold.due <= now:
                due.setdefault(hold.queue_url, []).append((tag, hold))
        ok = True
        for url, queue_holds in due.items():
            for start in range(0, len(queue_holds), BATCH_SIZE):
                ok = self._extend_batch(url, queue_holds[start : start + BATCH_SIZE]) and ok
        if not ok:
            self.failures += 1
            return backoff.wait(self.failures, RETRY_SECONDS, self.interval)
        self.failures = 0
        with self._lock:
            next_due = min((hold.due for hold in self._holds.values()), default=now + self.interval)
        return min(self.interval, max(MIN_WAIT_SECONDS, next_due - self._clock()))

    def _extend_batch(self, url: str, batch: list[tuple[Hashable, Hold]]) -> bool:
        entries = [
            {"Id": str(n), "ReceiptHandle": hold.receipt_handle, "VisibilityTimeout": self.visibility_timeout}
            for n, (_, hold) in enumerate(batch)
        ]
        asked = self._clock()
        try:
            if self._client is None:
                self._client = self._client_factory()
            answer = self._client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - nothing of SQS's may stop the extending, or the worker
            log.warning(
                "sqs.call_failed",
                operation="ChangeMessageVisibilityBatch",
                queue=batch[0][1].queue,
                error=describe(exc),
                messages=len(batch),
                failuresInARow=self.failures + 1,
                consequence="tried again shortly; a message whose timeout runs out meanwhile is delivered again",
            )
            return False
        failed = {entry.get("Id"): entry for entry in answer.get("Failed") or []}
        ok = True
        for n, (tag, hold) in enumerate(batch):
            entry = failed.get(str(n))
            if entry is None:
                hold.due, hold.invisible_until = asked + self.interval, asked + self.visibility_timeout
            elif not self._still_held(tag, hold):
                log.debug("sqs.extend_after_release", queue=hold.queue, code=entry.get("Code"))
            elif entry.get("Code") in GONE_CODES:
                self._drop(tag, hold)
                if asked < hold.invisible_until:
                    # Still invisible by this worker's count: its own ack deleted it first.
                    log.debug("sqs.extend_after_delete", queue=hold.queue, code=entry.get("Code"))
                else:
                    log.warning(
                        "sqs.hold_lost",
                        queue=hold.queue,
                        error=f"{entry.get('Code')}: {entry.get('Message', '')}".strip(),
                        consequence="its visibility timeout ran out: SQS may have delivered it again",
                    )
            else:
                ok = False
                log.warning(
                    "sqs.call_failed",
                    operation="ChangeMessageVisibilityBatch",
                    queue=hold.queue,
                    error=f"{entry.get('Code')}: {entry.get('Message', '')}".strip(),
                    failuresInARow=self.failures + 1,
                    consequence="tried again shortly",
                )
        return ok

    def _still_held(self, tag: Hashable, hold: Hold) -> bool:
        with self._lock:
            return self._holds.get(tag) is hold

    def _drop(self, tag: Hashable, hold: Hold) -> None:
        with self._lock:
            if self._holds.get(tag) is hold:
                del self._holds[tag]

    def _ensure_thread(self) -> None:
        # Started on the first hold, in the process that holds (a forked child inherits no thread).
        if self._thread is not None and self._thread.is_alive() and self._thread_pid == os.getpid():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqs-visibility", daemon=True)
        self._thread_pid = os.getpid()
        self._thread.start()

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            try:
                delay = self.extend()
            except Exception:  # a bug here must not end the extending
                log.exception("sqs.extend_crashed")
                delay = self.interval

"""The worker's acks off its event loop: each DeleteMessage of a consumed step in a small thread pool.

kombu's SQS channel deletes an acked message with boto3, in the worker's main process, inside its
event loop (the hub): while SQS answers, the hub hands no message to a pool process, so the next
step's message, delivered at the same moment, waits for the step before's delete — a round trip
on every hop's critical path (docs/performance.md, "The hot path"). Here the delete runs beside the
loop: same client, same retries (the project's ``client-config``), same one WARNING line if it
fails for good (tasks/sqs_faults.py). A failed or lost delete costs a redelivery after the
visibility timeout, which the step's conditional record makes harmless, as before.

The channel releases the delivery's prefetch slot itself, at once and in the loop's thread
(kombu's QoS is not thread-safe): the step is done, and the slot counts steps in progress, not
requests in flight. A channel that closes (the worker stopping) waits for its pending deletes, up
to ``FLUSH_SECONDS``; what is left then, or lost with a killed process, comes back after the
visibility timeout.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from tasks import sqs_faults
from tasks.logs import get_logger

log = get_logger(__name__)

ACK_THREADS = 2  # a delete takes one round trip; two cover acks that come together
FLUSH_SECONDS = 10.0  # a stopping worker waits this long at most for its pending deletes


class PendingDeletes:
    """DeleteMessage calls issued beside the caller, and waited for on ``flush``."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    def delete(self, client, url: str, handle: str, queue: str) -> Future:
        """Delete the message ``handle`` of ``url`` with ``client``; a failure is logged once, never raised."""
        future = self._executor().submit(_delete, client, url, handle, queue)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def flush(self, timeout: float = FLUSH_SECONDS) -> int:
        """Wait for the deletes issued so far; the number still pending after ``timeout``."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return 0
        left = len(wait(pending, timeout=timeout).not_done)
        if left:
            log.warning(
                "sqs.deletes_pending", count=left, consequence="SQS delivers them again after their visibility timeout"
            )
        return left

    def _executor(self) -> ThreadPoolExecutor:
        # A forked pool process inherits this object but not its threads: it gets a pool of its own.
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=ACK_THREADS, thread_name_prefix="sqs-ack")
            self._pid = os.getpid()
            self._pending, self._lock = set(), threading.Lock()
        return self._pool

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)


def _delete(client, url: str, handle: str, queue: str) -> None:
    try:
        client.delete_message(QueueUrl=url, ReceiptHandle=handle)
    except Exception as exc:  # noqa: BLE001 - the message comes back; the step is recorded once
        sqs_faults.warn_failed("DeleteMessage", queue, "SQS delivers it again", exc)

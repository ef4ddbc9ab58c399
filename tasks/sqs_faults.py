"""What tasks/sqs_fanout.py's channel does when SQS answers badly: name it, log it, back off.

kombu 5.7's SQS channel lets a bad answer to its async client (a 5xx, a throttle, garbage, a
reset, a timeout) raise into the worker's event loop, which stops polling or exits; the defects
and the overrides that fix them are listed in tasks/sqs_fanout.py. This module holds their
parts that are not the channel's methods: the async client whose every non-200 is an
``SQSAnswerError``, the back-off of a failed receive, the retries of a failed declaration, and the
one WARNING line each failure gets (``sqs.receive_failed``, ``sqs.call_failed``: the operation,
the queue, the error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kombu.asynchronous.aws.ext import get_response  # botocore's, as kombu uses it
from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection
from kombu.transport import SQS

from storage import aws_errors
from tasks import backoff, liveness
from tasks.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")

LONG_POLL_SECONDS = 20  # the longest WaitTimeSeconds SQS accepts
# After a failed receive a queue is polled again in RECEIVE_BACKOFF_SECONDS, doubling with each
# failure in a row up to RECEIVE_BACKOFF_MAX_SECONDS, each wait drawn from its upper half
# (tasks/backoff.py), so workers do not poll a recovering SQS in step. See docs/reliability.md.
RECEIVE_BACKOFF_SECONDS = 0.5
RECEIVE_BACKOFF_MAX_SECONDS = 5.0
# How long the worker's main process tries a declaration (declared()) again in place before
# Celery's consumer restart takes over: past a 20 s outage, and short enough that a worker facing
# an SQS that stays down says so (the restart logs it) within half a minute.
DECLARE_RETRY_SECONDS = 30.0


class SQSAnswerError(Exception):
    """SQS answered a request of kombu's async client with something other than 200."""

    def __init__(self, operation: str, status: int, detail: str) -> None:
        super().__init__(f"{operation}: HTTP {status} {detail}".strip())
        self.operation, self.status, self.detail = operation, status, detail


class FaultTolerantAsyncSQS(AsyncSQSConnection):
    """kombu's async SQS client, raising ``SQSAnswerError`` for every answer that is not a 200.

    kombu turns a 5xx, a timeout or a reset into ``[]`` (which its caller cannot read) and any
    other status into a bare ``Exception``; this names the operation, the status and AWS's
    error code (or the transport error), and leaves the caller's error callback to handle it.
    """

    def _on_list_ready(self, parent, markers, operation, response):
        self._raise_unless_ok(operation, response)
        return super()._on_list_ready(parent, markers, operation, response)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _on_obj_ready(self, parent, operation, response):
        self._raise_unless_ok(operation, response)
        return super()._on_obj_ready(parent, operation, response)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _on_status_ready(self, parent, operation, response):
        self._raise_unless_ok(operation, response)
        return super()._on_status_ready(parent, operation, response)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _raise_unless_ok(self, operation: str, response) -> None:
        if response.status == self.STATUS_CODE_OK:
            return
        raise SQSAnswerError(operation, response.status, self._detail(operation, response))

    def _detail(self, operation: str, response) -> str:
        if response.response.error is not None and not response.response.body:
            return str(response.reason)  # no answer: reset, refused, timed out (pycurl's 599)
        try:
            model = self.sqs_connection.meta.service_model.operation_model(operation)
            error = get_response(model, response.response)[1].get("Error", {})
        except Exception:  # noqa: BLE001 - a body botocore cannot parse is a detail too
            error = {}
        return error.get("Code") or repr(bytes(response.read() or b"")[:80])


def long_poll_client(channel):
    """A boto3 SQS client like ``channel.sqs()``, whose reads outlast the longest long poll (20 s)."""
    client = channel.__dict__.get("_long_poll_sqs")
    if client is None:
        read_timeout = LONG_POLL_SECONDS + (channel.sqs().meta.config.read_timeout or 0)
        client = channel.__dict__["_long_poll_sqs"] = channel._new_boto_client(
            service="sqs",
            region=channel.region,
            access_key_id=channel.conninfo.userid,
            secret_access_key=channel.conninfo.password,
            config=SQS.Config(read_timeout=read_timeout),  # type: ignore[attr-defined]  # botocore's Config, as kombu imports it (its stubs omit it)
        )
    return client


def receive_failed(channel, queue: str, exc: BaseException) -> None:
    """Log a failed receive of ``channel`` once, and poll the queue again after a jittered, capped back-off."""
    if channel.connection is None:
        return
    failures = channel._receive_failures[queue] = channel._receive_failures.get(queue, 0) + 1
    delay = backoff.wait(failures, RECEIVE_BACKOFF_SECONDS, RECEIVE_BACKOFF_MAX_SECONDS)
    if queue in channel.job_queues:
        liveness.note_receive()  # the consumer still polls; SQS is what fails
    log.warning(
        "sqs.receive_failed", queue=queue, error=describe(exc), failuresInARow=failures, retryIn=round(delay, 2)
    )
    channel.hub.call_later(delay, channel._schedule_queue, queue)


class BrokerUnavailable(ConnectionError):
    """SQS or SNS kept failing a declaration of the worker's consumer for DECLARE_RETRY_SECONDS.

    A ConnectionError (an OSError, in every kombu transport's ``connection_errors``): Celery's
    consumer restarts on it and declares again, where an error of any other type is
    "Unrecoverable" and ends the worker.
    """


_waiting_out = False  # set in the worker's main process only: wait_out_declarations


def wait_out_declarations(enabled: bool) -> None:
    """Whether this process's declarations wait out a failing SQS (declared()).

    The worker's main process, whose consumer declares as it starts, does: it has nothing to do
    before its queues exist. No other process does: the API's first send declares its queue too,
    and must answer 503 within seconds, not wait; an operator's command should say what failed.
    """
    global _waiting_out
    _waiting_out = enabled


def declared(operation: str, name: str, call: Callable[[], T]) -> T:
    """``call()``, a declaration (a queue, an exchange, a binding), tried again while AWS fails it.

    Celery's consumer declares its queues, exchanges and bindings as it starts, with boto3 calls
    (GetQueueUrl, CreateQueue, GetQueueAttributes, SNS's CreateTopic and Subscribe). kombu 5.7
    lets a ClientError out of them, and Celery, not knowing it as a connection error, logs
    "Unrecoverable error" and the worker exits: a 500 or a throttle to one GetQueueAttributes
    at start-up was enough. In the worker's main process (wait_out_declarations), a transient
    failure (throttling, 5xx, a reset, a timeout: storage.aws_errors.transient) is logged once at
    WARNING and tried again after a jittered, capped back-off, for up to DECLARE_RETRY_SECONDS,
    then raised as BrokerUnavailable; any other error (a denied permission, a bad name) is
    raised as it came, at once. Elsewhere the call is made once, as kombu makes it.
    """
    if not _waiting_out:
        return call()
    deadline = time.monotonic() + DECLARE_RETRY_SECONDS
    failures = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not aws_errors.transient(exc):
                raise
            failures += 1
            delay = backoff.wait(failures, RECEIVE_BACKOFF_SECONDS, RECEIVE_BACKOFF_MAX_SECONDS)
            if time.monotonic() + delay > deadline:
                raise BrokerUnavailable(f"{operation} {name}: {describe(exc)}") from exc
            if failures == 1:
                warn_failed(operation, name, "tried again until it succeeds", exc)
            time.sleep(delay)


def describe(exc: BaseException) -> str:
    """An error as a log line gives it: SQS's answer, or the exception's type and message."""
    return str(exc) if isinstance(exc, SQSAnswerError) else f"{type(exc).__name__}: {exc}"


def warn_failed(operation: str, queue: str, consequence: str, exc: BaseException) -> None:
    """The one WARNING line of an SQS call that failed, with what follows from it."""
    log.warning("sqs.call_failed", operation=operation, queue=queue, error=describe(exc), consequence=consequence)


def delivery_queue(channel, delivery_tag) -> str:
    """The queue a delivered message came from, for a log line."""
    try:
        info = channel.qos.get(delivery_tag).delivery_info
    except KeyError:
        return "?"
    return info.get("routing_key") or info.get("sqs_queue") or "?"


def release(client, queue_url: str, answer) -> None:
    """Make the messages of a receive that arrived too late visible again (best effort)."""
    messages = answer.get("Messages") if isinstance(answer, dict) else None
    if not messages or client is None:
        return
    for message in messages:
        try:
            client.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        except Exception:  # noqa: BLE001 - the visibility timeout returns it anyway, later
            log.info("sqs.release_failed", queue=queue_url)

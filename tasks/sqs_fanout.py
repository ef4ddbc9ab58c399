"""kombu's SQS transport with Celery's events and remote control carried over SNS -> SQS.

Selected in celeryconfig.py as ``broker_transport = "tasks.sqs_fanout:Transport"`` (Celery
accepts a transport class path). kombu >= 5.6 fans out over SNS when ``supports_fanout`` is
set: a fanout exchange is an SNS topic, each bound queue an SQS queue subscribed to it with
raw delivery. That alone is not enough for Celery 5.7; each override below says what is missing.

Transport options read here (besides kombu's own):
  ``job_queues``      name -> URL (or None) of the queues Terraform made. They keep their names;
                      with a URL they are never looked up. Unlike kombu's ``predefined_queues``
                      this still lets a process make its own control queues.
  ``control_prefix``  put before every other queue and topic name (reply, event and pidbox
                      queues, the two topics), so IAM and a sweep can scope them. At most 24
                      characters: a reply queue is ``{prefix}{uuid}-reply-celery-pidbox``, and
                      SQS names stop at 80.
  ``control_heartbeat_seconds``  how often this process refreshes its control queues'
                      heartbeat tag (default 60).

Why each override exists:
  * ``Transport.implements``: the transport fans out but still declares only 'direct'
    exchanges, and Celery's Control bootstep (``inspect``, ``control``) requires 'fanout'.
  * ``exchange_declare``: Celery makes the event exchange fanout only for redis and gcpubsub;
    elsewhere it is a 'topic' exchange, whose bindings kombu keeps in the declaring process's
    memory, so a worker never learns of Flower's event queue. Declared fanout, it is a topic.
  * ``_lookup``: replies go to a 'direct' exchange, also bound only in the caller's memory.
    The worker routes by kombu.pidbox's naming rule (queue ``{routing_key}.{exchange}``) and
    drops a reply whose queue is gone, never re-creating a caller's queue.
  * ``after_reply_message_received``: kombu deletes the reply queue after every call; SQS
    refuses a deleted queue's name for 60 s, and kombu keeps its URL cached. The queue is kept
    for the process's life instead, and deleted at exit (``delete_control_queues``) — this and
    the short retention are what keep reply and event queues from piling up (celery #8348).
  * ``_delete_message``: kombu 5.7 deletes no-ack messages (replies, events) with its async
    client, which needs an event loop; ``celery inspect`` and Flower's event thread have none.
  * ``_receive_message``: a reply poll waits at most 1 s, so it never outlasts
    ``inspect --timeout`` (default 1 s) as the workers' long poll would.
  * ``_update_queue_cache`` / ``canonical_queue_name``: job queues keep their names and come
    from settings; any other name is looked up exactly, never with ListQueues.
  * ``_new_queue``: remembers the control queues this process made, for the exit clean-up,
    tags them with a heartbeat and keeps it beating.
  * ``_on_messages_ready``: notes each completed receive on a job queue, the worker's
    liveness signal (tasks/liveness.py).

A process killed with SIGKILL leaves its control queues (and their SNS subscriptions) behind:
small (retention is 60 s), but each subscription still costs a delivery per event. So every
control queue a process makes carries a heartbeat tag (``HEARTBEAT_TAG``, epoch seconds),
set when it is made and refreshed by a daemon thread every ``control_heartbeat_seconds``
(a transport option); tasks/control_sweep.py deletes the queues whose heartbeat stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from typing import cast

from kombu.transport import SQS
from kombu.transport.SQS.exceptions import DoesNotExistQueueException

from tasks import liveness

REPLY_EXCHANGE = "reply.celery.pidbox"  # kombu.pidbox.Mailbox.reply_exchange for app "celery"
EVENT_EXCHANGE = "celeryev"  # Celery's event_exchange default
REPLY_WAIT_SECONDS = 1
HEARTBEAT_TAG = "ghost-engine:heartbeat"  # epoch seconds of the owner's last sign of life

# Control queues made by this process: URL -> (pid, channel). The pid keeps a forked pool
# child, which inherits this dict, from deleting its parent's queues at its own exit.
_made: dict[str, tuple[int, Channel]] = {}


class Channel(SQS.Channel):
    """An SQS channel whose control traffic (events, pidbox, replies) goes through SNS."""

    @property
    def job_queues(self) -> dict[str, str | None]:
        return self.transport_options.get("job_queues") or {}

    @property
    def control_prefix(self) -> str:
        return self.transport_options.get("control_prefix", "")

    def canonical_queue_name(self, queue_name):
        name = super().canonical_queue_name(queue_name)
        return name if name in self.job_queues else self.entity_name(self.control_prefix + name)

    def _update_queue_cache(self, queue_name_prefix):
        self._queue_cache.update({name: url for name, url in self.job_queues.items() if url})
        if queue_name_prefix and queue_name_prefix not in self._queue_cache:
            client = self.sqs()
            try:
                url = client.get_queue_url(QueueName=queue_name_prefix)["QueueUrl"]
            except client.exceptions.QueueDoesNotExist:
                return  # not there: the caller makes it or raises
            self._queue_cache[queue_name_prefix] = url

    def _new_queue(self, queue, **kwargs):
        known = self.canonical_queue_name(queue) in self._queue_cache
        url = cast(str, super()._new_queue(queue, **kwargs))  # the stubs say None; it is the queue's URL
        if not known and self.canonical_queue_name(queue) not in self.job_queues:
            _made.setdefault(url, (os.getpid(), self))
            _tag_heartbeat(self, url)
            _Heartbeat.ensure(self.transport_options.get("control_heartbeat_seconds", 60))
        return url

    def exchange_declare(self, exchange=None, type="direct", *args, **kwargs):
        if exchange == EVENT_EXCHANGE:
            type = "fanout"
        return super().exchange_declare(exchange, type, *args, **kwargs)

    def _lookup(self, exchange, routing_key, default=None):
        if exchange != REPLY_EXCHANGE:
            return super()._lookup(exchange, routing_key, default)
        queue = f"{routing_key}.{exchange}"  # kombu.pidbox.Mailbox.get_reply_queue
        try:
            self._resolve_queue_url(queue)  # type: ignore[attr-defined]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        except DoesNotExistQueueException:
            return []  # the caller has gone: drop the reply
        return [queue]

    def after_reply_message_received(self, queue):
        pass  # keep the reply queue for the next call; deleted at exit

    def _delete_message(self, queue_name, message):
        if self.hub:  # type: ignore[attr-defined]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
            return super()._delete_message(queue_name, message)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        self.sqs(queue=queue_name).delete_message(
            QueueUrl=self._new_queue(queue_name), ReceiptHandle=message["ReceiptHandle"]
        )

    def _on_messages_ready(self, queue, qname, messages):
        if qname in self.job_queues:
            liveness.note_receive()  # the consumer still polls the job queue (tasks/liveness.py)
        return super()._on_messages_ready(queue, qname, messages)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _receive_message(self, queue, max_number_of_messages=1, wait_time_seconds=None):
        if queue.endswith(REPLY_EXCHANGE):
            wait_time_seconds = REPLY_WAIT_SECONDS
        return super()._receive_message(queue, max_number_of_messages, wait_time_seconds)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)


class Transport(SQS.Transport):
    """kombu's SQS transport, declaring the fanout exchanges it implements through SNS."""

    Channel = Channel
    implements = SQS.Transport.implements.extend(exchange_type=frozenset(["direct", "fanout"]))


def heartbeat_tags(now: float | None = None) -> dict[str, str]:
    """The tags that say a control queue's owner was alive at ``now``."""
    return {HEARTBEAT_TAG: str(int(time.time() if now is None else now))}


def _tag_heartbeat(channel: Channel, url: str) -> None:
    # A missed beat is retried; five in a row mean "dead".
    with contextlib.suppress(Exception):
        channel.sqs().tag_queue(QueueUrl=url, Tags=heartbeat_tags())


class _Heartbeat(threading.Thread):
    """Refreshes the heartbeat tag of every control queue this process made."""

    _running: _Heartbeat | None = None

    def __init__(self, interval: float) -> None:
        super().__init__(name="control-heartbeat", daemon=True)
        self.interval = interval
        self.pid = os.getpid()

    @classmethod
    def ensure(cls, interval: float) -> None:
        """Start the beat in this process unless it runs already (a fork does not inherit it)."""
        if cls._running is None or cls._running.pid != os.getpid():
            cls._running = cls(interval)
            cls._running.start()

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            for url, (pid, channel) in list(_made.items()):
                if pid == self.pid:
                    _tag_heartbeat(channel, url)


@atexit.register
def delete_control_queues() -> None:
    """Unsubscribe and delete the control queues this process made (best effort, at exit)."""
    for url, (pid, channel) in list(_made.items()):
        if pid != os.getpid():
            continue
        _made.pop(url, None)
        try:
            _unsubscribe(channel, url)
            channel.sqs().delete_queue(QueueUrl=url)
        except Exception:  # noqa: BLE001, S110 - the process is exiting; the sweep gets the rest
            pass


def _unsubscribe(channel: Channel, url: str) -> None:
    fanout = channel.fanout  # type: ignore[attr-defined]  # kombu's SNS helper, which its stubs omit
    topics = set(fanout._topic_arn_cache.values())  # only topics this process used
    if not topics:
        return
    queue_arn = channel.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    queue_arn = queue_arn["Attributes"]["QueueArn"]
    client = fanout.get_client()
    for topic in topics:
        pages = client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        for page in pages:
            for subscription in page["Subscriptions"]:
                if subscription["Endpoint"] == queue_arn:
                    client.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

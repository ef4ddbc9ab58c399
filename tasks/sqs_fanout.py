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
  ``hold_limit_seconds``  with it, every message this channel holds (delivered, not yet acked
                      or rejected) is kept invisible, ``visibility_timeout`` at a time, for
                      at most this long (tasks/sqs_visibility.py); without it, as in kombu,
                      a message comes back once the visibility timeout runs out.

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
    ``inspect --timeout`` (default 1 s) as the workers' long poll would; and every blocking
    receive uses a client whose read timeout outlasts a long poll (``client-config`` gives
    kombu's boto3 clients the project's 1 s).
  * ``_update_queue_cache`` / ``canonical_queue_name``: job queues keep their names and come
    from settings; any other name is looked up exactly, never with ListQueues.
  * ``_new_queue``: remembers the control queues this process made, for the exit clean-up,
    tags them with a heartbeat and keeps it beating.
  * ``_on_messages_ready``: notes each completed receive on a job queue, the worker's
    liveness signal (tasks/liveness.py).
  * ``QoS`` (``HeldQoS``) and ``close``: the queue's visibility timeout is short (15 s) and a
    step may run longer; kombu never extends it. The QoS tells the channel's
    ``VisibilityExtender`` when a delivery begins and ends, and closing the channel stops it.
  * ``_schedule_queue`` / ``HeldQoS.ack`` / ``basic_qos``: a queue whose prefetch slots are all
    held waits for one to free. kombu looks again ``polling_interval`` (50 ms) later, so a step
    sent on while its sender's slot is still held — every hop of a chain: a step's next message
    is sent before the step returns — waited up to 50 ms for its receive, half of a bare
    chain's time (docs/performance.md). The queue is *parked* instead and polled again at once
    when an ack, a reject or a larger prefetch frees a slot; kombu's timer stays as the back-stop.

kombu 5.7 defects that stop or kill a worker when SQS answers badly, and the overrides that
keep it polling (the unit tests in tests/unit/test_sqs_faults.py fail on kombu's own Channel).
The worker's receives run through kombu's async pycurl client (``AsyncSQSConnection``), which
botocore's retries never see; every failure below is logged once at WARNING (``sqs.*_failed``,
with the queue and the error), and the queue is polled again after a jittered, capped back-off
(``RECEIVE_BACKOFF_*``); those parts live in tasks/sqs_faults.py. The worker's liveness check
plays no part in any of it.
  * A 5xx, 408 or 504 answer, a reset connection or a client timeout (pycurl's 599) to
    ReceiveMessage: ``AsyncAWSQueryConnection._on_list_ready`` returns ``[]``, and
    ``Channel._on_messages_ready`` calls ``[].get('Messages')``: AttributeError in the hub
    ("Error in timer", or "Unrecoverable error" and the worker exits), and the queue's poll
    loop, a chain of callbacks, is broken. Any other non-200 (a throttling 400, a 403) raises a
    bare ``Exception`` at the same place. ``asynsqs`` makes ``FaultTolerantAsyncSQS``, whose
    non-200 answers raise ``SQSAnswerError`` (operation, status, AWS error code) instead, and
    ``_get_async`` gives the receive an error callback (``_receive_failed``), so no answer, and
    no exception while handling one, reaches the hub.
  * An exception while starting a receive (a queue URL lookup that fails) escapes the
    ``_schedule_queue`` timer: "Error in timer", and the queue is never polled again.
    ``_schedule_queue`` catches it and backs off.
  * A receive that completes after its channel was closed (the worker stopping; a long poll
    of a control queue is still out) reads ``self.connection``, now None: "Error in timer:
    AttributeError("'NoneType' object has no attribute 'client'")" at every clean stop.
    ``_on_messages_ready`` makes the received messages visible again instead, and
    ``_schedule_queue`` / ``_loop1`` do nothing on a closed channel.
  * kombu deletes a no-ack queue's messages (events, replies) with the async client and no
    error callback: a failed DeleteMessage raises in the hub. ``_delete_message`` logs it.
  * ``basic_ack`` (DeleteMessage with boto3, once a step ran) drops a ClientError without a
    word, and re-raises a connection error for Celery to log as CRITICAL with a traceback.
    Either way SQS delivers the message again after its visibility timeout (harmless: the
    step is recorded once); the override says so once, at WARNING, and raises nothing. It also
    takes the delete out of the event loop (kombu makes it there, synchronously, holding back
    the next message): the slot is released at once, the delete runs in a small thread pool
    (tasks/sqs_acks.py), and ``close`` waits for the pending ones when the worker stops.
  * ``queue_declare`` / ``queue_bind`` / ``exchange_declare`` and ``basic_consume``'s subscription
    of a control queue to its topic (as Celery's consumer starts, and restarts): the boto3 calls
    behind them (GetQueueUrl, CreateQueue, GetQueueAttributes, SNS's CreateTopic and Subscribe,
    the queue policy's SetQueueAttributes) let a ClientError out, which Celery does not count as
    a connection error: a throttle or a 500 to one GetQueueAttributes at start-up logged
    "Unrecoverable error" and the worker exited. ``sqs_faults.declared`` tries a transient
    failure again in place, then raises a ConnectionError, on which Celery restarts the consumer.
  * ``basic_reject`` with requeue (a step that could not hand on, tasks/steps.py) makes the
    message visible again with ChangeMessageVisibility; if that fails kombu raises into the
    hub with the delivery's prefetch slot still held. The override logs it and releases the
    slot; the message comes back after its visibility timeout.
  SendMessage goes through boto3 too (kombu's ``_put``: a step's hand-on and Celery's ``retry``,
  in the pool's processes), as does ChangeMessageVisibility (the requeue above, kombu's
  release of messages nobody consumes): botocore retries them under the project's
  ``client-config`` (celeryconfig.py), and a failed send reaches the task (tasks/steps.py).

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
from typing import Any, cast

from kombu.transport import SQS
from kombu.transport.SQS.exceptions import DoesNotExistQueueException
from vine import ensure_promise, promise

from tasks import liveness, sqs_acks, sqs_faults
from tasks.sqs_visibility import VisibilityExtender

REPLY_EXCHANGE = "reply.celery.pidbox"  # kombu.pidbox.Mailbox.reply_exchange for app "celery"
EVENT_EXCHANGE = "celeryev"  # Celery's event_exchange default
REPLY_WAIT_SECONDS = 1
HEARTBEAT_TAG = "ghost-engine:heartbeat"  # epoch seconds of the owner's last sign of life

# Control queues made by this process: URL -> (pid, channel). The pid keeps a forked pool
# child, which inherits this dict, from deleting its parent's queues at its own exit.
_made: dict[str, tuple[int, Channel]] = {}
# boto3 clients made by kombu's channels in this process, one per service and settings, keyed by
# pid too: a pool child, which inherits this dict, makes its own (never its parent's sockets).
_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


class HeldQoS(SQS.QoS):
    """kombu's SQS QoS, telling the channel's ``VisibilityExtender`` which messages it holds.

    A message is held from its delivery (``append``) until it is acked, rejected (with or
    without requeue) or handed back at a stop (``restore_unacked``); kombu calls these from its
    ``basic_ack``/``basic_reject`` whatever SQS answered, so the hold ends with the delivery.
    """

    @property
    def extender(self) -> VisibilityExtender | None:
        return cast("Channel", self.channel).visibility_extender

    def append(self, message, delivery_tag):
        super().append(message, delivery_tag)
        extender = self.extender
        info = message.delivery_info
        if extender is not None and "sqs_message" in info and "sqs_queue" in info:
            queue = info.get("routing_key") or info["sqs_queue"]
            extender.hold(delivery_tag, queue, info["sqs_queue"], info["sqs_message"]["ReceiptHandle"])

    def ack(self, delivery_tag):
        self._release(delivery_tag)
        super().ack(delivery_tag)
        cast("Channel", self.channel).parked.resume()

    def reject(self, delivery_tag, requeue=False):
        self._release(delivery_tag)
        super().reject(delivery_tag, requeue)
        cast("Channel", self.channel).parked.resume()

    def restore_unacked(self):
        if self.extender is not None:
            self.extender.release_all()  # kombu makes them visible again
        return super().restore_unacked()

    def _release(self, delivery_tag) -> None:
        if self.extender is not None:
            self.extender.release(delivery_tag)


class ParkedQueues:
    """A channel's queues whose prefetch slots are all held, each polled again the moment one frees.

    kombu's ``_schedule_queue`` finds such a queue and looks again ``polling_interval`` later;
    here it is parked, and ``resume`` (an ack, a reject, a larger prefetch) polls it again on the
    event loop's next turn. kombu's timer stays as the back-stop, for a slot freed some other
    way. Either way a queue is polled once: whichever comes first takes it out of the park.
    Runs in the event loop's thread, as kombu's QoS does.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._timers: dict[str, Any] = {}  # queue -> its back-stop, the hub's timer entry

    @property
    def hub(self) -> Any:
        return self.channel.hub  # type: ignore[attr-defined]  # kombu's, which its stubs omit (pinned <5.8 for this)

    def park(self, queue: str) -> None:
        if queue not in self._timers:
            interval = self.channel.connection.polling_interval
            self._timers[queue] = self.hub.call_later(interval, self._poll, queue)

    def resume(self) -> None:
        if self._timers and self.hub is not None and self.channel.qos.can_consume():
            for queue in list(self._timers):
                self.hub.call_soon(self._poll, queue)

    def _poll(self, queue: str) -> None:
        if queue not in self._timers:
            return  # polled already, by resume or by the back-stop
        timer = self._timers.pop(queue)
        if timer is not None:
            timer.cancel()
        self.channel._schedule_queue(queue)


class Channel(SQS.Channel):
    """An SQS channel whose control traffic (events, pidbox, replies) goes through SNS."""

    QoS = HeldQoS

    @property
    def job_queues(self) -> dict[str, str | None]:
        return self.transport_options.get("job_queues") or {}

    @property
    def control_prefix(self) -> str:
        return self.transport_options.get("control_prefix", "")

    def canonical_queue_name(self, queue_name):
        name = super().canonical_queue_name(queue_name)
        return name if name in self.job_queues else self.entity_name(self.control_prefix + name)

    def _envelope_payload(self, payload, raw_text, message, q_url):
        # A message SQS handed out before (ApproximateReceiveCount, which kombu asks for) is
        # marked redelivered, as AMQP marks one: Celery passes the flag on to the task
        # (request.delivery_info), and a step whose lease was handed to its message computes at
        # once only on that message's first delivery (tasks/runner.py).
        enveloped = super()._envelope_payload(payload, raw_text, message, q_url)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        count = str(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        enveloped["properties"]["delivery_info"]["redelivered"] = not count.isdigit() or int(count) > 1
        return enveloped

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
        declare = super().exchange_declare
        return sqs_faults.declared("exchange_declare", str(exchange), lambda: declare(exchange, type, *args, **kwargs))

    def queue_declare(self, queue=None, passive=False, **kwargs):
        declare = super().queue_declare
        return sqs_faults.declared("queue_declare", str(queue), lambda: declare(queue, passive, **kwargs))

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        bind = super().queue_bind
        return sqs_faults.declared(
            "queue_bind", str(queue), lambda: bind(queue, exchange, routing_key, arguments, **kwargs)
        )

    def _subscribe_queue_to_fanout_exchange_if_required(self, queue_name):
        # basic_consume's subscription of a control queue to its SNS topic (Subscribe, then the
        # queue's policy: GetQueueAttributes, SetQueueAttributes). Not basic_consume itself, whose
        # receive loop must start once; the subscription is idempotent, and cached only once made.
        subscribe = super()._subscribe_queue_to_fanout_exchange_if_required  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        return sqs_faults.declared("subscribe", str(queue_name), lambda: subscribe(queue_name))

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
        if not self.hub:  # type: ignore[attr-defined]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
            self.sqs(queue=queue_name).delete_message(
                QueueUrl=self._new_queue(queue_name), ReceiptHandle=message["ReceiptHandle"]
            )
            return
        # A failed delete of an event or a reply costs a duplicate at most: say so, never raise.
        failed = promise(sqs_faults.warn_failed, ("DeleteMessage", queue_name, "it may be received again"))
        try:
            self.asynsqs(queue=queue_name).delete_message(
                self._new_queue(queue_name), message["ReceiptHandle"], callback=promise(on_error=failed)
            )
        except Exception as exc:  # noqa: BLE001 - anything raised here would reach the hub
            failed(exc)

    def basic_ack(self, delivery_tag, multiple=False):
        try:
            info = self.qos.get(delivery_tag).delivery_info
            url, handle = info["sqs_queue"], info["sqs_message"]["ReceiptHandle"]
        except KeyError:
            return super().basic_ack(delivery_tag, multiple)
        queue = sqs_faults.delivery_queue(self, delivery_tag)
        # The step is done: its prefetch slot is free now, not once SQS has answered the delete,
        # which runs beside the event loop (tasks/sqs_acks.py) so the next message is not held.
        self.qos.ack(delivery_tag)
        self._pending_deletes.delete(self.sqs(), url, handle, queue)

    @property
    def _pending_deletes(self) -> sqs_acks.PendingDeletes:
        pending = self.__dict__.get("_pending_deletes_of_acks")
        if pending is None:
            pending = self.__dict__["_pending_deletes_of_acks"] = sqs_acks.PendingDeletes()
        return pending

    def basic_reject(self, delivery_tag, requeue=False):
        try:
            super().basic_reject(delivery_tag, requeue)
        except Exception as exc:  # noqa: BLE001 - raised in the hub's result handler, it would stop the worker
            # kombu requeues with ChangeMessageVisibility and releases the slot only once that
            # succeeded. Unchanged, the message comes back after its visibility timeout.
            operation = "ChangeMessageVisibility" if requeue else "DeleteMessage"
            queue = sqs_faults.delivery_queue(self, delivery_tag)
            sqs_faults.warn_failed(operation, queue, "SQS delivers it again later", exc)
            self.qos.ack(delivery_tag)

    @property
    def visibility_extender(self) -> VisibilityExtender | None:
        """What keeps this channel's held messages invisible; None unless ``hold_limit_seconds`` is set."""
        if "_visibility_extender" not in self.__dict__:
            limit = self.transport_options.get("hold_limit_seconds")
            self.__dict__["_visibility_extender"] = (
                VisibilityExtender(
                    lambda: self._new_boto_client(
                        service="sqs",
                        region=self.region,
                        access_key_id=self.conninfo.userid,
                        secret_access_key=self.conninfo.password,
                    ),
                    visibility_timeout=self.visibility_timeout,
                    hold_limit_seconds=float(limit),
                )
                if limit
                else None
            )
        return self.__dict__["_visibility_extender"]

    def _new_boto_client(self, service, region, access_key_id, secret_access_key, session_token=None, config=None):
        # kombu makes each channel a boto3 Session and client of its own (50-150 ms of CPU): an API
        # worker's concurrent submissions each took a connection from the producer pool and built
        # one, and a fresh API's first burst of 16 answered in about 850 ms (later ones in about
        # 100). boto3 clients are thread-safe: one per process, service and settings.
        make = super()._new_boto_client  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        if config is not None:
            # Settings of its own (the long poll's read timeout): made as kombu makes it, and kept
            # by its caller (sqs_faults.long_poll_client, once a channel).
            return make(service, region, access_key_id, secret_access_key, session_token, config)
        options = self.transport_options.get("client-config") or {}
        key = (
            os.getpid(),
            service,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            self.endpoint_url,
            self.is_secure,
            repr(sorted(options.items())),
        )
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = make(service, region, access_key_id, secret_access_key, session_token)
        return client

    def close(self):
        # A worker stopping sends its last acks' deletes before it goes (up to FLUSH_SECONDS),
        # then stops keeping what it still holds invisible: kombu hands those back.
        self._pending_deletes.flush()
        extender = self.__dict__.get("_visibility_extender")
        if extender is not None:
            extender.stop()
        super().close()

    def asynsqs(self, queue=None):
        if self.predefined_queues:  # not used by ghost-engine (see job_queues)
            return super().asynsqs(queue)
        if self._asynsqs is None:
            attributes = self.get_message_attributes
            self._asynsqs = sqs_faults.FaultTolerantAsyncSQS(
                sqs_connection=self.sqs(),
                region=self.region,
                message_system_attribute_names=attributes.get("MessageSystemAttributeNames"),
                message_attribute_names=attributes.get("MessageAttributeNames"),
            )
        return self._asynsqs

    def _schedule_queue(self, queue):
        if self.connection is None:
            return  # closed: the worker is stopping
        if queue in self._active_queues and not self.qos.can_consume() and self.parked.hub is not None:
            self.parked.park(queue)
            return
        try:
            return super()._schedule_queue(queue)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
        except Exception as exc:  # noqa: BLE001 - raised into the hub, it would end this queue's polling
            sqs_faults.receive_failed(self, queue, exc)

    @property
    def parked(self) -> ParkedQueues:
        """The queues waiting for a prefetch slot (``_schedule_queue``)."""
        parked = self.__dict__.get("_parked_queues")
        if parked is None:
            parked = self.__dict__["_parked_queues"] = ParkedQueues(self)
        return parked

    def basic_qos(self, prefetch_size=0, prefetch_count=0, apply_global=False):
        # Celery raises the prefetch for a task with an ETA, which frees a slot without an ack.
        super().basic_qos(prefetch_size, prefetch_count, apply_global)
        self.parked.resume()

    def _loop1(self, queue, messages_fetched=None):
        if self.connection is not None:
            super()._loop1(queue, messages_fetched)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _get_async(self, queue, count=1, callback=None):
        callback = ensure_promise(callback)
        q_url = self._new_queue(queue)
        qname = self.canonical_queue_name(queue)

        def ready(answer):
            received = self._on_messages_ready(q_url, queue, answer)
            if received is None:
                return  # the channel closed meanwhile
            self._receive_failures.pop(queue, None)
            callback(received)

        answer = promise(ready, on_error=promise(sqs_faults.receive_failed, (self, queue)))
        return self._get_from_sqs(  # type: ignore[attr-defined]  # kombu's private API, which its stubs omit (pinned <5.8 for this)
            queue_name=qname, queue_url=q_url, count=count, connection=self.asynsqs(queue=qname), callback=answer
        )

    @property
    def _receive_failures(self) -> dict[str, int]:
        """Failed receives in a row, per queue."""
        return self.__dict__.setdefault("_receive_failures_by_queue", {})

    def _on_messages_ready(self, queue, qname, messages):
        if self.connection is None:
            # Received after the channel closed (a stop): hand the messages straight back.
            sqs_faults.release(self._sqs, queue, messages)
            return None
        if not isinstance(messages, dict):
            raise sqs_faults.SQSAnswerError("ReceiveMessage", 200, f"unreadable answer {messages!r:.80}")
        if qname in self.job_queues:
            liveness.note_receive()  # the consumer still polls the job queue (tasks/liveness.py)
        return super()._on_messages_ready(queue, qname, messages)  # type: ignore[misc]  # kombu's private API, which its stubs omit (pinned <5.8 for this)

    def _receive_message(self, queue, max_number_of_messages=1, wait_time_seconds=None):
        # The blocking receive (Flower's events, `celery inspect`'s replies; the worker's goes
        # through the async client). kombu's boto3 client reads for AWS_TIMEOUT_SECONDS
        # (client-config), shorter than a long poll, so this one gets a client of its own.
        if queue.endswith(REPLY_EXCHANGE):
            wait_time_seconds = REPLY_WAIT_SECONDS
        params = {
            "QueueUrl": self._new_queue(queue),
            "MaxNumberOfMessages": max_number_of_messages,
            "WaitTimeSeconds": wait_time_seconds or self.wait_time_seconds,
        }
        attributes = self.get_message_attributes
        for name in ("MessageSystemAttributeNames", "MessageAttributeNames"):
            if attributes.get(name):
                params[name] = attributes[name]
        return sqs_faults.long_poll_client(self).receive_message(**params)


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

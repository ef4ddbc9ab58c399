"""Bad SQS answers never reach the worker's event loop: each kombu 5.7 defect, and our override.

Each test drives a channel's async receive (or delete, or ack) offline, with a fake event loop and
a fake HTTP client answering as SQS or the network would. It runs on tasks.sqs_fanout's Channel and
on kombu's own, where it is expected to fail (``xfail(strict=True)``): once a kombu release fixes a
defect, its stock run passes, strict xfail turns that into a failure, and the override can go.
"""

from __future__ import annotations

import json
import os
import threading
from io import BytesIO

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from kombu import Connection
from kombu.asynchronous import get_event_loop, set_event_loop
from kombu.asynchronous.http import Response
from kombu.exceptions import HttpError
from kombu.transport import SQS
from structlog.testing import capture_logs

from tasks import liveness, sqs_fanout, sqs_faults

URL = "http://127.0.0.1:9/123456789012/jobs"
QUEUE = "jobs"


class FakeHTTP:
    """kombu's HTTP client as the async SQS connection uses it: requests are kept, answered by the test."""

    def __init__(self) -> None:
        self.requests: list = []

    def add_request(self, request):
        self.requests.append(request)
        return request


class FakeHub:
    """The event loop: what was scheduled is kept, and run only when the test says."""

    def __init__(self) -> None:
        self._current_http_client = FakeHTTP()  # kombu.asynchronous.http.get_client finds it here
        self.soon: list = []
        self.later: list = []
        self.channels: list = []  # made on this loop, cleaned up after the test

    def call_soon(self, callback, *args):
        self.soon.append((callback, args))

    def call_later(self, delay, callback, *args):
        self.later.append((delay, callback, args))

    def call_repeatedly(self, *args):
        pass

    @property
    def requests(self) -> list:
        return self._current_http_client.requests


class StockTransport(SQS.Transport):
    Channel = SQS.Channel


class FakeSQS:
    """The boto3 client's calls the channel makes outside the async path."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list = []
        self.fail = fail

    def delete_message(self, **kwargs):
        self.calls.append(("DeleteMessage", kwargs))
        if self.fail:
            raise self.fail

    def change_message_visibility(self, **kwargs):
        self.calls.append(("ChangeMessageVisibility", kwargs))


OURS = "sqs_fanout"
STOCK = pytest.param("kombu", marks=pytest.mark.xfail(strict=True, reason="kombu 5.7 defect"))
STOCK_WAITS = pytest.param("kombu", marks=pytest.mark.xfail(strict=True, reason="kombu 5.7 waits polling_interval"))


@pytest.fixture
def hub():
    saved = get_event_loop()
    fake = FakeHub()
    set_event_loop(fake)
    yield fake
    set_event_loop(saved)
    for channel in fake.channels:
        # A slot kombu left held would be "restored" over the network as the channel closes.
        channel.qos._delivered.clear()
        # Closed, its QoS leaves multiprocessing's exit registry, which otherwise keeps the
        # channel, its connection and their boto3 clients alive for the rest of the session.
        channel.close()


def make_channel(kind: str, hub: FakeHub):
    if kind == OURS:
        transport, options = sqs_fanout.Transport, {"job_queues": {QUEUE: URL}}
    else:  # kombu's channel must not look the queue up over the network either
        transport, options = StockTransport, {"predefined_queues": {QUEUE: {"url": URL}}}
    connection = Connection(
        "sqs://test:test@127.0.0.1:9",
        transport=transport,
        transport_options={"region": "us-east-1", "is_secure": False, "polling_interval": 0.05, **options},
    )
    channel = connection.default_channel
    channel.hub = hub
    hub.channels.append(channel)
    channel._active_queues.append(QUEUE)
    channel.delivered = []
    channel.connection._callbacks[QUEUE] = channel.delivered.append
    return channel


def answer(request, status: int, body: bytes = b"", error: Exception | None = None) -> None:
    """SQS (or the network) answers ``request``; raises what the channel lets escape into the hub."""
    buffer = None if error is not None else BytesIO(body)
    request.on_ready(Response(request, status, buffer=buffer, error=error))


def throttling() -> bytes:
    return json.dumps({"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"}).encode()


BAD_ANSWERS = {
    "500 InternalError": (500, b'{"__type": "com.amazonaws.sqs#InternalError"}', None, "InternalError"),
    "503 garbage": (503, b"<html>Service Unavailable</html>", None, "503"),
    "504 empty": (504, b"", None, "504"),
    "reset": (599, b"", HttpError(599, "Recv failure: Connection reset by peer"), "Connection reset"),
    "timeout": (599, b"", HttpError(599, "Operation timed out after 20000 milliseconds"), "timed out"),
}
REJECTIONS = {
    "400 throttling": (400, throttling(), None, "ThrottlingException"),
    "403 access denied": (403, b'{"__type": "com.amazonaws.sqs#AccessDenied"}', None, "AccessDenied"),
    "400 garbage": (400, b"\x00\xffnot json", None, "400"),
}


def receive_fails_and_is_polled_again(channel, hub: FakeHub, status, body, error, detail) -> None:
    channel._schedule_queue(QUEUE)
    assert len(hub.requests) == 1
    with capture_logs() as logs:
        answer(hub.requests[-1], status, body, error)  # kombu: raises here, into the hub
    warnings = [entry for entry in logs if entry["event"] == "sqs.receive_failed"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning", logs
    assert warnings[0]["queue"] == QUEUE and detail in warnings[0]["error"], warnings
    # Backed off, not dropped: the queue is polled again after a short jittered wait.
    [(delay, callback, args)] = hub.later
    assert 0.25 <= delay <= 0.5
    callback(*args)
    assert len(hub.requests) == 2, "the queue was not polled again"
    answer(hub.requests[-1], 200, b"{}")  # SQS is back: an empty receive, then the usual pause
    assert hub.later[-1][0] == 0.05
    assert channel._receive_failures == {}


@pytest.mark.parametrize("kind", [OURS, STOCK])
@pytest.mark.parametrize("fault", list(BAD_ANSWERS))
def test_a_5xx_timeout_or_reset_on_receive_is_logged_backed_off_and_polled_again(kind, fault, hub):
    """kombu turns these into ``[]``, then calls ``[].get('Messages')``: AttributeError in the hub."""
    receive_fails_and_is_polled_again(make_channel(kind, hub), hub, *BAD_ANSWERS[fault])


@pytest.mark.parametrize("kind", [OURS, STOCK])
@pytest.mark.parametrize("fault", list(REJECTIONS))
def test_a_throttling_or_other_4xx_on_receive_is_logged_backed_off_and_polled_again(kind, fault, hub):
    """kombu raises a bare Exception for any other status, in the hub."""
    receive_fails_and_is_polled_again(make_channel(kind, hub), hub, *REJECTIONS[fault])


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_failure_to_start_a_receive_is_backed_off_not_raised_into_the_timer(kind, hub):
    """kombu lets it escape the ``_schedule_queue`` timer: "Error in timer", the queue never polled again."""
    channel = make_channel(kind, hub)

    def lookup_fails(queue, **kwargs):
        raise EndpointConnectionError(endpoint_url=URL)

    channel._new_queue = lookup_fails
    with capture_logs() as logs:
        channel._schedule_queue(QUEUE)
    assert [entry["event"] for entry in logs] == ["sqs.receive_failed"]
    assert [callback for _, callback, _ in hub.later] == [channel._schedule_queue]


def test_the_back_off_doubles_with_each_failure_in_a_row_up_to_its_cap(hub):
    channel = make_channel(OURS, hub)
    ceilings = []
    for _ in range(8):
        hub.later.clear()
        channel._schedule_queue(QUEUE)
        answer(hub.requests[-1], 500, b"")
        ceilings.append(hub.later[-1][0])
    expected = [min(sqs_faults.RECEIVE_BACKOFF_MAX_SECONDS, 0.5 * 2**n) for n in range(8)]
    assert all(c / 2 <= delay <= c for delay, c in zip(ceilings, expected, strict=True)), ceilings
    assert max(ceilings) <= sqs_faults.RECEIVE_BACKOFF_MAX_SECONDS


def test_a_failed_receive_still_counts_as_polling_for_the_liveness_check(hub, monkeypatch):
    """SQS failing is not the consumer hanging: restarting the worker would not help."""
    channel = make_channel(OURS, hub)
    noted = []
    monkeypatch.setattr(liveness, "note_receive", lambda: noted.append(1))
    channel._schedule_queue(QUEUE)
    answer(hub.requests[-1], 500, b"")
    assert noted == [1]


def test_messages_received_in_a_good_answer_are_delivered(hub):
    channel = make_channel(OURS, hub)
    channel._schedule_queue(QUEUE)
    body = {"Messages": [{"MessageId": "m1", "ReceiptHandle": "h1", "Body": '{"body": "x", "properties": {}}'}]}
    answer(hub.requests[-1], 200, json.dumps(body).encode())
    assert [message["properties"]["delivery_tag"] for message in channel.delivered] == ["h1"]
    assert hub.soon, "a receive that found messages polls again at once"


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_receive_that_completes_after_the_channel_closed_hands_its_messages_back(kind, hub):
    """The stop's "Error in timer: AttributeError("'NoneType' object has no attribute ...")"."""
    channel = make_channel(kind, hub)
    channel._schedule_queue(QUEUE)
    channel._sqs = channel._predefined_queue_clients[QUEUE] = client = FakeSQS()
    channel.close()  # the worker stops while the long poll is out
    body = {"Messages": [{"MessageId": "m1", "ReceiptHandle": "h1", "Body": "{}"}]}
    answer(hub.requests[-1], 200, json.dumps(body).encode())
    assert client.calls == [
        ("ChangeMessageVisibility", {"QueueUrl": URL, "ReceiptHandle": "h1", "VisibilityTimeout": 0})
    ]
    assert hub.later == [] and hub.soon == []
    channel._schedule_queue(QUEUE)  # a poll already scheduled when it closed does nothing
    channel._loop1(QUEUE, 0)
    assert len(hub.requests) == 1 and hub.later == []


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_failed_async_delete_of_a_no_ack_message_is_logged_not_raised(kind, hub):
    """Events and replies are deleted as they are received, with no error callback in kombu."""
    channel = make_channel(kind, hub)
    with capture_logs() as logs:
        channel._delete_message(QUEUE, {"ReceiptHandle": "h1"})
        answer(hub.requests[-1], 500, b"")
    assert [(entry["event"], entry["operation"], entry["log_level"]) for entry in logs] == [
        ("sqs.call_failed", "DeleteMessage", "warning")
    ]


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_failed_ack_is_logged_once_and_releases_its_slot(kind, hub):
    """kombu re-raises a connection error (Celery logs it CRITICAL, with a traceback), or drops a
    ClientError silently."""
    channel = make_channel(kind, hub)
    channel._sqs = client = FakeSQS(fail=EndpointConnectionError(endpoint_url=URL))
    channel._predefined_queue_clients[QUEUE] = client  # the client kombu's own channel asks for
    message = channel.Message(
        channel._envelope_payload({}, "{}", {"ReceiptHandle": "h1", "MessageId": "m1"}, URL), channel=channel
    )
    message.delivery_info["routing_key"] = QUEUE
    channel.qos.append(message, "h1")
    with capture_logs() as logs:
        channel.basic_ack("h1")
        assert "h1" in channel.qos._dirty, "the prefetch slot is still held"
        channel.close()  # the worker stops: a delete still pending (ours runs beside the loop) ends first
    assert client.calls == [("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "h1"})]
    assert [(entry["event"], entry["queue"], entry["log_level"]) for entry in logs] == [
        ("sqs.call_failed", QUEUE, "warning")
    ]


class SlowSQS(FakeSQS):
    """DeleteMessage answers only once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()

    def delete_message(self, **kwargs):
        assert self.answer.wait(10), "never answered"
        super().delete_message(**kwargs)


def delivered(channel, handle: str):
    message = channel.Message(
        channel._envelope_payload({}, "{}", {"ReceiptHandle": handle, "MessageId": handle}, URL), channel=channel
    )
    message.delivery_info["routing_key"] = QUEUE
    channel.qos.append(message, handle)
    return message


def test_an_ack_frees_its_slot_and_returns_before_sqs_answers_the_delete(hub):
    """kombu deletes in the event loop: the next message waits for SQS's answer to the step before's delete."""
    channel = make_channel(OURS, hub)
    channel._sqs = client = SlowSQS()
    channel.basic_qos(prefetch_count=1)
    delivered(channel, "h1")
    assert not channel.qos.can_consume()
    channel.basic_ack("h1")  # returns with SQS yet to answer
    assert channel.qos.can_consume(), "the slot waits for the delete"
    assert client.calls == []
    client.answer.set()
    assert channel._pending_deletes.flush() == 0
    assert client.calls == [("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "h1"})]


def run_soon(hub: FakeHub) -> None:
    """Run what the loop was asked to run next (and what that asks for), as the hub's next turn would."""
    while hub.soon:
        callback, args = hub.soon.pop(0)
        callback(*args)


@pytest.mark.parametrize("kind", [OURS, STOCK_WAITS])
def test_a_full_channel_polls_again_the_moment_an_ack_frees_a_slot(kind, hub):
    """kombu looks again only ``polling_interval`` later: in a chain, the step sent on while its
    sender's slot is still held waited up to 50 ms for its receive, half a bare chain's time."""
    channel = make_channel(kind, hub)
    channel.asynsqs(queue=QUEUE)  # the receive's client, made before the delete's is faked
    channel._sqs = channel._predefined_queue_clients[QUEUE] = FakeSQS()
    channel.basic_qos(prefetch_count=1)
    delivered(channel, "h1")
    channel._schedule_queue(QUEUE)  # the receive after h1's: every slot is held
    assert hub.requests == []
    channel.basic_ack("h1")
    run_soon(hub)
    assert len(hub.requests) == 1, "the queue waits for its timer"


def test_a_parked_queue_is_polled_once_whether_the_ack_or_the_back_stop_comes_first(hub):
    channel = make_channel(OURS, hub)
    channel.asynsqs(queue=QUEUE)
    channel._sqs = FakeSQS()
    channel.basic_qos(prefetch_count=1)
    delivered(channel, "h1")
    channel._schedule_queue(QUEUE)
    [(delay, back_stop, args)] = hub.later  # kombu's own wait stays, in case a slot frees unseen
    assert delay == 0.05
    channel.basic_ack("h1")
    run_soon(hub)
    back_stop(*args)
    assert len(hub.requests) == 1, "polled twice: two receives would fetch past the prefetch"


def test_a_parked_queue_is_polled_after_the_polling_interval_if_no_ack_frees_a_slot(hub):
    channel = make_channel(OURS, hub)
    channel.basic_qos(prefetch_count=1)
    delivered(channel, "h1")
    channel._schedule_queue(QUEUE)
    [(_, back_stop, args)] = hub.later
    back_stop(*args)  # still full: parked again, with a new back-stop
    assert hub.requests == [] and len(hub.later) == 2
    channel.qos._delivered.clear()  # a slot freed by a path that does not resume the queue
    hub.later[-1][1](*hub.later[-1][2])
    assert len(hub.requests) == 1


def test_a_larger_prefetch_polls_a_parked_queue_at_once(hub):
    """Celery raises the prefetch for a task with an ETA (a retry's countdown): a slot frees without an ack."""
    channel = make_channel(OURS, hub)
    channel.basic_qos(prefetch_count=1)
    delivered(channel, "h1")
    channel._schedule_queue(QUEUE)
    channel.basic_qos(prefetch_count=2)
    run_soon(hub)
    assert len(hub.requests) == 1


def test_a_stopping_worker_waits_for_its_pending_deletes_and_restores_nothing_it_acked(hub):
    channel = make_channel(OURS, hub)
    channel._sqs = client = SlowSQS()
    for handle in ("h1", "h2"):
        delivered(channel, handle)
        channel.basic_ack(handle)
    threading.Timer(0.2, client.answer.set).start()
    channel.close()  # what the worker's warm shutdown does, once its steps have returned
    assert sorted(kwargs["ReceiptHandle"] for _, kwargs in client.calls) == ["h1", "h2"]
    assert [call for call, _ in client.calls] == ["DeleteMessage", "DeleteMessage"], "an acked message was restored"


def test_deletes_still_pending_after_the_bound_are_left_to_the_visibility_timeout_with_a_warning(hub, monkeypatch):
    channel = make_channel(OURS, hub)
    channel._sqs = client = SlowSQS()
    delivered(channel, "h1")
    channel.basic_ack("h1")
    with capture_logs() as logs:
        assert channel._pending_deletes.flush(timeout=0.05) == 1
    assert [(entry["event"], entry["count"]) for entry in logs] == [("sqs.deletes_pending", 1)]
    client.answer.set()
    assert channel._pending_deletes.flush() == 0


class FailingVisibility(FakeSQS):
    def change_message_visibility(self, **kwargs):
        self.calls.append(("ChangeMessageVisibility", kwargs))
        raise EndpointConnectionError(endpoint_url=URL)


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_failed_requeue_is_logged_once_and_releases_its_slot(kind, hub):
    """A step that cannot hand on rejects its message with requeue (tasks/steps.py): kombu makes it
    visible again with ChangeMessageVisibility, and if that fails raises into the hub with the slot held."""
    channel = make_channel(kind, hub)
    channel._sqs = channel._predefined_queue_clients[QUEUE] = client = FailingVisibility()
    message = channel.Message(
        channel._envelope_payload({}, "{}", {"ReceiptHandle": "h1", "MessageId": "m1"}, URL), channel=channel
    )
    message.delivery_info.update(routing_key=QUEUE, exchange="")
    channel.qos.append(message, "h1")
    with capture_logs() as logs:
        channel.basic_reject("h1", requeue=True)
    assert [call for call, _ in client.calls] == ["ChangeMessageVisibility"]
    assert [(entry["event"], entry["operation"], entry["queue"]) for entry in logs] == [
        ("sqs.call_failed", "ChangeMessageVisibility", QUEUE)
    ]
    assert "h1" in channel.qos._dirty, "the prefetch slot is still held"


class FlakyAttributes(FakeSQS):
    """GetQueueAttributes (kombu's queue_declare asks for the queue's size) fails ``failures`` times first."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures, self.error = failures, error

    def get_queue_attributes(self, **kwargs):
        self.calls.append(("GetQueueAttributes", kwargs))
        if len(self.calls) <= self.failures:
            raise self.error
        return {"Attributes": {"ApproximateNumberOfMessages": "3"}}


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "fault injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetQueueAttributes",
    )


@pytest.fixture
def in_the_worker():
    """As in the worker's main process (tasks/celery_app.py: WaitOutDeclarationsStep)."""
    sqs_faults.wait_out_declarations(True)
    yield
    sqs_faults.wait_out_declarations(False)


@pytest.fixture
def quick_backoff(monkeypatch, in_the_worker):
    monkeypatch.setattr(sqs_faults, "RECEIVE_BACKOFF_SECONDS", 0.001)
    monkeypatch.setattr(sqs_faults, "RECEIVE_BACKOFF_MAX_SECONDS", 0.002)


@pytest.mark.parametrize(
    "error",
    [
        client_error(500, "InternalError"),
        client_error(400, "RequestThrottled"),
        EndpointConnectionError(endpoint_url=URL),
    ],
    ids=["500", "throttled", "unreachable"],
)
@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_transient_failure_to_declare_a_queue_is_tried_again_not_raised(kind, error, hub, quick_backoff):
    """As Celery's consumer starts it declares its queues: kombu lets a ClientError out of the
    GetQueueAttributes behind it, Celery calls it "Unrecoverable error", and the worker exits (found
    by the 20 % fault run). Ours tries it again, with one WARNING for the streak."""
    channel = make_channel(kind, hub)
    channel._sqs = channel._predefined_queue_clients[QUEUE] = client = FlakyAttributes(2, error)
    with capture_logs() as logs:
        declared = channel.queue_declare(QUEUE)
    assert (declared.queue, declared.message_count) == (QUEUE, 3)
    assert [call for call, _ in client.calls] == ["GetQueueAttributes"] * 3
    assert [(entry["event"], entry["operation"], entry["queue"], entry["log_level"]) for entry in logs] == [
        ("sqs.call_failed", "queue_declare", QUEUE, "warning")
    ]


@pytest.mark.parametrize("kind", [OURS, STOCK])
def test_a_transient_failure_to_subscribe_a_control_queue_to_its_topic_is_tried_again_not_raised(
    kind, hub, quick_backoff, monkeypatch
):
    """The pidbox's basic_consume subscribes its queue to the control topic: SNS's Subscribe, then
    the queue's policy (SetQueueAttributes). Three 500s in a row there at start-up (botocore's
    tries) ended the worker with "Unrecoverable error" (found by the 20 % faults run)."""
    channel = make_channel(kind, hub)
    made: list[tuple[str, str]] = []

    def subscribe_queue(queue_name: str, exchange_name: str) -> str:
        made.append((queue_name, exchange_name))
        if len(made) < 3:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "fault injected"}}, "SetQueueAttributes")
        return "arn:aws:sns:us-east-1:123456789012:pidbox:1"

    monkeypatch.setattr(channel, "_get_exchange_for_queue", lambda queue: "celery.pidbox")
    monkeypatch.setattr(channel, "_exchange_is_fanout", lambda exchange: True)
    monkeypatch.setattr(channel.fanout.subscriptions, "subscribe_queue", subscribe_queue)
    with capture_logs() as logs:
        channel._subscribe_queue_to_fanout_exchange_if_required("w1.celery.pidbox")  # as basic_consume calls it
    assert made == [("w1.celery.pidbox", "celery.pidbox")] * 3
    assert [(entry["event"], entry["operation"], entry["log_level"]) for entry in logs] == [
        ("sqs.call_failed", "subscribe", "warning")
    ]


def test_a_declaration_refused_for_good_is_raised_at_once(hub, quick_backoff):
    """A denied permission or a bad name is not waited out: the worker says so and stops."""
    channel = make_channel(OURS, hub)
    channel._sqs = client = FlakyAttributes(5, client_error(403, "AccessDenied"))
    with pytest.raises(ClientError, match="AccessDenied"):
        channel.queue_declare(QUEUE)
    assert len(client.calls) == 1


def test_a_declaration_that_keeps_failing_ends_as_a_connection_error_celery_restarts_on(
    hub, monkeypatch, in_the_worker
):
    monkeypatch.setattr(sqs_faults, "DECLARE_RETRY_SECONDS", 0.05)
    monkeypatch.setattr(sqs_faults, "RECEIVE_BACKOFF_SECONDS", 0.01)
    channel = make_channel(OURS, hub)
    channel._sqs = FlakyAttributes(1000, client_error(503, "ServiceUnavailable"))
    with pytest.raises(sqs_faults.BrokerUnavailable, match="queue_declare jobs") as raised:
        channel.queue_declare(QUEUE)
    # Celery's consumer catches its connection's connection_errors and restarts; anything else ends the worker.
    assert isinstance(raised.value, channel.connection.connection_errors)


def test_outside_the_worker_a_failed_declaration_is_raised_at_once(hub):
    """The API's first send declares its queue too: it must answer 503 within seconds, not wait SQS out."""
    channel = make_channel(OURS, hub)
    channel._sqs = client = FlakyAttributes(5, client_error(500, "InternalError"))
    with pytest.raises(ClientError, match="InternalError"):
        channel.queue_declare(QUEUE)
    assert len(client.calls) == 1


def test_the_worker_waits_out_declarations_and_its_pool_children_do_not():
    from tasks.celery_app import WaitOutDeclarationsStep

    class Worker:  # what a worker step's __init__ is given; it reads nothing of it
        pass

    try:
        WaitOutDeclarationsStep(Worker())
        assert sqs_faults._waiting_out is True
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # a pool child, as prefork makes it
            os.write(write, b"1" if sqs_faults._waiting_out else b"0")
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(read, 1) == b"0"
    finally:
        sqs_faults.wait_out_declarations(False)

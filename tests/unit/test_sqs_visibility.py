"""The worker keeps the job messages it holds invisible (tasks/sqs_visibility.py): its bookkeeping, offline.

A fake SQS client records each ChangeMessageVisibilityBatch and answers as told; a fake clock
moves time. The channel tests drive tasks.sqs_fanout's Channel the way Celery's consumer does:
a delivery appended to the QoS, then acked or rejected.
"""

from __future__ import annotations

import importlib
import threading

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from kombu import Connection
from structlog.testing import capture_logs

from tasks import sqs_fanout
from tasks.sqs_visibility import BATCH_SIZE, VisibilityExtender

URL = "http://127.0.0.1:9/123456789012/jobs"
OTHER_URL = "http://127.0.0.1:9/123456789012/other"
TIMEOUT = 30
HOLD_LIMIT = 390
BATCH_CALL = "ChangeMessageVisibilityBatch"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSQS:
    """Records every ChangeMessageVisibilityBatch; fails the whole call, or some entries, as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict]]] = []
        self.raise_: Exception | None = None
        self.failed_handles: dict[str, str] = {}  # receipt handle -> error code of its entry
        self.called = threading.Event()

    def change_message_visibility_batch(self, QueueUrl, Entries):  # boto3's names
        self.calls.append((QueueUrl, Entries))
        self.called.set()
        if self.raise_ is not None:
            raise self.raise_
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": self.failed_handles[e["ReceiptHandle"]], "Message": "no"}
            for e in Entries
            if e["ReceiptHandle"] in self.failed_handles
        ]
        ok = [{"Id": e["Id"]} for e in Entries if e["ReceiptHandle"] not in self.failed_handles]
        return {"Successful": ok, "Failed": failed}

    def handles(self, call: int = -1) -> list[str]:
        return [entry["ReceiptHandle"] for entry in self.calls[call][1]]


@pytest.fixture
def sqs() -> FakeSQS:
    return FakeSQS()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def extender(sqs, clock, monkeypatch):
    made = VisibilityExtender(lambda: sqs, visibility_timeout=TIMEOUT, hold_limit_seconds=HOLD_LIMIT, clock=clock)
    monkeypatch.setattr(made, "_ensure_thread", lambda: None)  # the test runs each round itself
    return made


def warnings(logs) -> list[dict]:
    return [entry for entry in logs if entry["log_level"] == "warning"]


def test_a_held_message_is_extended_a_third_of_the_timeout_after_its_delivery_and_each_extension(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    extender.hold("t2", "jobs", URL, "h2")
    assert extender.interval == TIMEOUT / 3
    assert extender.extend() == TIMEOUT / 3 and sqs.calls == [], "not due yet"
    clock.now += TIMEOUT / 3
    assert extender.extend() == TIMEOUT / 3
    assert sqs.calls == [
        (
            URL,
            [
                {"Id": "0", "ReceiptHandle": "h1", "VisibilityTimeout": TIMEOUT},
                {"Id": "1", "ReceiptHandle": "h2", "VisibilityTimeout": TIMEOUT},
            ],
        )
    ]
    clock.now += TIMEOUT / 3 - 1
    assert extender.extend() == 1 and len(sqs.calls) == 1
    clock.now += 1
    extender.extend()
    assert sqs.handles() == ["h1", "h2"] and len(sqs.calls) == 2


def test_a_message_held_for_less_than_a_third_of_the_timeout_costs_no_request(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    clock.now += TIMEOUT / 3 - 0.5
    extender.extend()
    extender.release("t1")
    clock.now += TIMEOUT
    extender.extend()
    assert sqs.calls == []


def test_holds_are_sent_in_batches_of_at_most_ten_per_queue(extender, sqs, clock):
    for n in range(23):
        extender.hold(f"a{n}", "jobs", URL, f"a{n}")
    extender.hold("b0", "other", OTHER_URL, "b0")
    clock.now += TIMEOUT / 3
    extender.extend()
    assert [(url, len(entries)) for url, entries in sqs.calls] == [(URL, 10), (URL, 10), (URL, 3), (OTHER_URL, 1)]
    assert all(len(entries) <= BATCH_SIZE for _, entries in sqs.calls)
    assert sorted(h for n in range(3) for h in sqs.handles(n)) == sorted(f"a{n}" for n in range(23))
    assert all(len({e["Id"] for e in entries}) == len(entries) for _, entries in sqs.calls)


def test_a_released_message_is_extended_no_more_and_nothing_is_sent_with_nothing_held(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    extender.hold("t2", "jobs", URL, "h2")
    extender.release("t1")
    clock.now += TIMEOUT / 3
    extender.extend()
    assert sqs.handles() == ["h2"]
    extender.release("t2")
    extender.release("t2")  # twice (an ack after a failed reject): harmless
    extender.extend()
    assert len(sqs.calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url=URL),
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, BATCH_CALL),
        ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, BATCH_CALL),
    ],
    ids=["unreachable", "throttled", "5xx"],
)
def test_a_failed_call_is_logged_once_swallowed_and_tried_again_sooner(extender, sqs, clock, error):
    extender.hold("t1", "jobs", URL, "h1")
    sqs.raise_ = error
    clock.now += TIMEOUT / 3
    with capture_logs() as logs:
        wait = extender.extend()  # raises nothing
    [warning] = warnings(logs)
    assert (warning["event"], warning["operation"], warning["queue"]) == ("sqs.call_failed", BATCH_CALL, "jobs")
    assert type(error).__name__ in warning["error"] or error.response["Error"]["Code"] in warning["error"]
    assert 0.5 <= wait <= 1.0, "tried again within a second, not a whole interval later"
    assert extender.held() == ["t1"], "still held: the next round extends it"
    sqs.raise_ = None
    with capture_logs() as logs:
        assert extender.extend() == extender.interval
    assert not warnings(logs) and sqs.handles() == ["h1"] and extender.failures == 0


def test_failures_in_a_row_back_off_up_to_the_interval(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    sqs.raise_ = EndpointConnectionError(endpoint_url=URL)
    clock.now += TIMEOUT / 3
    with capture_logs():
        waits = [extender.extend() for _ in range(8)]
    assert max(waits) <= extender.interval and waits[-1] >= extender.interval / 2
    assert len(sqs.calls) == 8


def test_a_message_acked_while_its_extension_was_in_flight_is_ignored_quietly(extender, sqs, clock):
    """The race with the ack: SQS answers ReceiptHandleIsInvalid for a message just deleted."""
    extender.hold("t1", "jobs", URL, "h1")
    extender.hold("t2", "jobs", URL, "h2")
    sqs.failed_handles["h1"] = "ReceiptHandleIsInvalid"
    original = sqs.change_message_visibility_batch

    def ack_meanwhile(**kwargs):
        extender.release("t1")  # the hub acked t1 while the thread's request was out
        return original(**kwargs)

    sqs.change_message_visibility_batch = ack_meanwhile
    clock.now += TIMEOUT / 3
    with capture_logs() as logs:
        assert extender.extend() == extender.interval
    assert not warnings(logs), logs
    assert [entry["event"] for entry in logs] == ["sqs.extend_after_release"]
    assert extender.held() == ["t2"]


def test_a_message_deleted_by_an_ack_not_yet_counted_is_dropped_quietly(extender, sqs, clock):
    """The ack's DeleteMessage got there, but the hold ends only when the ack returns."""
    extender.hold("t1", "jobs", URL, "h1")
    sqs.failed_handles["h1"] = "ReceiptHandleIsInvalid"
    clock.now += TIMEOUT / 3
    with capture_logs() as logs:
        extender.extend()
    assert not warnings(logs), logs
    assert extender.held() == [], "a deleted message cannot be extended again"


def test_a_message_whose_timeout_ran_out_is_warned_about_once_and_dropped(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    sqs.raise_ = EndpointConnectionError(endpoint_url=URL)
    clock.now += TIMEOUT / 3
    with capture_logs():
        extender.extend()
    sqs.raise_ = None
    sqs.failed_handles["h1"] = "InvalidParameterValue"  # SQS handed it out again meanwhile
    clock.now += TIMEOUT
    with capture_logs() as logs:
        extender.extend()
        extender.extend()
    [warning] = warnings(logs)
    assert (warning["event"], warning["queue"]) == ("sqs.hold_lost", "jobs")
    assert "InvalidParameterValue" in warning["error"]
    assert extender.held() == [] and len(sqs.calls) == 2


def test_an_entry_failing_on_sqss_side_is_logged_kept_and_tried_again_sooner(extender, sqs, clock):
    extender.hold("t1", "jobs", URL, "h1")
    sqs.failed_handles["h1"] = "InternalError"
    clock.now += TIMEOUT / 3
    with capture_logs() as logs:
        wait = extender.extend()
    [warning] = warnings(logs)
    assert warning["event"] == "sqs.call_failed" and "InternalError" in warning["error"]
    assert wait <= 1.0 and extender.held() == ["t1"]


def test_extending_stops_once_a_message_was_held_for_the_hold_limit(extender, sqs, clock):
    extender.hold("old", "jobs", URL, "h-old")
    clock.now += HOLD_LIMIT - 1
    extender.hold("new", "jobs", URL, "h-new")
    extender.extend()
    assert sqs.handles() == ["h-old"]
    clock.now += 1
    with capture_logs() as logs:
        extender.extend()
        clock.now += TIMEOUT / 3
        extender.extend()
    [warning] = warnings(logs)
    assert (warning["event"], warning["queue"]) == ("sqs.hold_limit_reached", "jobs")
    assert warning["heldSeconds"] == HOLD_LIMIT
    assert sqs.handles() == ["h-new"] and len(sqs.calls) == 2
    assert extender.held() == ["new"]


def test_the_thread_extends_on_its_own_and_stops_with_the_channel(sqs):
    extender = VisibilityExtender(lambda: sqs, visibility_timeout=3, hold_limit_seconds=60)
    extender.hold("t1", "jobs", URL, "h1")
    assert sqs.called.wait(5), "no extension within a few seconds of a 3 s timeout"
    assert sqs.handles(0) == ["h1"] and sqs.calls[0][1][0]["VisibilityTimeout"] == 3
    extender.stop()
    assert extender.held() == []
    assert extender._thread is not None
    extender._thread.join(5)
    assert not extender._thread.is_alive()


# --- the channel: holds follow kombu's deliveries ---------------------------------------------


def make_channel(**options):
    connection = Connection(
        "sqs://test:test@127.0.0.1:9",
        transport=sqs_fanout.Transport,
        transport_options={"region": "us-east-1", "is_secure": False, "job_queues": {"jobs": URL}, **options},
    )
    return connection.default_channel


def deliver(channel, handle: str):
    message = channel.Message(
        channel._envelope_payload({}, "{}", {"ReceiptHandle": handle, "MessageId": handle}, URL), channel=channel
    )
    message.delivery_info.update(routing_key="jobs", exchange="")
    channel.qos.append(message, handle)
    return message


class QuietSQS:
    """The channel's own boto3 client: DeleteMessage and ChangeMessageVisibility succeed."""

    def delete_message(self, **kwargs):
        pass

    def change_message_visibility(self, **kwargs):
        pass


@pytest.fixture
def channel(monkeypatch):
    monkeypatch.setattr(VisibilityExtender, "_ensure_thread", lambda self: None)
    made = make_channel(visibility_timeout=30, hold_limit_seconds=390)
    made._sqs = QuietSQS()
    yield made
    made.qos._delivered.clear()  # nothing to restore over the network at exit


def test_a_delivery_is_held_until_its_ack(channel):
    extender = channel.visibility_extender
    assert (extender.visibility_timeout, extender.hold_limit_seconds) == (30, 390)
    deliver(channel, "h1")
    deliver(channel, "h2")
    assert extender.held() == ["h1", "h2"]
    hold = extender._holds["h1"]
    assert (hold.queue, hold.queue_url, hold.receipt_handle) == ("jobs", URL, "h1")
    channel.basic_ack("h1")
    assert extender.held() == ["h2"]


@pytest.mark.parametrize("requeue", [False, True])
def test_a_delivery_is_held_until_its_reject(channel, requeue):
    deliver(channel, "h1")
    channel.basic_reject("h1", requeue=requeue)
    assert channel.visibility_extender.held() == []


def test_messages_handed_back_at_a_stop_are_no_longer_held(channel):
    deliver(channel, "h1")
    deliver(channel, "h2")
    channel.qos.restore_unacked()
    assert channel.visibility_extender.held() == []


def test_without_a_hold_limit_the_channel_extends_nothing():
    """kombu's behaviour, for any channel not configured by celeryconfig.py (a producer's, a test's)."""
    channel = make_channel()
    try:
        assert channel.visibility_extender is None
        deliver(channel, "h1")  # no hold, no thread
        assert "h1" in channel.qos._delivered
    finally:
        channel.qos._delivered.clear()


def test_celery_gives_the_transport_the_queues_timeout_and_the_hold_limit(monkeypatch):
    monkeypatch.setenv("VISIBILITY_TIMEOUT_SECONDS", "12")
    monkeypatch.setenv("STEP_TIME_LIMIT_SECONDS", "40")
    import celeryconfig

    config = importlib.reload(celeryconfig)
    try:
        options = config.broker_transport_options
        assert (options["visibility_timeout"], options["hold_limit_seconds"]) == (12, 3 * 40 + 30)
        assert config.task_time_limit == 40
    finally:
        monkeypatch.undo()
        importlib.reload(celeryconfig)

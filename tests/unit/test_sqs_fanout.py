"""Events and remote control over SNS: the transport's declarations, its settings and the Celery wiring."""

from __future__ import annotations

import importlib

import pytest

from storage.errors import ConfigError
from storage.settings import Settings
from tasks import sqs_fanout, sqs_faults


def test_transport_declares_the_fanout_it_implements_over_sns():
    assert {"direct", "fanout"} <= set(sqs_fanout.Transport.implements.exchange_type)
    assert sqs_fanout.Transport.Channel is sqs_fanout.Channel


def test_control_prefix_defaults_per_env_and_fits_the_longest_env():
    assert Settings.from_env({}).control_prefix == "ghost-local-ctl-"
    names = {name: "xyz" for name in ("JOBS_TABLE_NAME", "ARTIFACTS_BUCKET", "QUEUE_NAME", "DEAD_LETTER_QUEUE_NAME")}
    # 12 characters is the longest env Terraform accepts (variables.tf).
    assert len(Settings.from_env({"ENV": "abcdefghijkl", **names}).control_prefix) <= 24


@pytest.mark.parametrize("prefix", ["", "x" * 25, "has.dot-", "has space"])
def test_control_prefix_must_keep_queue_names_valid(prefix):
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"CONTROL_PREFIX": prefix})
    assert error.value.details == {"setting": "CONTROL_PREFIX"}


def test_topic_arns_are_set_together():
    arn = "arn:aws:sns:us-east-1:123456789012:ghost-prod-ctl-celeryev"
    with pytest.raises(ConfigError):
        Settings.from_env({"EVENTS_TOPIC_ARN": arn})
    settings = Settings.from_env({"EVENTS_TOPIC_ARN": arn, "CONTROL_TOPIC_ARN": arn + "x"})
    assert (settings.events_topic_arn, settings.control_topic_arn) == (arn, arn + "x")


def test_celery_runs_events_and_remote_control_on_the_fanout_transport(monkeypatch):
    monkeypatch.setenv("EVENTS_TOPIC_ARN", "arn:events")
    monkeypatch.setenv("CONTROL_TOPIC_ARN", "arn:control")
    import celeryconfig

    config = importlib.reload(celeryconfig)
    try:
        assert config.broker_transport == "tasks.sqs_fanout:Transport"
        options = config.broker_transport_options
        assert options["supports_fanout"] is True
        assert options["control_prefix"] == "ghost-local-ctl-"
        assert "predefined_queues" not in options  # it would forbid the per-process control queues
        assert options["predefined_exchanges"] == {
            "celeryev": {"arn": "arn:events"},
            "celery.pidbox": {"arn": "arn:control"},
        }
        assert config.worker_enable_remote_control
        # Task events start off; Flower turns them on while it watches (tasks/celery_app.py).
        assert config.worker_send_task_events is False
        # A submission never waits on SNS: producers send no task-sent event.
        assert config.task_send_sent_event is False
    finally:
        monkeypatch.undo()
        importlib.reload(celeryconfig)


def test_kombus_own_boto3_clients_retry_time_out_and_pool_as_the_projects_do(monkeypatch):
    """Without ``client-config`` kombu's SQS and SNS clients run botocore's legacy retry mode (5 attempts)."""
    from kombu import Connection

    from storage.bootstrap import aws_client

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("AWS_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("API_THREADS", "24")
    import celeryconfig

    config = importlib.reload(celeryconfig)
    try:
        connection = Connection(
            "sqs://test:test@127.0.0.1:9",
            transport=sqs_fanout.Transport,
            transport_options=config.broker_transport_options,
        )
        channel = connection.default_channel
        ours = aws_client(Settings.from_env(), "sqs").meta.config
        for client in (channel.sqs(), channel.fanout.get_client()):
            kombus = client.meta.config
            # AWS_MAX_ATTEMPTS counts every try, the first included, as in the AWS SDKs: 4 tries.
            assert kombus.retries == ours.retries == {"total_max_attempts": 4, "mode": "standard"}
            assert kombus.connect_timeout == kombus.read_timeout == ours.read_timeout == 2.5
            # One client serves all of an API process's 24 request threads (_new_boto_client).
            assert kombus.max_pool_connections == ours.max_pool_connections == 24
        # But a blocking long poll (Flower's events, `celery inspect`) must outlast SQS's 20 s.
        long_poll = sqs_faults.long_poll_client(channel).meta.config
        assert long_poll.read_timeout == 22.5 and long_poll.retries == ours.retries
        connection.release()
    finally:
        monkeypatch.undo()
        importlib.reload(celeryconfig)


@pytest.mark.parametrize(("count", "redelivered"), [("1", False), ("2", True), ("17", True), (None, False)])
def test_a_message_sqs_handed_out_before_is_marked_redelivered(count, redelivered):
    """Celery passes ``redelivered`` to the task; SQS tells it by ApproximateReceiveCount."""
    from kombu import Connection

    with Connection(transport=sqs_fanout.Transport, transport_options={"region": "us-east-1"}) as connection:
        channel = connection.default_channel
        message = {"ReceiptHandle": "h1", "MessageId": "m1", "Body": "{}"}
        if count is not None:
            message["Attributes"] = {"ApproximateReceiveCount": count}
        payload = channel._envelope_payload({}, "{}", message, "http://127.0.0.1/q")
        assert payload["properties"]["delivery_info"]["redelivered"] is redelivered


def test_the_channels_of_a_process_share_one_boto3_client_a_forked_one_makes_its_own(monkeypatch):
    """kombu made each channel its own boto3 Session and client (50-150 ms of CPU): a fresh API's
    first burst of concurrent submissions built one per connection it took from the pool."""
    from botocore.config import Config
    from kombu import Connection

    connections = []

    def channel(**options):
        connection = Connection(
            "sqs://test:test@127.0.0.1:9",
            transport=sqs_fanout.Transport,
            transport_options={"region": "us-east-1", **options},
        )
        connections.append(connection)
        return connection.default_channel

    first, second = channel(), channel()
    try:
        assert first is not second and first.sqs() is second.sqs()
        assert first.fanout.get_client() is second.fanout.get_client()  # SNS's too
        assert first.fanout.get_client() is not first.sqs()
        # Other client settings, another client with them.
        other = channel(**{"client-config": {"read_timeout": 7}}).sqs()
        assert other is not first.sqs() and other.meta.config.read_timeout == 7
        # Settings given for one client (the long poll's read timeout) are that client's alone,
        # made anew each time (its caller keeps it), never handed to another caller.
        longer = [
            first._new_boto_client("sqs", "us-east-1", "test", "test", config=Config(read_timeout=30)) for _ in "ab"
        ]
        assert longer[0] is not longer[1] and first.sqs() not in longer
        assert longer[0].meta.config.read_timeout == 30 and first.sqs().meta.config.read_timeout != 30
        # A pool process forked from this one never uses its parent's client, nor its sockets.
        monkeypatch.setattr(sqs_fanout.os, "getpid", lambda: -1)
        assert first._new_boto_client("sqs", "us-east-1", "test", "test") is not second.sqs()
    finally:
        for connection in connections:
            connection.release()

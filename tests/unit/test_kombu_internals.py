"""tasks/sqs_fanout.py overrides private methods of kombu's SQS channel: a kombu release that renames
one, or changes its parameters, would silently switch off Flower, ``celery inspect`` or the worker's
liveness signal. This fails naming the method instead. celery and kombu are pinned to the minor
versions this was written against (pyproject.toml); when a new one is adopted, re-read each override
against its source and update the signatures here."""

from __future__ import annotations

import inspect

import pytest
from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection
from kombu.transport import SQS, virtual
from kombu.transport.SQS.SNS import SNS

from tasks import sqs_fanout

# kombu's private methods we override or call, with the parameters we were written against.
RELIED_ON = {
    (SQS.Channel, "canonical_queue_name"): ("self", "queue_name"),
    (SQS.Channel, "_update_queue_cache"): ("self", "queue_name_prefix"),
    (SQS.Channel, "_new_queue"): ("self", "queue", "kwargs"),
    (SQS.Channel, "exchange_declare"): (
        "self",
        "exchange",
        "type",
        "durable",
        "auto_delete",
        "arguments",
        "nowait",
        "passive",
    ),
    (SQS.Channel, "_lookup"): ("self", "exchange", "routing_key", "default"),
    # Declarations the worker's consumer waits out while SQS fails them (tasks/sqs_faults.py: declared).
    (SQS.Channel, "queue_declare"): ("self", "queue", "passive", "kwargs"),
    (SQS.Channel, "queue_bind"): ("self", "queue", "exchange", "routing_key", "arguments", "kwargs"),
    # ... and basic_consume's subscription of a control queue to its topic.
    (SQS.Channel, "_subscribe_queue_to_fanout_exchange_if_required"): ("self", "queue_name"),
    (SQS.Channel, "after_reply_message_received"): ("self", "queue"),
    (SQS.Channel, "_delete_message"): ("self", "queue_name", "message"),
    (SQS.Channel, "_receive_message"): ("self", "queue", "max_number_of_messages", "wait_time_seconds"),
    (SQS.Channel, "_on_messages_ready"): ("self", "queue", "qname", "messages"),
    # Marks a message SQS handed out before as redelivered (tasks/runner.py: the handed lease).
    (SQS.Channel, "_envelope_payload"): ("self", "payload", "raw_text", "message", "q_url"),
    (SQS.Channel, "_resolve_queue_url"): ("self", "queue"),
    (SQS.Channel, "sqs"): ("self", "queue"),
    (SQS.Channel, "entity_name"): ("self", "name", "table"),
    (SNS, "get_client"): ("self", "exchange_name"),
    # The fault-tolerant receive path (see "kombu 5.7 defects" in tasks/sqs_fanout.py).
    (SQS.Channel, "asynsqs"): ("self", "queue"),
    (SQS.Channel, "basic_ack"): ("self", "delivery_tag", "multiple"),
    # Waits for the acks' pending deletes (tasks/sqs_acks.py), then stops the visibility extender.
    (SQS.Channel, "close"): ("self",),
    (SQS.Channel, "basic_reject"): ("self", "delivery_tag", "requeue"),
    (SQS.Channel, "_schedule_queue"): ("self", "queue"),
    # A parked queue (a prefetch slot frees) is polled again at once: ParkedQueues.resume.
    (SQS.Channel, "basic_qos"): ("self", "prefetch_size", "prefetch_count", "apply_global"),
    (SQS.Channel, "_loop1"): ("self", "queue", "messages_fetched"),
    (SQS.Channel, "_get_async"): ("self", "queue", "count", "callback"),
    (SQS.Channel, "_get_from_sqs"): ("self", "queue_name", "queue_url", "connection", "count", "callback"),
    (SQS.Channel, "_new_boto_client"): (
        "self",
        "service",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "config",
    ),
    # The extension of held messages (tasks/sqs_visibility.py): the QoS tells it when a delivery
    # begins and ends, closing the channel stops it (close, above).
    (SQS.Channel, "QoS"): ("channel", "prefetch_count"),
    (SQS.QoS, "append"): ("self", "message", "delivery_tag"),
    (SQS.QoS, "ack"): ("self", "delivery_tag"),
    (SQS.QoS, "reject"): ("self", "delivery_tag", "requeue"),
    (SQS.QoS, "restore_unacked"): ("self",),
    (AsyncSQSConnection, "__init__"): (
        "self",
        "sqs_connection",
        "debug",
        "region",
        "message_system_attribute_names",
        "message_attribute_names",
        "kwargs",
    ),
    (AsyncSQSConnection, "_on_list_ready"): ("self", "parent", "markers", "operation", "response"),
    (AsyncSQSConnection, "_on_obj_ready"): ("self", "parent", "operation", "response"),
    (AsyncSQSConnection, "_on_status_ready"): ("self", "parent", "operation", "response"),
    (AsyncSQSConnection, "delete_message"): ("self", "queue", "receipt_handle", "callback"),
}


@pytest.mark.parametrize("owner, name", list(RELIED_ON), ids=[f"{o.__name__}.{n}" for o, n in RELIED_ON])
def test_kombu_still_has_each_method_we_rely_on_with_its_parameters(owner, name):
    method = getattr(owner, name, None)
    assert method is not None, f"kombu's {owner.__name__}.{name} is gone: re-check tasks/sqs_fanout.py"
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters == RELIED_ON[(owner, name)], (
        f"kombu's {owner.__name__}.{name} now takes {parameters}: re-check tasks/sqs_fanout.py"
    )


def test_every_override_in_sqs_fanout_is_one_we_check():
    """A method added to sqs_fanout.Channel must be added to RELIED_ON too (and must exist in kombu)."""
    overrides = {
        name
        for name, value in vars(sqs_fanout.Channel).items()
        if callable(value) and not name.startswith("__") and not isinstance(value, property)
    }
    checked = {name for owner, name in RELIED_ON if owner is SQS.Channel}
    assert overrides <= checked, f"overrides not checked against kombu: {sorted(overrides - checked)}"
    for name in overrides:
        assert hasattr(SQS.Channel, name), f"sqs_fanout.Channel.{name} overrides nothing in kombu"


def test_the_private_state_we_read_is_still_there():
    """Attributes read by sqs_fanout (not methods): the SNS fan-out, its topic cache, the queue URL cache,
    the cached boto3 and async clients, the async client's OK status."""
    assert "_topic_arn_cache" in inspect.getsource(SNS.__init__)
    assert "_queue_cache" in inspect.getsource(SQS.Channel.__init__)
    # A queue is parked only while it is consumed (ParkedQueues), as kombu's _schedule_queue checks.
    assert "self._active_queues = []" in inspect.getsource(virtual.Channel.__init__)
    assert "fanout" in dir(SQS.Channel)
    assert SQS.Channel._sqs is None and SQS.Channel._asynsqs is None  # class defaults, set on first use
    assert AsyncSQSConnection.STATUS_CODE_OK == 200
    assert isinstance(SQS.Channel.get_message_attributes, property)
    assert SQS.Config.__module__ == "botocore.config"
    # kombu's SQS transport routes direct exchanges only; sqs_fanout adds fanout on top of that.
    assert SQS.Transport.implements["exchange_type"] == frozenset({"direct"})
    assert sqs_fanout.Transport.implements["exchange_type"] == frozenset({"direct", "fanout"})

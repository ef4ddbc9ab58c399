"""The control-queue sweep deletes only silent queues, and only subscriptions left without a queue."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.control_plane import ControlQueue, Subscription, queue_name
from tasks.control_sweep import STALE_BEATS, sweep_control_queues
from tasks.sqs_fanout import HEARTBEAT_TAG, heartbeat_tags

NOW = 1_800_000_000
BEAT = 60


@dataclass
class FakeControlPlane:
    """Queues by name (with their tags) and subscriptions, as the sweep sees them."""

    queue_tags: dict[str, dict[str, str]]
    subs: dict[str, str]  # subscription ARN -> queue name
    deleted: list[str] = field(default_factory=list)
    unlisted: set[str] = field(default_factory=set)  # exist, but ListQueues does not show them yet
    lookups: list[str] = field(default_factory=list)

    def queues(self) -> list[ControlQueue]:
        return [ControlQueue(f"http://sqs/1/{name}", name, tags) for name, tags in self.queue_tags.items()]

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(arn, name) for arn, name in self.subs.items()]

    def queue_exists(self, name: str) -> bool:
        self.lookups.append(name)
        return name in self.queue_tags or name in self.unlisted

    def delete_queue(self, url: str) -> None:
        name = queue_name(url)
        self.deleted.append(name)
        del self.queue_tags[name]

    def unsubscribe(self, subscription_arn: str) -> None:
        del self.subs[subscription_arn]


def test_only_queues_silent_for_five_beats_go_with_their_subscriptions():
    plane = FakeControlPlane(
        queue_tags={
            "p-dead-celery-pidbox": heartbeat_tags(NOW - STALE_BEATS * BEAT - 1),
            "p-late-celery-pidbox": heartbeat_tags(NOW - STALE_BEATS * BEAT),  # late, not yet dead
            "p-live-celeryev": heartbeat_tags(NOW - 1),
            "p-untagged-reply-celery-pidbox": {},  # its owner does not beat: never judged
            "p-garbled": {HEARTBEAT_TAG: "soon"},
        },
        subs={"arn:s1": "p-dead-celery-pidbox", "arn:s2": "p-live-celeryev", "arn:s3": "p-gone-long-ago"},
    )

    assert sweep_control_queues(plane, heartbeat_seconds=BEAT, now=NOW) == ["p-dead-celery-pidbox"]

    assert plane.deleted == ["p-dead-celery-pidbox"]
    assert plane.subs == {"arn:s2": "p-live-celeryev"}
    assert plane.lookups == ["p-gone-long-ago"]  # a listed queue costs no lookup


def test_a_new_queue_missing_from_the_listing_keeps_its_subscription():
    # SQS lists a new queue only after a while; the sweep asks for the queue itself before
    # unsubscribing, so a process that has just started keeps its events.
    plane = FakeControlPlane(queue_tags={}, subs={"arn:new": "p-new-celeryev"}, unlisted={"p-new-celeryev"})
    assert sweep_control_queues(plane, heartbeat_seconds=BEAT, now=NOW) == []
    assert plane.subs == {"arn:new": "p-new-celeryev"}


def test_queue_names_come_from_urls_and_arns():
    assert queue_name("https://sqs.eu-west-1.amazonaws.com/123456789012/p-x-celeryev") == "p-x-celeryev"
    assert queue_name("http://127.0.0.1:4566/123456789012/p-x-celeryev") == "p-x-celeryev"
    assert queue_name("arn:aws:sqs:eu-west-1:123456789012:p-x-celeryev") == "p-x-celeryev"

"""The sweep for control queues left behind by killed processes (see tasks/sqs_fanout.py).

Every reply, event and pidbox queue a process makes is named with CONTROL_PREFIX and tagged
with a heartbeat that its process refreshes every CONTROL_HEARTBEAT_SECONDS. A queue whose
heartbeat is older than STALE_BEATS beats belongs to a process that is gone (SIGKILL, OOM, a
stopped Fargate task): the sweep deletes it, then unsubscribes every subscription of the two
control topics whose queue no longer exists. A queue without a heartbeat tag is never touched:
its owner does not beat, so its silence proves nothing. Every worker runs the sweep in its
sweeper thread (tasks/sweeper.py); two workers sweeping at once only repeat a delete.
"""

from __future__ import annotations

import time
from typing import Protocol

from storage.control_plane import ControlQueue, SqsControlPlane, Subscription
from storage.settings import Settings
from tasks.logs import get_logger
from tasks.sqs_fanout import HEARTBEAT_TAG

log = get_logger(__name__)

STALE_BEATS = 5  # missed beats before a queue's owner counts as gone


class ControlPlane(Protocol):
    """What the sweep needs to see and remove (storage.control_plane.SqsControlPlane)."""

    def queues(self) -> list[ControlQueue]: ...
    def subscriptions(self) -> list[Subscription]: ...
    def queue_exists(self, name: str) -> bool: ...
    def delete_queue(self, url: str) -> None: ...
    def unsubscribe(self, subscription_arn: str) -> None: ...


def control_plane(settings: Settings, sqs, sns) -> SqsControlPlane:
    """The control queues and topics the settings name."""
    topics = [arn for arn in (settings.events_topic_arn, settings.control_topic_arn) if arn]
    return SqsControlPlane(sqs, sns, settings.control_prefix, topics)


def is_stale(tags: dict[str, str], *, now: float, heartbeat_seconds: float) -> bool:
    """True when the tags carry a heartbeat older than STALE_BEATS beats."""
    beat = tags.get(HEARTBEAT_TAG, "")
    if not beat.isdigit():
        return False  # not ours to judge: made by a process that does not beat
    return now - int(beat) > STALE_BEATS * heartbeat_seconds


def sweep_control_queues(plane: ControlPlane, *, heartbeat_seconds: float, now: float | None = None) -> list[str]:
    """Delete the control queues whose heartbeat stopped, and the subscriptions left without a queue."""
    now = time.time() if now is None else now
    # Subscriptions first: a queue made after this listing has no subscription in it, so the
    # existence check below can never unsubscribe a queue that is being born.
    subscriptions = plane.subscriptions()
    live, deleted = set(), set()
    for queue in plane.queues():
        if is_stale(queue.tags, now=now, heartbeat_seconds=heartbeat_seconds):
            plane.delete_queue(queue.url)
            deleted.add(queue.name)
            log.info("control_sweep.queue_deleted", queue=queue.name, heartbeat=queue.tags[HEARTBEAT_TAG])
        else:
            live.add(queue.name)
    for subscription in subscriptions:
        name = subscription.queue_name
        # Only a queue missing from the listing costs a lookup (SQS lists a new queue late).
        if name in deleted or (name not in live and not plane.queue_exists(name)):
            plane.unsubscribe(subscription.arn)
            log.info("control_sweep.unsubscribed", queue=name)
    return sorted(deleted)

"""SqsControlPlane: the SQS queues and SNS subscriptions that carry Celery's events and remote control.

What the control-queue sweep (tasks/control_sweep.py) needs to see and remove, scoped to one
name prefix (CONTROL_PREFIX): the queues with their tags, and the two topics' subscriptions.
A queue deleted by someone else in the meantime counts as gone, never as an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated

_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class ControlQueue:
    url: str
    name: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Subscription:
    arn: str
    queue_name: str  # the subscribed SQS queue


def queue_name(url_or_arn: str) -> str:
    """The queue name at the end of an SQS queue URL or ARN."""
    return url_or_arn.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]


class SqsControlPlane:
    """The control queues and subscriptions under ``prefix``; ``sqs``/``sns`` are boto3 clients."""

    def __init__(self, sqs: Any, sns: Any, prefix: str, topic_arns: Iterable[str] = ()) -> None:
        self._sqs = sqs
        self._sns = sns
        self.prefix = prefix
        self._topic_arns = tuple(topic_arns)  # empty: the topics named with the prefix (local stack)

    def queues(self) -> list[ControlQueue]:
        """Every queue named with the prefix, with its tags (queues gone meanwhile left out)."""
        with translated("sqs", "ListQueues"):
            pages = self._sqs.get_paginator("list_queues").paginate(QueueNamePrefix=self.prefix)
            urls = [url for page in pages for url in page.get("QueueUrls", [])]
        found = []
        for url in urls:
            with translated("sqs", "ListQueueTags"):
                try:
                    tags = self._sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
                except ClientError as exc:
                    if error_code(exc) in _GONE:
                        continue
                    raise
            found.append(ControlQueue(url, queue_name(url), tags))
        return found

    def subscriptions(self) -> list[Subscription]:
        """Confirmed SQS subscriptions of the control topics to queues named with the prefix."""
        found = []
        for topic in self._topics():
            with translated("sns", "ListSubscriptionsByTopic"):
                pages = self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                subscriptions = [sub for page in pages for sub in page["Subscriptions"]]
            for sub in subscriptions:
                name = queue_name(sub["Endpoint"])
                # A pending subscription's ARN is the word "PendingConfirmation".
                if (
                    sub["Protocol"] == "sqs"
                    and sub["SubscriptionArn"].startswith("arn:")
                    and name.startswith(self.prefix)
                ):
                    found.append(Subscription(sub["SubscriptionArn"], name))
        return found

    def queue_exists(self, name: str) -> bool:
        """True while a queue of that name exists."""
        with translated("sqs", "GetQueueUrl"):
            try:
                self._sqs.get_queue_url(QueueName=name)
            except ClientError as exc:
                if error_code(exc) in _GONE:
                    return False
                raise
        return True

    def delete_queue(self, url: str) -> None:
        """Delete a queue (already gone is fine)."""
        with translated("sqs", "DeleteQueue"):
            try:
                self._sqs.delete_queue(QueueUrl=url)
            except ClientError as exc:
                if error_code(exc) not in _GONE:
                    raise

    def unsubscribe(self, subscription_arn: str) -> None:
        """Remove one subscription (already gone, say by another worker's sweep, is fine)."""
        with translated("sns", "Unsubscribe"):
            try:
                self._sns.unsubscribe(SubscriptionArn=subscription_arn)
            except ClientError as exc:
                if error_code(exc) != "NotFound":
                    raise

    def _topics(self) -> Iterable[str]:
        if self._topic_arns:
            return self._topic_arns
        with translated("sns", "ListTopics"):
            pages = self._sns.get_paginator("list_topics").paginate()
            arns = [topic["TopicArn"] for page in pages for topic in page["Topics"]]
        return [arn for arn in arns if arn.rsplit(":", 1)[-1].startswith(self.prefix)]

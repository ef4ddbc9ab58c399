"""SqsQueue: the job queue, as far as the API needs it (a readiness probe)."""

from __future__ import annotations

from typing import Any

from storage.aws_errors import translated


class SqsQueue:
    """The job queue; Celery (kombu) sends and receives, this only checks that SQS answers."""

    def __init__(self, client: Any, queue_name: str, queue_url: str | None = None) -> None:
        self._client = client
        self._name = queue_name
        self._url = queue_url

    def check(self) -> None:
        """Raise DependencyUnavailable when the queue cannot be reached."""
        with translated("sqs", "GetQueueAttributes"):
            url = self._url or self._client.get_queue_url(QueueName=self._name)["QueueUrl"]
            self._client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])

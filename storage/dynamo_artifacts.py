"""DynamoArtifactStore: demo mode's artifacts, kept as items beside the jobs.

With no bucket configured there is nowhere to presign from, so status
responses inline the artifacts instead. Each blob is one item in the jobs
table under a key that can never be a job id (``artifact#{key}``) and without
the listing attributes, so the listing indexes never see it. DynamoDB caps an
item at 400 KB; a blob over ``max_bytes`` raises ArtifactTooLarge rather than
being truncated.
"""

from __future__ import annotations

import time
from typing import Any

from storage.aws_errors import translated
from storage.errors import ArtifactNotFound, ArtifactTooLarge

_PREFIX = "artifact#"


class DynamoArtifactStore:
    """ArtifactStore on the jobs table, for demo mode (no bucket)."""

    def __init__(self, client: Any, table_name: str, *, max_bytes: int, ttl_days: int) -> None:
        self._client = client
        self._table = table_name
        self._max_bytes = max_bytes
        self._ttl_seconds = ttl_days * 86400

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if len(body) > self._max_bytes:
            raise ArtifactTooLarge(
                f"{key} is {len(body)} bytes, over the {self._max_bytes}-byte inline limit",
                details={"key": key, "bytes": len(body), "limit": self._max_bytes},
            )
        with translated("dynamodb", "PutItem"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "jobId": {"S": _PREFIX + key},
                    "body": {"B": body},
                    "contentType": {"S": content_type},
                    "ttl": {"N": str(int(time.time()) + self._ttl_seconds)},
                },
            )

    def get(self, key: str) -> bytes:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key={"jobId": {"S": _PREFIX + key}}, ConsistentRead=True
            )
        if "Item" not in response:
            raise ArtifactNotFound(f"no artifact {key}", details={"key": key})
        return bytes(response["Item"]["body"]["B"])

    def exists(self, key: str) -> bool:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(
                TableName=self._table,
                Key={"jobId": {"S": _PREFIX + key}},
                ProjectionExpression="jobId",
                ConsistentRead=True,
            )
        return "Item" in response

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        return None

    def check(self) -> None:
        with translated("dynamodb", "DescribeTable"):
            self._client.describe_table(TableName=self._table)

"""DynamoArtifactStore: demo mode's artifacts, kept as items beside the jobs.

With no bucket configured there is nowhere to presign from, so status
responses inline the artifacts instead. Each blob is an item of entity type
``artifact`` in the jobs table (docs/schema.md). The table's partition key
attribute is named ``jobId``; an artifact item's value there, ``artifact#{key}``,
is only a storage key that can never be a job id — the artifact's identity is
``artifactKey`` and its job is ``ownerJobId``. Artifact items carry no ``state``
and a GSI1 partition of their own (``ARTIFACTS#{jobId}``), so the job listings
never see them and a job's artifacts are one Query. DynamoDB caps an item at
400 KB; a blob over ``max_bytes`` raises ArtifactTooLarge rather than being
truncated.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated
from storage.dynamo_items import ARTIFACT_KEY_PREFIX, ENTITY_ARTIFACT, LIST_INDEX
from storage.errors import ArtifactNotFound, ArtifactTooLarge
from storage.model import ArtifactInfo, job_of_artifact, utc_now

ARTIFACT_PARTITION = "ARTIFACTS#"  # + jobId: the GSI1 partition of one job's artifacts


def storage_key(key: str) -> dict[str, Any]:
    """The DynamoDB key of the item holding artifact ``key``."""
    return {"jobId": {"S": ARTIFACT_KEY_PREFIX + key}}


class DynamoArtifactStore:
    """ArtifactStore on the jobs table, for demo mode (no bucket)."""

    def __init__(self, client: Any, table_name: str, *, max_bytes: int, ttl_days: int) -> None:
        self._client = client
        self._table = table_name
        self._max_bytes = max_bytes
        self._ttl_seconds = ttl_days * 86400

    def put(self, key: str, body: bytes, content_type: str) -> None:
        with translated("dynamodb", "PutItem"):
            self._client.put_item(TableName=self._table, Item=self._item(key, body, content_type))

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> bool:
        with translated("dynamodb", "PutItem"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=self._item(key, body, content_type),
                    ConditionExpression="attribute_not_exists(jobId)",
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def get(self, key: str) -> bytes:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(TableName=self._table, Key=storage_key(key), ConsistentRead=True)
        if "Item" not in response:
            raise ArtifactNotFound(f"no artifact {key}", details={"key": key})
        return bytes(response["Item"]["body"]["B"])

    def exists(self, key: str) -> bool:
        with translated("dynamodb", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key=storage_key(key), ProjectionExpression="jobId", ConsistentRead=True
            )
        return "Item" in response

    def artifacts_of(self, job_id: str) -> list[ArtifactInfo]:
        query = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": ARTIFACT_PARTITION + job_id}},
            "ProjectionExpression": "artifactKey, contentType, #size",
            "ExpressionAttributeNames": {"#size": "size"},
        }
        found = []
        with translated("dynamodb", "Query"):
            for page in self._client.get_paginator("query").paginate(**query):
                found += [
                    ArtifactInfo(item["artifactKey"]["S"], job_id, item["contentType"]["S"], int(item["size"]["N"]))
                    for item in page["Items"]
                ]
        return found

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        return None

    def check(self) -> None:
        with translated("dynamodb", "DescribeTable"):
            self._client.describe_table(TableName=self._table)

    def admit(self, key: str, size: int) -> None:
        """ArtifactTooLarge for a blob over ``max_bytes``, which no item may hold."""
        if size > self._max_bytes:
            raise ArtifactTooLarge(
                f"{key} is {size} bytes, over the {self._max_bytes}-byte inline limit",
                details={"key": key, "bytes": size, "limit": self._max_bytes},
            )

    def _item(self, key: str, body: bytes, content_type: str) -> dict[str, Any]:
        self.admit(key, len(body))
        job_id = job_of_artifact(key)
        return {
            **storage_key(key),
            "entityType": {"S": ENTITY_ARTIFACT},
            "artifactKey": {"S": key},
            "ownerJobId": {"S": job_id},
            "contentType": {"S": content_type},
            "size": {"N": str(len(body))},
            "createdAt": {"S": utc_now()},
            "body": {"B": body},
            "ttl": {"N": str(int(time.time()) + self._ttl_seconds)},
            "GSI1PK": {"S": ARTIFACT_PARTITION + job_id},
            "GSI1SK": {"S": key},
        }

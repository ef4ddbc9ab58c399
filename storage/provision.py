"""Creates the AWS resources on the local emulator. Local stack and tests only.

In production Terraform (deploy/terraform) owns these resources; the API and
the worker never create anything at start-up. The shapes here mirror the
Terraform definitions: keep the two in step.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code
from storage.bootstrap import aws_client
from storage.dynamo_items import INDEXED_ATTRIBUTES, LIST_INDEX, STATE_INDEX
from storage.settings import Settings

MAX_RECEIVE_COUNT = 5  # deliveries before SQS moves a message to the dead-letter queue


def provision(settings: Settings) -> dict[str, str]:
    """Create the table, bucket and queues if missing; return the queue URLs."""
    _create_table(aws_client(settings, "dynamodb"), settings.jobs_table_name)
    if settings.artifacts_bucket:
        _create_bucket(aws_client(settings, "s3"), settings.artifacts_bucket, settings.region)
    return _create_queues(aws_client(settings, "sqs"), settings)


def create_jobs_table(client: Any, name: str) -> bool:
    """The jobs table as Terraform makes it; False when a table of that name is already there."""
    try:
        client.describe_table(TableName=name)
        return False
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    _create_table(client, name)
    return True


def _create_table(client: Any, name: str) -> None:
    def index(index_name: str, hash_key: str) -> dict[str, Any]:
        return {
            "IndexName": index_name,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
            ],
            # A key is in every entry already, and may not be listed again.
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": [attr for attr in INDEXED_ATTRIBUTES if attr != hash_key],
            },
        }

    try:
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": attr, "AttributeType": "S"} for attr in ("jobId", "GSI1PK", "GSI1SK", "state")
            ],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[index(LIST_INDEX, "GSI1PK"), index(STATE_INDEX, "state")],
        )
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=name)
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


def _create_bucket(client: Any, name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        if error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    client.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _create_queues(client: Any, settings: Settings) -> dict[str, str]:
    dlq_url = client.create_queue(
        QueueName=settings.dead_letter_queue_name,
        Attributes={"MessageRetentionPeriod": str(14 * 86400)},
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = client.create_queue(
        QueueName=settings.queue_name,
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        },
    )["QueueUrl"]
    return {"queue": queue_url, "deadLetterQueue": dlq_url}

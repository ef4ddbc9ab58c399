"""The composition root: settings -> boto3 clients -> stores, for the API, the worker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from storage.dynamo import DynamoJobStore
from storage.dynamo_artifacts import DynamoArtifactStore
from storage.ports import ArtifactStore, JobStore
from storage.s3 import S3ArtifactStore
from storage.settings import Settings
from storage.sqs import SqsQueue


@dataclass(frozen=True)
class Services:
    settings: Settings
    jobs: JobStore
    artifacts: ArtifactStore
    queue: SqsQueue | None = None  # only what readiness checks need; Celery owns the traffic


def aws_client(settings: Settings, service: str) -> Any:
    """A boto3 client with bounded timeouts, so a dead dependency fails fast instead of hanging."""
    config = Config(
        region_name=settings.region,
        connect_timeout=settings.aws_timeout_seconds,
        read_timeout=settings.aws_timeout_seconds,
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        max_pool_connections=settings.aws_pool_connections,
        # Virtual-host addressing would put the bucket in the emulator's hostname.
        s3={"addressing_style": "path"} if settings.aws_endpoint_url else None,
        # SigV4 presigned URLs (X-Amz-Expires), as every current region requires.
        signature_version="s3v4" if service == "s3" else None,
    )
    key, secret = settings.aws_credentials or (None, None)
    # The stubs type a client per literal service name; this one is chosen at run time.
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        endpoint_url=settings.aws_endpoint_url,
        config=config,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def build_services(settings: Settings | None = None) -> Services:
    """Build the stores from settings (read from the environment when not given)."""
    settings = settings or Settings.from_env()
    dynamodb = aws_client(settings, "dynamodb")
    jobs = DynamoJobStore(dynamodb, settings.jobs_table_name)
    artifacts: ArtifactStore
    if settings.artifacts_bucket is None:
        artifacts = DynamoArtifactStore(
            dynamodb,
            settings.jobs_table_name,
            max_bytes=settings.inline_artifact_max_bytes,
            ttl_days=settings.job_ttl_days,
        )
    else:
        artifacts = S3ArtifactStore(aws_client(settings, "s3"), settings.artifacts_bucket)
    queue = SqsQueue(aws_client(settings, "sqs"), settings.queue_name, settings.sqs_queue_url)
    return Services(settings=settings, jobs=jobs, artifacts=artifacts, queue=queue)

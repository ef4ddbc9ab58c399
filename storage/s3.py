"""S3ArtifactStore: checkpoints and artifacts as S3 objects, shared through presigned URLs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated
from storage.errors import ArtifactNotFound
from storage.model import ArtifactInfo, artifact_prefix, job_of_artifact

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# S3's answers to a conditional put that finds the key taken (409: another such put is under way).
_TAKEN = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class S3ArtifactStore:
    """ArtifactStore on one S3 bucket; ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        with translated("s3", "PutObject"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def admit(self, key: str, size: int) -> None:
        """Nothing a step makes comes near S3's 5 GB for one PutObject."""

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> bool:
        with translated("s3", "PutObject"):
            try:
                self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
                )
            except ClientError as exc:
                if error_code(exc) in _TAKEN:
                    return False
                raise
        return True

    def get(self, key: str) -> bytes:
        with translated("s3", "GetObject"):
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    raise ArtifactNotFound(f"no artifact {key}", details={"key": key}) from exc
                raise
            body: bytes = response["Body"].read()
            return body

    def exists(self, key: str) -> bool:
        with translated("s3", "HeadObject"):
            try:
                self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return False
                raise
        return True

    def artifacts_of(self, job_id: str) -> list[ArtifactInfo]:
        found = []
        with translated("s3", "ListObjectsV2"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=artifact_prefix(job_id)
            )
            keys = [(obj["Key"], obj["Size"]) for page in pages for obj in page.get("Contents", [])]
        for key, size in keys:
            # The listing has no content type; a HEAD per object (a job has about ten) does.
            with translated("s3", "HeadObject"):
                head = self._client.head_object(Bucket=self._bucket, Key=key)
            found.append(ArtifactInfo(key, job_of_artifact(key), head.get("ContentType", ""), size))
        return found

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        # Presigning is local computation: no request is sent, nothing to translate.
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    def check(self) -> None:
        with translated("s3", "HeadBucket"):
            self._client.head_bucket(Bucket=self._bucket)

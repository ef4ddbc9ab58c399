"""S3ArtifactStore: checkpoints and artifacts as S3 objects, shared through presigned URLs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storage.aws_errors import error_code, translated
from storage.errors import ArtifactNotFound

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3ArtifactStore:
    """ArtifactStore on one S3 bucket; ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        with translated("s3", "PutObject"):
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type
            )

    def get(self, key: str) -> bytes:
        with translated("s3", "GetObject"):
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    raise ArtifactNotFound(f"no artifact {key}", details={"key": key}) from exc
                raise
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        with translated("s3", "HeadObject"):
            try:
                self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return False
                raise
        return True

    def url_for(self, key: str, *, expires_in: int) -> str | None:
        # Presigning is local computation: no request is sent, nothing to translate.
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )

    def check(self) -> None:
        with translated("s3", "HeadBucket"):
            self._client.head_bucket(Bucket=self._bucket)

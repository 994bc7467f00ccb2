"""S3 storage through boto3 (AWS, MinIO, any S3 endpoint), with the same keys as local storage.

A PUT to S3 is atomic: readers see the whole object or none. Writers put images first and the
metadata JSON last, so metadata never points at an image that is not there yet.
"""

from __future__ import annotations

import threading

from shared.storage import KEY_PATTERN, StorageError, check_folder, check_key

MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Storage:
    def __init__(self, bucket: str, client, prefix: str = "", create_bucket: bool = False):
        if not bucket:
            raise ValueError("STORAGE=s3 needs S3_BUCKET")
        self.bucket = bucket
        self.client = client
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.create_bucket = create_bucket
        self._bucket_checked = threading.Event()

    @classmethod
    def from_settings(cls, settings) -> S3Storage:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            config=config,
        )
        return cls(settings.s3_bucket, client, settings.s3_prefix, settings.s3_create_bucket)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self._ensure_bucket()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not write {key} to s3://{self.bucket}: {_reason(exc)}") from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise KeyError(key) from exc
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {_reason(exc)}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.get(key)
        except KeyError:
            return False
        return True

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not delete {key}: {_reason(exc)}") from exc

    def list(self, folder: str) -> list[str]:
        """Keys of the objects directly in `folder`, sorted (ListObjectsV2, every page)."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self.prefix + check_folder(folder) + "/"
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            ):
                keys += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return []
            raise StorageError(f"could not list {folder} in s3://{self.bucket}: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not list {folder} in s3://{self.bucket}: {_reason(exc)}") from exc
        return sorted(key for key in keys if KEY_PATTERN.match(key))

    def _ensure_bucket(self) -> None:
        """With S3_CREATE_BUCKET (handy for MinIO), create the bucket on first write."""
        if not self.create_bucket or self._bucket_checked.is_set():
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(f"could not create bucket {self.bucket}: {_reason(exc)}") from exc
        self._bucket_checked.set()


def _reason(exc) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    if error:
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return str(exc)

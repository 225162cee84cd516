"""The S3 gateway: the cluster bucket as batchkit's `ObjectStore` (job folders live here)."""

from __future__ import annotations

from batchkit.providers.aws.errors import AwsNotFoundError
from batchkit.providers.aws.session import Api


class S3ObjectStore:
    """`providers.base.ObjectStore` over one S3 bucket."""

    def __init__(self, api: Api, bucket: str) -> None:
        self._api = api
        self.bucket = bucket

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: bytes) -> None:
        self._api.call("put_object", resource=self.url(key), Bucket=self.bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        response = self._api.call("get_object", resource=self.url(key), Bucket=self.bucket, Key=key)
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self._api.call("head_object", resource=self.url(key), Bucket=self.bucket, Key=key)
        except AwsNotFoundError:
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (ListObjectsV2, paginated)."""
        found: list[str] = []
        for page in self._api.paginate(
            "list_objects_v2",
            cursor_in="ContinuationToken",
            cursor_out="NextContinuationToken",
            resource=self.url(prefix),
            Bucket=self.bucket,
            Prefix=prefix,
        ):
            found.extend(str(item["Key"]) for item in page.get("Contents") or ())
        return found

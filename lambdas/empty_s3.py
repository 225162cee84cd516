"""Custom resource Lambda: on stack Delete, remove every object and version under a prefix.

Properties: `BucketName`, `Prefix` (the cluster's `<root>/`). Only boto3 and the standard library:
the template inlines this file after `cfn_response.py`. `batchkit cluster delete` calls
`empty_prefix` directly, so the CLI and the stack empty a bucket the same way.
"""

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .cfn_response import CleanupError, Deadline, serve  # bundled: inlined above this file

RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})

BATCH = 1000  # DeleteObjects takes at most 1000 keys a call


def empty_prefix(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    deadline: Deadline | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Delete all versions and delete markers under `prefix`; returns how many were deleted.

    Each round lists the first page again (what was deleted is gone), so deleting while listing
    never skips keys. A bucket that no longer exists counts as empty.
    """
    if not prefix.strip("/") or not prefix.endswith("/"):
        raise CleanupError(f"refusing to empty {prefix!r}: the prefix must be a folder like a/b/")
    deleted = 0
    while True:
        if deadline is not None:
            deadline.check(f"emptying s3://{bucket}/{prefix} ({deleted} deleted)")
        try:
            page = s3.list_object_versions(Bucket=bucket, Prefix=prefix, MaxKeys=BATCH)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return deleted
            raise
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if not entries:
            return deleted
        objects = [{"Key": e["Key"], "VersionId": e.get("VersionId") or "null"} for e in entries]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise CleanupError(
                f"{len(errors)} objects under s3://{bucket}/{prefix} could not be deleted, "
                f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )
        deleted += len(objects)
        if on_progress is not None:
            on_progress(deleted)


def _delete(properties: dict[str, Any], deadline: Deadline) -> str:
    bucket, prefix = properties["BucketName"], properties["Prefix"]
    s3 = boto3.client("s3", config=RETRIES)
    count = empty_prefix(s3, bucket, prefix, deadline=deadline)
    return f"deleted {count} objects and versions under s3://{bucket}/{prefix}"


def handler(event: dict[str, Any], context: Any) -> None:
    serve(event, context, _delete, lambda: boto3.client("cloudformation", config=RETRIES))

"""Custom resource Lambda: on stack Delete, delete every image of an ECR repository.

Property: `RepositoryName`. ECR refuses to delete a repository that still holds images, and
refuses to delete an image that an image index (multi-arch, buildx attestations) still refers to.
So deletion runs in passes: each pass deletes what it can, indexes first, and the children they
freed go in the next pass. Only boto3 and the standard library: the template inlines this file
after `cfn_response.py`; `batchkit cluster delete` calls `empty_repository` directly.
"""

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .cfn_response import CleanupError, Deadline, serve  # bundled: inlined above this file

RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})

BATCH = 100  # BatchDeleteImage takes at most 100 image ids a call
MAX_PASSES = 10
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
RETRY_LATER = ("ImageReferencedByManifestList",)
ALREADY_GONE = ("ImageNotFound",)


def _images(ecr: Any, repository: str) -> list[dict[str, Any]]:
    """Every image once (by digest), image indexes first."""
    by_digest: dict[str, dict[str, Any]] = {}
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
        for image in page.get("imageDetails", []):
            by_digest.setdefault(image["imageDigest"], image)
    images = list(by_digest.values())
    images.sort(key=lambda image: image.get("artifactMediaType") not in INDEX_TYPES)
    images.sort(key=lambda image: image.get("imageManifestMediaType") not in INDEX_TYPES)
    return images


def empty_repository(
    ecr: Any,
    repository: str,
    *,
    deadline: Deadline | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Delete every image; returns how many were deleted. A missing repository counts as empty."""
    deleted = 0
    failures: list[dict[str, Any]] = []
    for _ in range(MAX_PASSES):
        try:
            images = _images(ecr, repository)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
                return deleted
            raise
        if not images:
            return deleted
        failures = []
        before = deleted
        for start in range(0, len(images), BATCH):
            if deadline is not None:
                deadline.check(f"emptying ECR repository {repository} ({deleted} deleted)")
            ids = [{"imageDigest": image["imageDigest"]} for image in images[start : start + BATCH]]
            response = ecr.batch_delete_image(repositoryName=repository, imageIds=ids)
            deleted += len(response.get("imageIds", []))
            failures += [
                f for f in response.get("failures", []) if f.get("failureCode") not in ALREADY_GONE
            ]
            if on_progress is not None:
                on_progress(deleted)
        if deleted == before:
            break  # no progress: what is left will not go by retrying
    if failures:
        failures.sort(key=lambda f: f.get("failureCode") in RETRY_LATER)
        first = failures[0]
        raise CleanupError(
            f"{len(failures)} images of ECR repository {repository} could not be deleted, e.g. "
            f"{first.get('imageId')}: {first.get('failureCode')} {first.get('failureReason')}"
        )
    raise CleanupError(f"ECR repository {repository} still has images after {MAX_PASSES} passes")


def _delete(properties: dict[str, Any], deadline: Deadline) -> str:
    repository = properties["RepositoryName"]
    ecr = boto3.client("ecr", config=RETRIES)
    count = empty_repository(ecr, repository, deadline=deadline)
    return f"deleted {count} images from ECR repository {repository}"


def handler(event: dict[str, Any], context: Any) -> None:
    serve(event, context, _delete, lambda: boto3.client("cloudformation", config=RETRIES))

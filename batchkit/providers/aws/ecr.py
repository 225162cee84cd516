"""The ECR gateway: does the repository hold a tag, and what images does it hold.

The up-to-date check of `batchkit image build` is exactly one DescribeImages call with one image
id: ImageNotFoundException means "build it", anything else is an error.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchkit.errors import NotFoundError
from batchkit.providers.aws.errors import AwsServiceError
from batchkit.providers.aws.session import Api

if TYPE_CHECKING:  # imported when an image is read: the AWS provider imports this gateway
    from batchkit.providers.images import ImageRecord


class RepositoryNotFoundError(NotFoundError):
    def __init__(self, repository: str) -> None:
        super().__init__(
            f"ECR repository {repository!r} not found",
            hint="check the cluster (-c) and the region; `batchkit cluster status` names the "
            "cluster's repository, or pass --repository",
        )
        self.repository = repository


def _record(repository: str, detail: dict[str, Any]) -> ImageRecord:
    from batchkit.providers.images import ImageRecord

    pushed = detail.get("imagePushedAt")
    return ImageRecord(
        repository=repository,
        digest=str(detail.get("imageDigest", "")),
        tags=tuple(sorted(detail.get("imageTags", []))),
        pushed_at=pushed if isinstance(pushed, datetime) else None,
        size_bytes=int(detail.get("imageSizeInBytes", 0)),
    )


MANIFEST_MEDIA_TYPES = (
    # ECR API reference, BatchGetImage `acceptedMediaTypes`
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


class EcrGateway:
    """ECR calls batchkit makes, returning `ImageRecord`s and raising `BatchkitError`s."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def find_image(self, repository: str, tag: str) -> ImageRecord | None:
        """The image tagged `tag`, or None when the repository has no such tag.

        Exactly one DescribeImages call (plus retries of throttling)."""
        try:
            response = self._api.call(
                "describe_images",
                resource=f"{repository}:{tag}",
                repositoryName=repository,
                imageIds=[{"imageTag": tag}],
            )
        except AwsServiceError as err:
            if err.code == "ImageNotFoundException":
                return None
            if err.code == "RepositoryNotFoundException":
                raise RepositoryNotFoundError(repository) from err
            raise
        details = response.get("imageDetails") or []
        return _record(repository, details[0]) if details else None

    def list_images(self, repository: str) -> list[ImageRecord]:
        """Every image of the repository, newest push first."""
        records: list[ImageRecord] = []
        try:
            for page in self._api.paginate(
                "describe_images", resource=repository, repositoryName=repository
            ):
                records.extend(_record(repository, d) for d in page.get("imageDetails") or [])
        except AwsServiceError as err:
            if err.code == "RepositoryNotFoundException":
                raise RepositoryNotFoundError(repository) from err
            raise
        return sorted(
            records,
            key=lambda r: (r.pushed_at.timestamp() if r.pushed_at else 0.0, r.digest),
            reverse=True,
        )

    def image_architectures(self, repository: str, tag: str) -> tuple[str, ...] | None:
        """The architectures an image is built for, when its manifest says so: a manifest list
        (Docker) or an image index (OCI) names each platform. A single-platform manifest does
        not (its config blob would), so that gives None, as does a missing image."""
        response = self._api.call(
            "batch_get_image",
            resource=f"image {repository}:{tag}",
            repositoryName=repository,
            imageIds=[{"imageTag": tag}],
            acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES),
        )
        for image in response.get("images") or ():
            try:
                manifest = json.loads(image.get("imageManifest") or "{}")
            except json.JSONDecodeError:
                return None
            platforms = [m.get("platform") or {} for m in manifest.get("manifests") or ()]
            arches = tuple(
                dict.fromkeys(str(p["architecture"]) for p in platforms if p.get("architecture"))
            )
            return arches or None
        return None

"""Names of images: what `--image debian` means on a cluster, and where a cluster builds.

A cluster has one ECR repository. batchkit images share it, told apart by tag: a build of image
`debian` pushes `<repo>:debian-<content hash>` and moves `<repo>:debian` to it. On the local
engine the same build is `batchkit/debian:<content hash>` and `batchkit/debian:latest`.
"""

from __future__ import annotations

from collections.abc import Mapping

from batchkit.errors import UsageError
from batchkit.images.build import BuildTarget, check_image_name
from batchkit.images.local import LOCAL_REPOSITORY_PREFIX


def is_full_reference(image: str) -> bool:
    """A registry path (`a/b`, `host/a:tag`) or a digest reference, used as given."""
    return "/" in image or "@" in image


def resolve_image(image: str, repository_uri: str | None = None) -> str:
    """The image reference a job runs for `image`.

    - a full reference (it has `/` or `@`) is returned unchanged;
    - `NAME` / `NAME:TAG` is a batchkit image: with `repository_uri` (an AWS cluster's
      EcrRepositoryUri) `<repository_uri>:NAME` / `<repository_uri>:NAME-TAG`; without it (the
      local engine) `batchkit/NAME:latest` / `batchkit/NAME:TAG`.
    """
    image = image.strip()
    if not image:
        raise UsageError("empty image name", hint="give --image NAME[:TAG] or a full reference")
    if is_full_reference(image):
        return image
    name, _, tag = image.partition(":")
    check_image_name(name)
    if tag and not _valid_tag(tag):
        raise UsageError(
            f"invalid image tag {tag!r} in {image!r}",
            hint="tags are letters, digits, '_', '.', '-' (at most 128, not starting with . or -)",
        )
    if repository_uri is None:
        return f"{LOCAL_REPOSITORY_PREFIX}{name}:{tag or 'latest'}"
    return f"{repository_uri}:{name}-{tag}" if tag else f"{repository_uri}:{name}"


def _valid_tag(tag: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    return 0 < len(tag) <= 128 and set(tag) <= allowed and tag[0] not in ".-"


def target_from_outputs(
    cluster: str, outputs: Mapping[str, str], parameters: Mapping[str, str] | None = None
) -> BuildTarget:
    """The build target of a batchkit cluster from its stack outputs (contract C4).

    Raises UsageError for a stack without them (a ParallelCluster stack has no CodeBuild project
    batchkit can drive)."""
    missing = [
        key
        for key in ("EcrRepositoryName", "EcrRepositoryUri", "CodeBuildProjectName", "BucketName")
        if outputs.get(key) in (None, "", "NONE")
    ]
    if missing == ["CodeBuildProjectName"]:
        raise UsageError(
            f"cluster {cluster!r} was created without image builds (no CodeBuild project)",
            hint="enable image builds in the cluster config and `batchkit cluster update`, or "
            "build on this machine with `batchkit image build --local`",
        )
    if missing:
        raise UsageError(
            f"cluster {cluster!r} has no image pipeline (stack outputs missing: "
            f"{', '.join(missing)})",
            hint="image builds need a batchkit cluster; for another stack pass --repository, "
            "--repository-uri, --project and --bucket",
        )
    root = (parameters or {}).get("ArtifactS3RootDirectory") or f"batchkit/{cluster}"
    return BuildTarget(
        cluster=cluster,
        repository_name=outputs["EcrRepositoryName"],
        repository_uri=outputs["EcrRepositoryUri"],
        project=outputs["CodeBuildProjectName"],
        bucket=outputs["BucketName"],
        context_prefix=f"{root.strip('/')}/images",
    )

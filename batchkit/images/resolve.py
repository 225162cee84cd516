"""Where a cluster builds its images: the build target read from its stack outputs.

A cluster has one ECR repository. batchkit images share it, told apart by tag: a build of image
`debian` pushes `<repo>:debian-<content hash>` and moves `<repo>:debian` to it (what a job's
`--image debian` means is `batchkit.providers.images.resolve_image`).
"""

from __future__ import annotations

from collections.abc import Mapping

from batchkit.errors import UsageError
from batchkit.images.build import BuildTarget


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

"""Wiring: a cluster name (or explicit resources) → a ready image builder.

For an AWS cluster the build target comes from the cluster's stack outputs (contract C4:
`EcrRepositoryName`, `EcrRepositoryUri`, `CodeBuildProjectName`, `BucketName`, and the
`ArtifactS3RootDirectory` parameter), found the way every batchkit command finds a cluster
(`providers.aws.discovery`). `--repository/--repository-uri/--project/--bucket` override single
outputs, and when repository, project and bucket are all given no stack is read at all (for an
image pipeline that is not part of a batchkit stack).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from msgspec import Struct

from batchkit.config import LOCAL_CLUSTER, load_user_config
from batchkit.errors import ClusterNotFoundError, UsageError
from batchkit.images.build import BuildTarget, Clock, CloudImageBuilder, Sleep
from batchkit.images.local import LocalImageBuilder, connect_docker

if TYPE_CHECKING:
    from batchkit.providers.aws.discovery import SessionFactory


class TargetOverrides(Struct, frozen=True):
    """Resources named on the command line instead of read from the stack."""

    repository: str | None = None
    repository_uri: str | None = None
    project: str | None = None
    bucket: str | None = None
    prefix: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.repository and self.project and self.bucket)

    @property
    def any(self) -> bool:
        return any((self.repository, self.repository_uri, self.project, self.bucket, self.prefix))


class CloudRequest(Struct, frozen=True):
    """What `image build`/`image list` say about the cluster to build on."""

    cluster: str
    profile: str | None = None
    region: str | None = None
    overrides: TargetOverrides = TargetOverrides()
    timeout: float = 3600.0
    poll_interval: float = 5.0


def resolve_cluster(cluster: str | None) -> str:
    """`-c NAME`, else the configured default cluster, else `local`."""
    return load_user_config().resolve(cluster)


def is_local(cluster: str) -> bool:
    return cluster == LOCAL_CLUSTER


def registry_host(account: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def open_cloud_builder(
    request: CloudRequest,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    session_factory: SessionFactory | None = None,
) -> CloudImageBuilder:
    """A CodeBuild/ECR builder for the cluster (reads its stack unless overrides name all);
    `session_factory` (profile, region, cluster → AwsSession) as `discover` takes it."""
    from batchkit.images.resolve import target_from_outputs
    from batchkit.providers.aws.cloudformation import CloudFormationGateway
    from batchkit.providers.aws.codebuild import CodeBuildGateway
    from batchkit.providers.aws.discovery import resolve_target
    from batchkit.providers.aws.ecr import EcrGateway
    from batchkit.providers.aws.errors import StackStateError
    from batchkit.providers.aws.logs import LogsGateway
    from batchkit.providers.aws.s3 import S3ObjectStore
    from batchkit.providers.aws.session import AwsSession

    name = request.cluster
    if is_local(name):
        raise UsageError(
            "the local engine has no CodeBuild",
            hint="build on this machine with `batchkit image build --local`, or name an AWS "
            "cluster with -c",
        )
    overrides = request.overrides
    settings = load_user_config().cluster(name)
    where = resolve_target(name, profile=request.profile, region=request.region, settings=settings)
    make_session = session_factory or (
        lambda profile, region, cluster: AwsSession(profile=profile, region=region, cluster=cluster)
    )
    session = make_session(where.profile, where.region, name)
    if overrides.complete:
        repository = overrides.repository or ""
        target = BuildTarget(
            cluster=name,
            repository_name=repository,
            repository_uri=overrides.repository_uri
            or f"{registry_host(session.account_id(), session.region)}/{repository}",
            project=overrides.project or "",
            bucket=overrides.bucket or "",
            context_prefix=overrides.prefix or f"batchkit/{name}/images",
        )
    else:
        stack = CloudFormationGateway(session.api("cloudformation")).describe_stack(where.stack)
        if stack is None:
            raise ClusterNotFoundError(
                name,
                hint=f"no CloudFormation stack {where.stack!r} in {session.region}; check the "
                "name and --region, or name the resources with --repository, --project and "
                "--bucket",
            )
        if not stack.usable:
            raise StackStateError(stack.name, stack.status, stack.status_reason)
        outputs = dict(stack.outputs)
        for key, value in (
            ("EcrRepositoryName", overrides.repository),
            ("EcrRepositoryUri", overrides.repository_uri),
            ("CodeBuildProjectName", overrides.project),
            ("BucketName", overrides.bucket),
        ):
            if value:
                outputs[key] = value
        target = target_from_outputs(name, outputs, stack.parameters)
        if overrides.prefix:
            target = BuildTarget(
                target.cluster,
                target.repository_name,
                target.repository_uri,
                target.project,
                target.bucket,
                overrides.prefix,
            )
    return CloudImageBuilder(
        target,
        registry=EcrGateway(session.api("ecr")),
        builds=CodeBuildGateway(session.api("codebuild")),
        objects=S3ObjectStore(session.api("s3"), target.bucket),
        logs=LogsGateway(session.api("logs")),
        clock=clock,
        sleep=sleep,
        poll_interval=request.poll_interval,
        timeout=request.timeout,
    )


def open_local_builder() -> LocalImageBuilder:
    """A builder on the Docker engine at $DOCKER_HOST (raises EngineError when none answers)."""
    return LocalImageBuilder(connect_docker())


CloudBuilderFactory = Callable[[CloudRequest], CloudImageBuilder]
LocalBuilderFactory = Callable[[], LocalImageBuilder]

"""`batchkit image build`, `batchkit image buildspec` and `batchkit image list`.

Each command parses, calls `batchkit.images`, renders and exits. The build's progress (phases,
the CodeBuild or Docker log) goes to stderr as it comes; the result (image and digest, or the
plan of a dry run) goes to stdout, as JSON with `--json`; `imageprint` prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from msgspec import Struct, field

from batchkit.cli.coercion import PlainCommand, PlainGroup
from batchkit.cli.context import (
    ClusterOption,
    DebugOption,
    JsonOption,
    ProfileOption,
    RegionOption,
)
from batchkit.cli.errors import boundary
from batchkit.cli.recipe import (
    BaseImageOption,
    BuildArgOption,
    FileOption,
    NameOption,
    NoCacheOption,
    PathArgument,
    PlatformOption,
    PresetOption,
    recipe_from_flags,
)

if TYPE_CHECKING:
    from batchkit.images.build import CloudImageBuilder
    from batchkit.images.pipeline import CloudBuilderFactory, LocalBuilderFactory, TargetOverrides
    from batchkit.providers.images import ImageRecord


def _cloud_factory() -> CloudBuilderFactory:
    from batchkit.images.pipeline import open_cloud_builder

    return open_cloud_builder


def _local_factory() -> LocalBuilderFactory:
    from batchkit.images.pipeline import open_local_builder

    return open_local_builder


class ImageCliEnv(Struct):
    """The builders the commands use; tests pass fakes with `CliRunner.invoke(obj=...)`."""

    cloud: CloudBuilderFactory = field(default_factory=_cloud_factory)
    local: LocalBuilderFactory = field(default_factory=_local_factory)

    @classmethod
    def of(cls, ctx: typer.Context) -> ImageCliEnv:
        obj = ctx.find_object(ImageCliEnv)
        return obj if obj is not None else cls()


app = typer.Typer(
    cls=PlainGroup,
    name="image",
    help="Build container images (CodeBuild into ECR, or a local Docker engine) and list them.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

LocalOption = Annotated[
    bool, typer.Option("--local", help="Use the local Docker engine (same as -c local).")
]
RepositoryOption = Annotated[
    str | None,
    typer.Option("--repository", metavar="NAME", help="ECR repository (default: the cluster's)."),
]
RepositoryUriOption = Annotated[
    str | None,
    typer.Option("--repository-uri", metavar="URI", help="ECR repository URI (with --repository)."),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", metavar="NAME", help="CodeBuild project (default: the cluster's)."),
]
BucketOption = Annotated[
    str | None,
    typer.Option(
        "--bucket", metavar="BUCKET", help="S3 bucket for the context (default: the cluster's)."
    ),
]


def _wants_local(local: bool, cluster: str | None) -> bool:
    from batchkit.images.pipeline import is_local, resolve_cluster

    return local or is_local(resolve_cluster(cluster))


def _cloud_builder(
    env: ImageCliEnv,
    cluster: str | None,
    profile: str | None,
    region: str | None,
    overrides: TargetOverrides,
    timeout: float = 3600.0,
) -> CloudImageBuilder:
    from batchkit.images.pipeline import CloudRequest, resolve_cluster

    request = CloudRequest(
        resolve_cluster(cluster), profile, region, overrides=overrides, timeout=timeout
    )
    return env.cloud(request)


@app.command(cls=PlainCommand)
def build(
    ctx: typer.Context,
    path: PathArgument = None,
    preset: PresetOption = None,
    dockerfile: FileOption = None,
    name: NameOption = None,
    build_arg: BuildArgOption = None,
    base_image: BaseImageOption = None,
    platform: PlatformOption = None,
    no_cache: NoCacheOption = False,
    local: LocalOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the tag and the plan; build nothing.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Do not echo the build log.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Give up (and stop the build) after."),
    ] = 3600.0,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    repository: RepositoryOption = None,
    repository_uri: RepositoryUriOption = None,
    project: ProjectOption = None,
    bucket: BucketOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Build an image, tagged by the hash of its context; an unchanged context is not rebuilt.

    On an AWS cluster: upload the context to the cluster's bucket, build it with the cluster's
    CodeBuild project (log streamed here) and push it to the cluster's ECR repository as
    `<repo>:<name>-<hash>` and `<repo>:<name>`. With --local (or -c local): build on the local
    Docker engine as `batchkit/<name>:<hash>` and `batchkit/<name>:latest`.
    """
    env = ImageCliEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.imageprint import print_plan, print_result, render_event
        from batchkit.cli.output import Terminal
        from batchkit.images.local import LocalImageBuilder
        from batchkit.images.pipeline import TargetOverrides
        from batchkit.images.plan import BuildDone, BuildStarted, ImageBuildFailedError

        term = Terminal()
        _check_timeout(timeout)
        recipe = recipe_from_flags(
            path, preset, dockerfile, name, build_arg, base_image, platform, no_cache
        )
        overrides = TargetOverrides(repository, repository_uri, project, bucket)
        use_local = _wants_local(local, cluster)
        if use_local and overrides.any:
            from batchkit.errors import UsageError

            raise UsageError(
                "--repository/--repository-uri/--project/--bucket apply to AWS clusters only",
                hint="drop them, or drop --local and name the cluster with -c",
            )

        if use_local:
            if dry_run:
                plan = LocalImageBuilder(None).plan(recipe)
                steps = [
                    f"look for {plan.image} on the local Docker engine",
                    f"if missing: build it there (host network), and tag it "
                    f"{plan.repository}:{plan.alias}",
                ]
                print_plan(term, plan, steps, json_)
                return
            local_builder = env.local()
            plan = local_builder.plan(recipe)
            events = local_builder.build(plan)
        else:
            cloud_builder = _cloud_builder(env, cluster, profile, region, overrides, timeout)
            plan = cloud_builder.plan(recipe)
            if dry_run:
                target = cloud_builder.target
                key = cloud_builder.context_key(plan)
                steps = [
                    f"ask ECR whether {target.repository_name} has the tag {plan.tag}",
                    f"if not: upload the context to s3://{target.bucket}/{key}",
                    f"start CodeBuild project {target.project} and stream its log",
                    f"push {plan.image} and move {plan.repository}:{plan.alias}",
                ]
                print_plan(term, plan, steps, json_)
                return
            term.message(f"image {plan.image}")
            events = cloud_builder.build(plan)

        started: str | None = None
        try:
            for event in events:
                if isinstance(event, BuildDone):
                    print_result(term, plan, event.result, json_)
                    continue
                if isinstance(event, BuildStarted):
                    started = event.build_id
                render_event(term, event, quiet)
        except KeyboardInterrupt:
            if started:
                term.message(
                    f"build {started} goes on in CodeBuild; stop it with "
                    f"`aws codebuild stop-build --id {started}`, or run this command again "
                    "later (a finished build makes it up to date)"
                )
            raise
        except ImageBuildFailedError as err:
            if quiet and err.log_tail:
                term.message("last lines of the build log:")
                for line in err.log_tail:
                    term.message(f"  | {line}")
            raise


@app.command("buildspec", cls=PlainCommand)
def buildspec(
    path: PathArgument = None,
    preset: PresetOption = None,
    dockerfile: FileOption = None,
    name: NameOption = None,
    build_arg: BuildArgOption = None,
    base_image: BaseImageOption = None,
    platform: PlatformOption = None,
    no_cache: NoCacheOption = False,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Print the CodeBuild buildspec that `image build` sends for the same flags (no AWS call).

    Run it in a CodeBuild project of your own: the build needs privileged mode, the context
    (a tar of PATH) at BATCHKIT_CONTEXT_URL, and BATCHKIT_IMAGE_REPOSITORY, BATCHKIT_IMAGE_TAG
    and BATCHKIT_IMAGE_ALIAS set (see docs/images.md). With --json: the buildspec, the recipe
    and the environment variables it reads.
    """
    with boundary(debug):
        from batchkit.cli.output import Terminal
        from batchkit.images.context import check_context
        from batchkit.infra.buildspec import BUILD_ENVIRONMENT, buildspec_yaml

        recipe = recipe_from_flags(
            path, preset, dockerfile, name, build_arg, base_image, platform, no_cache
        )
        check_context(recipe.context_dir, recipe.dockerfile)  # as `image build` does
        text = buildspec_yaml(recipe.buildspec_options)
        term = Terminal()
        if json_:
            term.json(
                {
                    "name": recipe.name,
                    "dockerfile": recipe.dockerfile,
                    "buildArgs": dict(recipe.build_args),
                    "platform": recipe.platform,
                    "cache": recipe.cache,
                    "environment": list(BUILD_ENVIRONMENT),
                    "buildspec": text,
                }
            )
        else:
            term.data(text)


@app.command("list", cls=PlainCommand)
def list_(
    ctx: typer.Context,
    local: LocalOption = False,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    repository: RepositoryOption = None,
    repository_uri: RepositoryUriOption = None,
    project: ProjectOption = None,
    bucket: BucketOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List the images of the cluster's ECR repository (or batchkit's images on the local
    Docker engine with --local): tags, pushed at, size, digest."""
    env = ImageCliEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.imageprint import image_table
        from batchkit.cli.output import Terminal
        from batchkit.images.pipeline import TargetOverrides

        term = Terminal()
        records: list[ImageRecord]
        if _wants_local(local, cluster):
            records = env.local().list_images()
        else:
            overrides = TargetOverrides(repository, repository_uri, project, bucket)
            records = _cloud_builder(env, cluster, profile, region, overrides).list_images()
        if json_:
            term.json([record.to_dict() for record in records])
        else:
            term.data(image_table(records))


MAX_BUILD_SECONDS = 2160 * 60  # CodeBuild: a build times out after at most 2160 minutes


def _check_timeout(timeout: float) -> None:
    if not 0 < timeout <= MAX_BUILD_SECONDS:
        from batchkit.errors import UsageError

        raise UsageError(
            f"--timeout must be more than 0 and at most {MAX_BUILD_SECONDS} seconds, "
            f"got {timeout:g}",
            hint="CodeBuild stops any build after 36 hours; the default is 3600",
        )

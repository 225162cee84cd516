"""What an image build works with, in the cloud and on a local engine alike: the recipe (context,
Dockerfile, build args, platform), its plan (the context scanned and hashed, so the image's name
is known before anything is built), the events a build yields as it goes, its result, and the
error of a build that did not produce the image. `build.CloudImageBuilder` and
`local.LocalImageBuilder` both plan with `plan_image` and send `archive_bytes`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from batchkit.errors import BatchkitError, ExitCode, UsageError
from batchkit.images.context import (
    ArchiveDigest,
    BuildContext,
    content_tag,
    scan_context,
    write_archive,
)
from batchkit.infra.buildspec import BuildspecOptions
from batchkit.providers.images import check_image_name


class ImageBuildFailedError(BatchkitError):
    """A CodeBuild build (or a local build) did not produce the image."""

    exit_code = ExitCode.JOB_FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        build_id: str | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.build_id = build_id
        self.log_tail = tuple(log_tail)


class ImageRecipe(Struct, frozen=True):
    """What decides an image: a context directory, a Dockerfile in it, build args, platform.

    `cache=False` builds every layer afresh; it changes how, not what, so not the content tag."""

    name: str
    context_dir: Path
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    cache: bool = True

    @property
    def buildspec_options(self) -> BuildspecOptions:
        return BuildspecOptions(
            dockerfile=self.dockerfile,
            build_args=dict(self.build_args),
            platform=self.platform,
            cache=self.cache,
        )


class ImagePlan(Struct, frozen=True):
    """A hashed recipe: what the image will be called, before anything is built."""

    recipe: ImageRecipe
    context: BuildContext
    archive: ArchiveDigest
    content_hash: str
    repository: str
    tag: str
    alias: str

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.recipe.name,
            "contextDir": str(self.context.root),
            "dockerfile": self.recipe.dockerfile,
            "buildArgs": dict(self.recipe.build_args),
            "platform": self.recipe.platform,
            "contentHash": self.content_hash,
            "archiveSha256": self.archive.sha256,
            "files": self.context.file_count,
            "bytes": self.archive.size,
            "image": self.image,
            "tag": self.tag,
            "alias": f"{self.repository}:{self.alias}",
        }


def plan_image(recipe: ImageRecipe, repository: str, *, tag_prefix: str) -> ImagePlan:
    """Scan and hash the context (reads the files once; no AWS or Docker call).

    The tag is `<tag_prefix><hash>`; the moving alias tag is the image name."""
    check_image_name(recipe.name)
    context = scan_context(recipe.context_dir, recipe.dockerfile)
    archive = write_archive(context)
    content_hash = content_tag(
        archive,
        dockerfile=recipe.dockerfile,
        build_args=recipe.build_args,
        platform=recipe.platform,
    )
    return ImagePlan(
        recipe=recipe,
        context=context,
        archive=archive,
        content_hash=content_hash,
        repository=repository,
        tag=f"{tag_prefix}{content_hash}",
        alias=recipe.name if tag_prefix else "latest",
    )


class ImageResult(Struct, frozen=True):
    """The outcome of `image build`: the image reference and, when known, its digest."""

    image: str
    digest: str | None
    up_to_date: bool
    build_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "digest": self.digest,
            "upToDate": self.up_to_date,
            "buildId": self.build_id,
        }


class ContextUploaded(Struct, frozen=True):
    url: str
    size: int


class BuildStarted(Struct, frozen=True):
    build_id: str
    console_url: str | None


class BuildPhase(Struct, frozen=True):
    phase: str


class BuildLogLine(Struct, frozen=True):
    message: str


class BuildDone(Struct, frozen=True):
    result: ImageResult


BuildEvent = ContextUploaded | BuildStarted | BuildPhase | BuildLogLine | BuildDone


def archive_bytes(plan: ImagePlan) -> bytes:
    """The context archive, re-read and checked against the hash the plan was made with."""
    buffer = io.BytesIO()
    digest = write_archive(plan.context, buffer)
    if digest != plan.archive:
        raise UsageError(
            f"the build context {plan.context.root} changed after it was hashed",
            hint="run the build again once the files stop changing",
        )
    return buffer.getvalue()

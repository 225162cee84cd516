"""Images as the providers speak of them: their names, and records of images and builds.

A job's `--image debian` is a short name of an image batchkit built: on an AWS cluster it means
a tag of the cluster's one ECR repository (`<repo>:debian`, a build `<repo>:debian-<hash>`), on
the local engine `batchkit/debian:latest`. Both providers resolve it when a job runs, and the
image pipeline (`batchkit.images`) names what it builds the same way, so the rules live here,
below both. `ImageRecord` and `BuildStatus` are what the ECR and CodeBuild gateways return and
the pipeline consumes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from msgspec import Struct

from batchkit.errors import UsageError

LOCAL_REPOSITORY_PREFIX = "batchkit/"
"""The local engine's images built by batchkit: `batchkit/NAME:<hash>` and `:latest`."""

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_image_name(name: str) -> str:
    """An image short name: lower-case letters, digits, `-`, `_`, `.`, starting alphanumeric."""
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS or not name[0].isalnum():
        raise UsageError(
            f"invalid image name {name!r}",
            hint="use 1-64 lower-case letters, digits, '-', '_' or '.', starting with a letter "
            "or digit (--name)",
        )
    return name


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
    return 0 < len(tag) <= 128 and set(tag) <= _TAG_CHARS and tag[0] not in ".-"


class ImageRecord(Struct, frozen=True):
    """One image in an ECR repository or a local Docker engine."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime | None
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "pushedAt": self.pushed_at.isoformat() if self.pushed_at else None,
            "sizeBytes": self.size_bytes,
        }


class BuildState(StrEnum):
    """CodeBuild's buildStatus values."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    FAULT = "FAULT"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @property
    def done(self) -> bool:
        return self is not BuildState.IN_PROGRESS


class BuildStatus(Struct, frozen=True):
    """One CodeBuild build as last seen.

    `log_group`/`log_stream` appear once CodeBuild has created the stream (a few seconds into the
    build; moto never sets them). `failure` is the message of the phase that failed, if any.
    """

    build_id: str
    state: BuildState
    phase: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    console_url: str | None = None
    failure: str | None = None

"""What the image pipeline talks about: images in a registry and CodeBuild builds.

A leaf module (it imports nothing of batchkit), shared by the gateways in `providers/aws` that
return these records and the provider-neutral logic in `images/` that consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class ImageRecord:
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


@dataclass(frozen=True)
class BuildStatus:
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

"""Build an image on a local Docker engine, named by the same content hash as in the cloud.

`batchkit image build --local` sends the deterministic context archive to the engine with the
docker SDK, tags the result `batchkit/<name>:<hash>` and moves `batchkit/<name>:latest` to it.
Builds use host networking: on a machine without a bridge network (and on CI) `RUN apt-get` or
`pip install` can reach package mirrors only that way.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from batchkit.errors import EngineError
from batchkit.images.plan import (
    BuildDone,
    BuildEvent,
    BuildLogLine,
    ImageBuildFailedError,
    ImagePlan,
    ImageRecipe,
    ImageResult,
    archive_bytes,
    plan_image,
)
from batchkit.providers.images import LOCAL_REPOSITORY_PREFIX, ImageRecord

LABEL_NAME = "io.batchkit.image"
LABEL_HASH = "io.batchkit.content-hash"


def connect_docker() -> Any:
    """A docker SDK client for the engine at $DOCKER_HOST (or the default socket)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:
        raise EngineError(
            f"no Docker engine answers: {err}",
            hint="start one (`source scripts/dockerd.sh && docker_engine_up`, or the Docker "
            "service) and set DOCKER_HOST if it is not at the default socket",
        ) from err
    return client


def _engine_error(action: str, err: Exception) -> EngineError:
    return EngineError(
        f"Docker engine failed to {action}: {err}",
        hint="check that the engine is running (`docker info`) and DOCKER_HOST points at it",
    )


class LocalImageBuilder:
    """Builds batchkit images on a local Docker engine (the docker SDK client is injected)."""

    def __init__(self, client: Any, *, network_mode: str = "host") -> None:
        self._client = client
        self._network_mode = network_mode

    def plan(self, recipe: ImageRecipe) -> ImagePlan:
        return plan_image(recipe, f"{LOCAL_REPOSITORY_PREFIX}{recipe.name}", tag_prefix="")

    def _find(self, reference: str) -> Any | None:
        import docker.errors

        try:
            return self._client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as err:
            raise _engine_error(f"look up {reference}", err) from err

    def build(self, plan: ImagePlan) -> Iterator[BuildEvent]:
        """Build unless the engine has the tag; yields log lines and ends with `BuildDone`."""
        import docker.errors

        existing = self._find(plan.image)
        if existing is not None:
            yield BuildDone(ImageResult(plan.image, str(existing.id), True))
            return
        body = archive_bytes(plan)
        tail: list[str] = []
        image_id: str | None = None
        try:
            stream = self._client.api.build(
                fileobj=io.BytesIO(body),
                custom_context=True,
                dockerfile=plan.recipe.dockerfile,
                tag=plan.image,
                buildargs=dict(plan.recipe.build_args),
                platform=plan.recipe.platform,
                nocache=not plan.recipe.cache,
                network_mode=self._network_mode,
                labels={LABEL_NAME: plan.recipe.name, LABEL_HASH: plan.content_hash},
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = str(chunk.get("errorDetail", {}).get("message") or chunk["error"])
                    raise ImageBuildFailedError(
                        f"local build of {plan.image} failed: {detail.strip()}",
                        hint=_failure_hint(detail),
                        log_tail=tail,
                    )
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
                text = chunk.get("stream")
                if isinstance(text, str):
                    for line in text.rstrip("\n").split("\n"):
                        if line.strip():
                            tail = [*tail[-19:], line]
                            yield BuildLogLine(line)
            self._client.api.tag(plan.image, plan.repository, plan.alias, force=True)
        except docker.errors.DockerException as err:
            raise _engine_error(f"build {plan.image}", err) from err
        if image_id is None:
            built = self._find(plan.image)
            image_id = str(built.id) if built is not None else None
        yield BuildDone(ImageResult(plan.image, image_id, False))

    def list_images(self) -> list[ImageRecord]:
        """Images built by batchkit on this engine, newest first."""
        import docker.errors

        try:
            images = self._client.images.list(filters={"label": LABEL_NAME})
        except docker.errors.DockerException as err:
            raise _engine_error("list images", err) from err
        records: list[ImageRecord] = []
        for image in images:
            attrs = image.attrs
            tags = tuple(sorted(image.tags))
            repository = tags[0].rsplit(":", 1)[0] if tags else ""
            records.append(
                ImageRecord(
                    repository=repository,
                    digest=str(image.id),
                    tags=tuple(t.rsplit(":", 1)[1] for t in tags),
                    pushed_at=_created(attrs.get("Created")),
                    size_bytes=int(attrs.get("Size") or 0),
                )
            )
        return sorted(
            records,
            key=lambda r: (r.pushed_at.timestamp() if r.pushed_at else 0.0, r.digest),
            reverse=True,
        )


_PULL_FAILURES = (
    "pull access denied",
    "failed to resolve",
    "no such host",
    "dial tcp",
    "manifest unknown",
    "toomanyrequests",
    "i/o timeout",
)


def _failure_hint(detail: str) -> str:
    """Point a failed pull of the FROM image at --base-image: local engines reach no registry."""
    if any(marker in detail.lower() for marker in _PULL_FAILURES):
        return (
            "the engine could not pull the FROM image (local engines reach no registry): build "
            "FROM an image the engine has, e.g. `--base-image batchkit-base/debian:bookworm` "
            "(made by scripts/base-images.sh)"
        )
    return "read the build output above; fix the Dockerfile or the context"


def _created(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.split(".")[0].rstrip("Z") + "+00:00")
    except ValueError:
        return None

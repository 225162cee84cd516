"""Build an image in the cloud: context → S3 → CodeBuild → ECR, named by its content.

`CloudImageBuilder.plan()` hashes the context (no AWS call). `build()` is a generator of events:
it asks ECR once whether the content tag exists (then it yields `BuildDone(up_to_date=True)` and
stops), else uploads the context archive, starts the CodeBuild build with the rendered buildspec,
streams its CloudWatch log as it comes, waits with the injected clock and sleep, and ends with
`BuildDone` carrying the image URI and digest. A failed, stopped or timed-out build raises
`ImageBuildFailedError` with the failing phase, the last log lines and the console link.

Collaborators are protocols, so tests drive progress and failure through fakes (moto's builds
finish at once and have no logs). The recipe, plan, events and result are `plan`'s, shared with
local builds.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from msgspec import Struct

from batchkit.images.plan import (
    BuildDone,
    BuildEvent,
    BuildLogLine,
    BuildPhase,
    BuildStarted,
    ContextUploaded,
    ImageBuildFailedError,
    ImagePlan,
    ImageRecipe,
    ImageResult,
    archive_bytes,
    plan_image,
)
from batchkit.infra.buildspec import (
    ENV_ALIAS,
    ENV_CONTEXT_URL,
    ENV_REPOSITORY,
    ENV_TAG,
    buildspec_yaml,
    parse_digest_line,
)
from batchkit.logmodel import LogPage
from batchkit.providers.base import ObjectStore
from batchkit.providers.images import BuildState, BuildStatus, ImageRecord

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class BuildTarget(Struct, frozen=True):
    """Where a cluster builds images: its bucket (through an ObjectStore), repository, project."""

    cluster: str
    repository_name: str
    repository_uri: str
    project: str
    bucket: str = ""
    context_prefix: str = "images"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "repositoryName": self.repository_name,
            "repositoryUri": self.repository_uri,
            "project": self.project,
            "bucket": self.bucket,
            "contextPrefix": self.context_prefix,
        }


class ImageRegistry(Protocol):
    def find_image(self, repository: str, tag: str) -> ImageRecord | None: ...

    def list_images(self, repository: str) -> list[ImageRecord]: ...


class BuildService(Protocol):
    def start_build(
        self,
        project: str,
        *,
        buildspec: str,
        environment: Mapping[str, str],
        timeout_minutes: int | None = None,
    ) -> BuildStatus: ...

    def get_build(self, build_id: str) -> BuildStatus: ...

    def stop_build(self, build_id: str) -> BuildStatus: ...


class BuildLogReader(Protocol):
    """GetLogEvents-style paging (`providers.aws.logs.LogsGateway` fits): a missing stream is
    an empty page, and the forward token repeats when the stream is drained."""

    def get_log_events(
        self,
        group: str,
        stream: str,
        *,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage: ...


class _LogFollower:
    """Reads a build's log stream forward from where it left off."""

    def __init__(self, reader: BuildLogReader | None) -> None:
        self._reader = reader
        self._token: str | None = None
        self.tail: deque[str] = deque(maxlen=20)
        self.digest: str | None = None

    def drain(self, status: BuildStatus) -> Iterator[BuildLogLine]:
        if self._reader is None or not status.log_group or not status.log_stream:
            return
        for _ in range(1000):  # bounded: a build log never needs more pages per poll
            page = self._reader.get_log_events(
                status.log_group,
                status.log_stream,
                start_from_head=True,
                next_token=self._token,
            )
            for event in page.events:
                for line in event.message.rstrip("\n").split("\n"):
                    digest = parse_digest_line(line)
                    if digest:
                        self.digest = digest
                    self.tail.append(line)
                    yield BuildLogLine(line)
            drained = not page.events or page.next_forward_token in (None, self._token)
            self._token = page.next_forward_token or self._token
            if drained:
                return


class CloudImageBuilder:
    """Builds images for one cluster with CodeBuild into its ECR repository."""

    def __init__(
        self,
        target: BuildTarget,
        *,
        registry: ImageRegistry,
        builds: BuildService,
        objects: ObjectStore,
        logs: BuildLogReader | None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        poll_interval: float = 5.0,
        timeout: float = 3600.0,
    ) -> None:
        self.target = target
        self._registry = registry
        self._builds = builds
        self._objects = objects
        self._logs = logs
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval
        self._timeout = timeout

    def plan(self, recipe: ImageRecipe) -> ImagePlan:
        return plan_image(recipe, self.target.repository_uri, tag_prefix=f"{recipe.name}-")

    def list_images(self) -> list[ImageRecord]:
        """The images in the cluster's repository, newest first."""
        return self._registry.list_images(self.target.repository_name)

    def context_key(self, plan: ImagePlan) -> str:
        prefix = self.target.context_prefix.strip("/")
        return f"{prefix}/{plan.tag}.tar" if prefix else f"{plan.tag}.tar"

    def build(self, plan: ImagePlan) -> Iterator[BuildEvent]:
        """Build unless ECR has the tag; yields progress and ends with `BuildDone`."""
        existing = self._registry.find_image(self.target.repository_name, plan.tag)
        if existing is not None:
            yield BuildDone(ImageResult(plan.image, _digest_ref(plan, existing), True))
            return

        key = self.context_key(plan)
        body = archive_bytes(plan)
        self._objects.put(key, body)
        url = self._objects.url(key)
        yield ContextUploaded(url, len(body))

        status = self._builds.start_build(
            self.target.project,
            buildspec=buildspec_yaml(plan.recipe.buildspec_options),
            environment={
                ENV_REPOSITORY: plan.repository,
                ENV_TAG: plan.tag,
                ENV_ALIAS: plan.alias,
                ENV_CONTEXT_URL: url,
            },
            timeout_minutes=min(2160, max(5, math.ceil(self._timeout / 60))),  # CodeBuild range
        )
        yield BuildStarted(status.build_id, status.console_url)
        yield from self._wait(plan, status)

    def _wait(self, plan: ImagePlan, status: BuildStatus) -> Iterator[BuildEvent]:
        follower = _LogFollower(self._logs)
        deadline = self._clock() + self._timeout
        phase: str | None = None
        while True:
            if status.phase and status.phase != phase:
                phase = status.phase
                yield BuildPhase(phase)
            yield from follower.drain(status)
            if status.state.done:
                # CloudWatch can lag the build by a few seconds: when the end of the log (the
                # digest line, or the error of a failed build) may still be on its way, look once
                # more after a short grace.
                unsure = status.state is not BuildState.SUCCEEDED or follower.digest is None
                if unsure and status.log_group and status.log_stream and self._logs is not None:
                    self._sleep(min(self._poll_interval, 3.0))
                    yield from follower.drain(status)
                break
            if self._clock() >= deadline:
                self._builds.stop_build(status.build_id)
                raise ImageBuildFailedError(
                    f"image build {status.build_id} did not finish within "
                    f"{self._timeout:g} s; it was stopped",
                    hint="raise the limit with --timeout, or look at the build in the console"
                    + (f": {status.console_url}" if status.console_url else ""),
                    build_id=status.build_id,
                    log_tail=follower.tail,
                )
            self._sleep(self._poll_interval)
            status = self._builds.get_build(status.build_id)

        if status.state is not BuildState.SUCCEEDED:
            where = f" in {status.failure}" if status.failure else ""
            raise ImageBuildFailedError(
                f"image build {status.build_id} ended {status.state.value}{where}",
                hint="read the build log above"
                + (f" or in the console: {status.console_url}" if status.console_url else ""),
                build_id=status.build_id,
                log_tail=follower.tail,
            )
        digest = follower.digest
        if digest is None:
            pushed = self._registry.find_image(self.target.repository_name, plan.tag)
            digest = _digest_ref(plan, pushed) if pushed else None
        yield BuildDone(ImageResult(plan.image, digest, False, status.build_id))


def _digest_ref(plan: ImagePlan, record: ImageRecord) -> str | None:
    return f"{plan.repository}@{record.digest}" if record.digest else None

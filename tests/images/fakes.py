"""Fakes at the image driver's seams: registry, CodeBuild, build log, bucket, clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from batchkit.logmodel import LogEvent, LogPage
from batchkit.providers.images import BuildState, BuildStatus, ImageRecord


class FakeRegistry:
    def __init__(self, tags: Mapping[str, str] | None = None) -> None:
        self.tags = dict(tags or {})
        self.calls: list[tuple[str, str]] = []

    def find_image(self, repository: str, tag: str) -> ImageRecord | None:
        self.calls.append((repository, tag))
        if tag not in self.tags:
            return None
        return ImageRecord(repository, self.tags[tag], (tag,), datetime.now(UTC), 10)

    def list_images(self, repository: str) -> list[ImageRecord]:
        return []


class FakeBuilds:
    """Answers get_build with a scripted sequence of statuses (the last one repeats)."""

    def __init__(self, statuses: list[BuildStatus]) -> None:
        self.statuses = statuses
        self.started: list[dict[str, object]] = []
        self.stopped: list[str] = []
        self.polls = 0

    def start_build(
        self,
        project: str,
        *,
        buildspec: str,
        environment: Mapping[str, str],
        timeout_minutes: int | None = None,
    ) -> BuildStatus:
        self.started.append(
            {"project": project, "buildspec": buildspec, "environment": dict(environment)}
        )
        return BuildStatus("p:1", BuildState.IN_PROGRESS, phase="SUBMITTED")

    def get_build(self, build_id: str) -> BuildStatus:
        self.polls += 1
        return self.statuses[min(self.polls - 1, len(self.statuses) - 1)]

    def stop_build(self, build_id: str) -> BuildStatus:
        self.stopped.append(build_id)
        return BuildStatus(build_id, BuildState.STOPPED)


class FakeLogs:
    """A log stream that grows: each read returns what was appended since the token."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def get_log_events(
        self,
        group: str,
        stream: str,
        *,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        start = int(next_token or 0)
        events = [LogEvent(i, line) for i, line in enumerate(self.lines[start:], start)]
        return LogPage(events, str(len(self.lines)))


class FakeObjects:
    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def url(self, key: str) -> str:
        return f"s3://bucket/{key}"

    def put(self, key: str, body: bytes) -> None:
        self.store[key] = body

    def get(self, key: str) -> bytes:
        return self.store[key]

    def exists(self, key: str) -> bool:
        return key in self.store


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

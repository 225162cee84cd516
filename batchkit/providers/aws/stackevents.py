"""Reading a cluster stack and waiting on it: its status, its events, progress as it changes.

`StackReader` is the read side of a cluster stack's lifecycle: describe, list, page events and
watch a stack until it stops changing. The write side (change sets, create, delete) is
`stackdeploy.StackGateway`, which builds on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from msgspec import Struct, field

from batchkit.errors import AwsError, BatchkitError, ClusterNotFoundError, NotFoundError
from batchkit.providers.aws.cloudformation import CloudFormationGateway, Stack, stack_from_detail
from batchkit.providers.aws.codebuild import CodeBuildGateway
from batchkit.providers.aws.session import Api


class StackEvent(Struct, frozen=True):
    timestamp: float
    logical_id: str
    resource_type: str
    status: str
    reason: str = ""
    # The ClientRequestToken of the stack operation that made the event, "" when the answer has
    # none (moto records none). Every event of one operation carries the token it was sent with
    # (CloudFormation API Reference, StackEvent, ClientRequestToken; as boto3 documents it:
    # https://boto3.amazonaws.com/v1/documentation/api/1.34.0/reference/services/cloudformation/event/client_request_token.html).
    token: str = ""

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "reason": self.reason,
        }


class ClusterStatus(Struct, frozen=True):
    name: str
    status: str
    reason: str
    region: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.outputs.get("BatchkitVersion", "")

    @property
    def queues(self) -> dict[str, str]:
        text = self.outputs.get("JobQueues")
        if text:
            return {str(k): str(v) for k, v in json.loads(text).items()}
        queue = self.outputs.get("BatchJobQueueArn")
        return {queue.rsplit("/", 1)[-1]: queue} if queue else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "region": self.region,
            "version": self.version,
            "outputs": dict(self.outputs),
            "parameters": dict(self.parameters),
            "tags": dict(self.tags),
        }


class Progress(Struct, frozen=True):
    """One line of progress: a stack event, or a step of batchkit's own."""

    text: str
    event: StackEvent | None = None


ProgressSink = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    return None


def status_of(stack: Stack) -> ClusterStatus:
    return ClusterStatus(
        name=stack.name,
        status=stack.status,
        reason=stack.status_reason or "",
        region=stack.region,
        outputs=stack.outputs,
        parameters=stack.parameters,
        tags=stack.tags,
    )


def _event(raw: Mapping[str, Any]) -> StackEvent:
    stamp: Any = raw.get("Timestamp")
    return StackEvent(
        timestamp=float(stamp.timestamp()) if stamp is not None else 0.0,
        logical_id=str(raw.get("LogicalResourceId", "")),
        resource_type=str(raw.get("ResourceType", "")),
        status=str(raw.get("ResourceStatus", "")),
        reason=str(raw.get("ResourceStatusReason") or ""),
        token=str(raw.get("ClientRequestToken") or ""),
    )


DEFAULT_IMAGE_RESOURCE = "DefaultImage"  # the logical id `infra.defaultimage` gives it


class StackReader:
    """CloudFormation reads for cluster stacks, with waiting done by polling an injected sleep."""

    def __init__(
        self,
        api: Api,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 5.0,
        max_polls: int = 2160,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._reader = CloudFormationGateway(api)
        self._clock = clock
        self._sleep = sleep
        self._poll = poll_seconds
        self._max_polls = max_polls

    def describe(self, name: str) -> ClusterStatus | None:
        stack = self._reader.describe_stack(name)
        return status_of(stack) if stack is not None else None

    def list_tagged(self, tag: str) -> list[ClusterStatus]:
        found = []
        for page in self._api.paginate(
            "describe_stacks", cursor_in="NextToken", cursor_out="NextToken"
        ):
            for detail in page.get("Stacks") or ():
                status = status_of(stack_from_detail(detail))
                if tag in status.tags and status.status != "DELETE_COMPLETE":
                    found.append(status)
        return sorted(found, key=lambda s: s.name)

    def events(self, name: str, *, since: float | None = None) -> list[StackEvent]:
        """The stack's events, oldest first; with `since`, only those after it.

        CloudFormation lists events newest first, so paging stops at the first event at or
        before `since`: a wait does not re-read the stack's whole history on every poll.
        """
        found: list[StackEvent] = []
        try:
            for page in self._api.paginate(
                "describe_stack_events",
                cursor_in="NextToken",
                cursor_out="NextToken",
                resource=name,
                StackName=name,
            ):
                for raw in page.get("StackEvents") or ():
                    event = _event(raw)
                    if since is not None and event.timestamp <= since:
                        return found[::-1]
                    found.append(event)
        except (ClusterNotFoundError, NotFoundError):
            return []
        return found[::-1]

    def latest_event_time(self, name: str) -> float:
        """When the stack's newest event happened (0 without events): later ones are new."""
        try:
            page = self._api.call("describe_stack_events", resource=name, StackName=name)
        except (ClusterNotFoundError, NotFoundError):
            return 0.0
        # Newest first: the first page has it.
        return max((_event(raw).timestamp for raw in page.get("StackEvents") or ()), default=0.0)

    def watch(
        self, name: str, *, since: float = 0.0, on_poll: Callable[[], None] | None = None
    ) -> Iterator[StackEvent | ClusterStatus]:
        """New events as they come, then the final status (None-less: a vanished stack is
        reported as DELETE_COMPLETE). `on_poll` runs once a poll, while the stack changes."""
        seen: set[tuple[float, str, str]] = set()
        for _ in range(self._max_polls):
            status = self.describe(name)
            for event in self.events(name, since=since) if status else []:
                key = (event.timestamp, event.logical_id, event.status)
                if key not in seen:
                    seen.add(key)
                    yield event
            if status is None:
                yield ClusterStatus(name=name, status="DELETE_COMPLETE", reason="", region="")
                return
            if not status.status.endswith("_IN_PROGRESS"):
                yield status
                return
            if on_poll is not None:
                on_poll()
            self._sleep(self._poll)
        raise AwsError(
            f"stack {name!r} is still changing after {self._max_polls * self._poll:.0f} s",
            hint="follow it with `batchkit cluster status` or in the CloudFormation console",
        )


class DefaultImageWatch:
    """Reports the default image's CodeBuild build while its custom resource is in progress,
    between the stack events (`defaultimage.py` builds it during create and update)."""

    def __init__(self, builds: CodeBuildGateway, project: str, on_progress: ProgressSink) -> None:
        self._builds = builds
        self._project = project
        self._on_progress = on_progress
        self._active = False
        self._seen: tuple[str, str | None] | None = None

    def observe(self, progress: Progress) -> None:
        event = progress.event
        if event is not None and event.logical_id == DEFAULT_IMAGE_RESOURCE:
            self._active = event.status.endswith("_IN_PROGRESS")
        self._on_progress(progress)

    def poll(self) -> None:
        if not self._active:
            return
        try:
            build = self._builds.latest_build(self._project)
        except BatchkitError:
            self._active = False  # no codebuild:ListBuildsForProject: the events still tell
            return
        if build is None or (build.build_id, build.phase) == self._seen:
            return
        self._seen = (build.build_id, build.phase)
        where = f"; log {build.log_group} {build.log_stream}" if build.log_stream else ""
        self._on_progress(
            Progress(f"default image: build {build.build_id} {build.phase or 'QUEUED'}{where}")
        )


class StackOperationError(AwsError):
    """A create, update or delete ended in a failed or rolled-back state."""


def follow(
    reader: StackReader,
    name: str,
    since: float,
    on_progress: ProgressSink,
    success: str,
    on_poll: Callable[[], None] | None = None,
) -> tuple[ClusterStatus, list[StackEvent]]:
    """Report the stack's new events until it stops changing; its final status and the failed
    events, or StackOperationError when it did not end in `success`."""
    failures: list[StackEvent] = []
    final: ClusterStatus | None = None
    for item in reader.watch(name, since=since, on_poll=on_poll):
        if isinstance(item, StackEvent):
            if item.failed and "cancelled" not in item.reason.lower():
                failures.append(item)
            on_progress(Progress(item.status, item))
        else:
            final = item
    assert final is not None
    if final.status != success:
        raise StackOperationError(
            f"stack {name} ended in {final.status}"
            + "".join(f"\n  {f.logical_id} ({f.resource_type}): {f.reason}" for f in failures),
            hint=_cleanup_hint(name, final.status),
        )
    return final, failures


def _cleanup_hint(name: str, status: str) -> str:
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"):
        return (
            f"fix the resources above in batchkit.yaml, then `batchkit cluster delete {name}` "
            "and create it again"
        )
    if status.startswith("UPDATE_ROLLBACK"):
        return "the previous configuration is back in place; fix the config and update again"
    if status == "DELETE_FAILED":
        return (
            f"remove what blocks the resources above, then `batchkit cluster delete {name}` again"
        )
    return f"see the stack events with `batchkit cluster status {name} --events`"

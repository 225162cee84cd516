"""An in-memory `Provider` for tests of the provider-neutral logic and the CLI.

It records what was uploaded and submitted, keeps jobs and log streams in dicts, and lets a test
move jobs through their lifecycle (`advance`, `finish`, `log`). GetLogEvents is emulated with
CloudWatch's paging rules: forward tokens, a repeated token when the stream is drained, and
`start_from_head=False` returning the last `limit` events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from msgspec.structs import replace

from batchkit.clustermodel import Host, Queue
from batchkit.logmodel import LogEvent, LogPage
from batchkit.models import Attempt, Job, JobStatus, SubmitRequest


class FakeObjects:
    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def url(self, key: str) -> str:
        return f"s3://fake-bucket/{key}"

    def put(self, key: str, body: bytes) -> None:
        self.items[key] = body

    def get(self, key: str) -> bytes:
        return self.items[key]

    def exists(self, key: str) -> bool:
        return key in self.items


@dataclass
class FakeProvider:
    cluster_name: str = "fake"
    kind: str = "local"
    artifact_root: str = "root"
    page_size: int = 3
    objects: FakeObjects = field(default_factory=FakeObjects)
    jobs: dict[str, Job] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    streams: dict[str, list[LogEvent]] = field(default_factory=dict)
    requests: list[SubmitRequest] = field(default_factory=list)
    terminated: list[tuple[str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    on_describe: Callable[[FakeProvider], None] | None = None
    fair_share_queues: frozenset[str] | None = frozenset()
    """Queues that schedule by fair share (None: the provider cannot tell)."""
    capacities: dict[str, str] = field(default_factory=dict)
    """Queue → FARGATE, SPOT or EC2 (missing: the provider cannot tell)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1_700_000_000_000))

    # -- Provider -------------------------------------------------------------------------------
    def queue_capacity(self, queue: str | None) -> str | None:
        return self.capacities.get(queue or "default")

    def fair_share(self, queue: str | None) -> bool | None:
        if self.fair_share_queues is None:
            return None
        return (queue or "default") in self.fair_share_queues

    def submit(self, request: SubmitRequest) -> Job:
        self.calls.append("submit")
        self.requests.append(request)
        job_id = f"job-{next(self._ids):04d}"
        job = Job(
            job_id=job_id,
            name=request.name,
            status=JobStatus.SUBMITTED,
            queue=request.queue or "default",
            created_at=next(self._clock),
            command=list(request.command),
            resources=request.resources,
            image=request.image,
            array_size=request.array_size,
            nodes=request.nodes,
            depends_on=list(request.depends_on),
            s3_folder_url=request.s3_folder_url,
        )
        self.add(job)
        return job

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        self.calls.append("describe_jobs")
        if self.on_describe is not None:
            self.on_describe(self)
        return [self.jobs[i] for i in job_ids if i in self.jobs]

    def list_jobs(self, statuses: Sequence[JobStatus], queue: str | None = None) -> list[Job]:
        self.calls.append("list_jobs")
        return [job for job in self.jobs.values() if job.status in statuses and not job.id.is_child]

    def list_children(self, parent: Job) -> list[Job]:
        self.calls.append("list_children")
        return [self.jobs[i] for i in self.children.get(parent.job_id, [])]

    def list_child_summaries_of(self, parents: Sequence[Job]) -> dict[str, list[Job]]:
        self.calls.append("list_child_summaries_of")
        return {p.job_id: [self.jobs[i] for i in self.children.get(p.job_id, [])] for p in parents}

    def list_child_summaries(self, parent: Job) -> list[Job]:
        self.calls.append("list_child_summaries")
        return [self.jobs[i] for i in self.children.get(parent.job_id, [])]

    def terminate_job(self, job_id: str, reason: str) -> None:
        self.terminated.append((job_id, reason))
        self.set(job_id, status=JobStatus.FAILED, status_reason=reason)

    def get_log_events(
        self,
        stream: str,
        *,
        group: str | None = None,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        self.calls.append("get_log_events")
        events = self.streams.get(stream, [])
        size = min(limit or self.page_size, self.page_size)
        if next_token is not None:
            start = int(next_token.split("/")[1])
        elif start_from_head:
            start = 0
        else:
            start = max(0, len(events) - (limit or len(events)))
            size = len(events) - start
        page = events[start : start + size]
        return LogPage(page, f"f/{start + len(page)}", f"b/{start}")

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        all_queues = [
            Queue("default", "arn:aws:batch:local:0:job-queue/default", 1, "ENABLED", "VALID")
        ]
        return [q for q in all_queues if not names or q.name in names]

    def hosts(self) -> list[Host]:
        return [Host("local-host", "local", "ACTIVE", private_ip="127.0.0.1", running_jobs=1)]

    # -- test helpers ---------------------------------------------------------------------------
    def add(self, job: Job) -> Job:
        self.jobs[job.job_id] = job
        ids = [f"{job.job_id}:{i}" for i in range(job.array_size or 0)] or (
            [f"{job.job_id}#{n}" for n in range(job.nodes)] if job.nodes > 1 else []
        )
        if ids:
            self.children[job.job_id] = ids
            for child_id in ids:
                self.jobs[child_id] = replace(job, job_id=child_id, array_size=None, nodes=1)
        return job

    def set(self, job_id: str, **changes: object) -> Job:
        job = replace(self.jobs[job_id], **changes)  # type: ignore[arg-type]
        self.jobs[job_id] = job
        return job

    def start(self, job_id: str) -> None:
        stream = f"stream/{job_id}"
        self.streams.setdefault(stream, [])
        self.set(job_id, status=JobStatus.RUNNING, log_stream=stream, started_at=next(self._clock))

    def retry(self, job_id: str, exit_code: int, reason: str) -> None:
        """The running attempt failed: it joins `attempts` and a new one starts on its own stream,
        as Batch reports a retried job."""
        job = self.jobs[job_id]
        ended = Attempt(job.started_at, next(self._clock), exit_code, None, job.log_stream, reason)
        stream = f"stream/{job_id}/{len(job.attempts) + 2}"
        self.streams.setdefault(stream, [])
        self.set(job_id, attempts=[*job.attempts, ended], log_stream=stream)

    def finish(
        self, job_id: str, status: JobStatus = JobStatus.SUCCEEDED, exit_code: int = 0
    ) -> None:
        self.set(job_id, status=status, exit_code=exit_code, stopped_at=next(self._clock))

    def log(self, job_id: str, *messages: str) -> None:
        stream = self.jobs[job_id].log_stream or f"stream/{job_id}"
        self.streams.setdefault(stream, []).extend(
            LogEvent(next(self._clock), message) for message in messages
        )

"""The seam between provider-neutral logic and a provider.

Both providers implement `Provider` and speak the AWS Batch data model of `batchkit.models`: a
behaviour difference between them is a bug. A provider never prints, never exits, and raises only
`BatchkitError` subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from batchkit.models import Job, JobStatus, SubmitRequest

if TYPE_CHECKING:  # a submitter imports neither
    from batchkit.clustermodel import Host, Queue
    from batchkit.logmodel import LogPage


class ObjectStore(Protocol):
    """The part of S3 batchkit uses: the cluster bucket (or the local engine's directory)."""

    def url(self, key: str) -> str:
        """The URL a job sees for `key`, e.g. `s3://bucket/root/batch/job-x-1/`."""
        ...

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...


class Provider(Protocol):
    """One cluster: AWS Batch + CloudWatch Logs + S3, or the embedded local engine."""

    @property
    def cluster_name(self) -> str: ...

    @property
    def kind(self) -> str:
        """`local` or `aws`."""
        ...

    @property
    def objects(self) -> ObjectStore: ...

    @property
    def artifact_root(self) -> str:
        """The key prefix under which job folders live: `<root>/batch/job-<name>-<ms>/`."""
        ...

    def submit(self, request: SubmitRequest) -> Job: ...

    def queue_capacity(self, queue: str | None) -> str | None:
        """What `queue` (None: the default queue) runs on: FARGATE, SPOT (Spot only) or EC2 (see
        batchkit.jobs.multinode); None when this provider cannot tell."""
        ...

    def fair_share(self, queue: str | None) -> bool | None:
        """Whether `queue` (None: the default queue) schedules by fair share, so that its jobs
        need a share identifier; None when this provider cannot tell."""
        ...

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """Jobs by id (parents, `id:i` children, `id#n` nodes), any number, in no promised order.
        Unknown ids are left out."""
        ...

    def list_jobs(self, statuses: Sequence[JobStatus], queue: str | None = None) -> list[Job]:
        """Top-level jobs (singles and parents) in these statuses, of `queue` or (None) of every
        queue of the cluster."""
        ...

    def list_children(self, parent: Job) -> list[Job]:
        """Every child of an array parent or node of an MNP parent, in index order."""
        ...

    def list_child_summaries(self, parent: Job) -> list[Job]:
        """The children as a table needs them (status, times, exit code, reason), as cheaply as
        the provider can list them; fields only DescribeJobs has (log stream) may be missing."""
        ...

    def list_child_summaries_of(self, parents: Sequence[Job]) -> dict[str, list[Job]]:
        """`list_child_summaries` of many parents at once, by parent id (what `stat -e` needs):
        a provider may share calls between parents."""
        ...

    def terminate_job(self, job_id: str, reason: str) -> None:
        """Cancel a job that has not started, or stop a running one; FAILED with `reason`."""
        ...

    def get_log_events(
        self,
        stream: str,
        *,
        group: str | None = None,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        """One page of a log stream, GetLogEvents-style: the forward token repeats when the stream
        is drained. A stream that does not exist yet yields an empty page."""
        ...

    def queues(self, names: Sequence[str] = ()) -> list[Queue]: ...

    def hosts(self) -> list[Host]: ...

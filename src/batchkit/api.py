"""The Python API and the one place that wires collaborators together.

    import batchkit.api as bk
    cluster = bk.connect()                  # the default cluster, or the local engine
    job = cluster.submit(JobSpec(name="hello", command=("echo", "hi")))
    final = cluster.wait(job.job_id)
    for item in cluster.logs(job.job_id):
        ...

`connect` resolves a cluster name: None → the user config's `default_cluster`, else `local`;
`local` → the embedded engine; any other name → the AWS provider (imported only then, so boto3
is never loaded for local work). Everything else is provider-neutral logic from `batchkit.jobs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from batchkit.config import LOCAL_CLUSTER, UserConfig, load_user_config
from batchkit.errors import JobNotFoundError
from batchkit.jobs import query
from batchkit.jobs.logtail import DEFAULT_PERIOD, LogTail, TailItem
from batchkit.jobs.submission import Submitter
from batchkit.jobs.waiting import Waiter
from batchkit.models import Host, Job, JobSpec, JobStatus, Queue
from batchkit.providers.base import Provider


def connect(
    cluster: str | None = None,
    *,
    profile: str | None = None,
    region: str | None = None,
    config: UserConfig | None = None,
) -> Cluster:
    """A `Cluster` for `cluster` (see the module docstring for how the name is resolved)."""
    user = config if config is not None else load_user_config()
    name = user.resolve(cluster)
    provider: Provider
    if name == LOCAL_CLUSTER:
        from batchkit.providers.local.provider import LocalProvider

        provider = LocalProvider()
    else:
        from batchkit.providers.aws import open_provider

        settings = user.cluster(name)
        provider = open_provider(
            settings.stack or name,
            profile=profile or settings.profile,
            region=region or settings.region,
        )
    return Cluster(provider, config=user)


class KillOutcome(StrEnum):
    NOT_FOUND = "not-found"
    ALREADY_FINAL = "already-final"
    CANCELLATION = "cancellation"  # it had not started
    TERMINATION = "termination"  # it was starting or running


@dataclass(frozen=True)
class KillResult:
    job_id: str
    outcome: KillOutcome
    status: JobStatus | None = None


_NOT_STARTED = (JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE)


class Cluster:
    """One cluster, AWS or local, with every job operation batchkit offers."""

    def __init__(
        self,
        provider: Provider,
        *,
        config: UserConfig | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.config = config or UserConfig()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.provider.cluster_name

    def submit(self, spec: JobSpec) -> Job:
        """Validate, stage and submit one job (single, array or multi-node)."""
        return Submitter(self.provider, clock=self._clock).submit(spec)

    def describe(self, job_id: str) -> Job:
        for job in self.provider.describe_jobs([job_id]):
            if job.job_id == job_id:
                return job
        raise JobNotFoundError(job_id)

    def jobs(
        self,
        statuses: Sequence[JobStatus] = (),
        *,
        expand: bool = False,
        queue: str | None = None,
    ) -> list[Job]:
        """The queue's jobs in `statuses` (default: the five active ones), awsbstat-ordered."""
        from batchkit.models import ACTIVE_STATUSES

        return query.list_jobs(
            self.provider, list(statuses) or list(ACTIVE_STATUSES), expand=expand, queue=queue
        )

    def jobs_by_ids(self, job_ids: Sequence[str]) -> query.JobsById:
        """These jobs, each parent followed by its children, in the order given."""
        return query.jobs_by_ids(self.provider, job_ids)

    def children(self, job_id: str) -> list[Job]:
        job = self.describe(job_id)
        return self.provider.list_children(job) if job.is_parent else []

    def kill(
        self, job_ids: Sequence[str], reason: str = "Terminated by the user"
    ) -> list[KillResult]:
        """Cancel or terminate each job, in the order given (any number of ids)."""
        found = {job.job_id: job for job in self.provider.describe_jobs(list(job_ids))}
        results: list[KillResult] = []
        for job_id in job_ids:
            job = found.get(job_id)
            if job is None:
                results.append(KillResult(job_id, KillOutcome.NOT_FOUND))
            elif job.status.is_final:
                results.append(KillResult(job_id, KillOutcome.ALREADY_FINAL, job.status))
            else:
                self.provider.terminate_job(job_id, reason)
                outcome = (
                    KillOutcome.CANCELLATION
                    if job.status in _NOT_STARTED
                    else KillOutcome.TERMINATION
                )
                results.append(KillResult(job_id, outcome, job.status))
        return results

    def logs(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        period: float = DEFAULT_PERIOD,
    ) -> Iterator[TailItem]:
        """The job's output (see `batchkit.jobs.logtail`)."""
        tailer = LogTail(self.provider, sleep=self._sleep, clock=self._monotonic, period=period)
        return tailer.read(job_id, head=head, tail=tail, follow=follow)

    def watch(
        self, job_id: str, *, timeout: float | None = None, interval: float = 1.0
    ) -> Iterator[Job]:
        """The job at each status change, until it ends."""
        return self._waiter(interval).watch(job_id, timeout=timeout)

    def wait(self, job_id: str, *, timeout: float | None = None, interval: float = 1.0) -> Job:
        """Block until the job is SUCCEEDED or FAILED; return it."""
        return self._waiter(interval).wait(job_id, timeout=timeout)

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        return self.provider.queues(names)

    def hosts(self) -> list[Host]:
        return self.provider.hosts()

    def _waiter(self, interval: float) -> Waiter:
        return Waiter(self.provider, sleep=self._sleep, clock=self._monotonic, interval=interval)

"""`batchkit.Job`: a live handle on one submitted job, for scripts and notebooks.

A handle is what `Cluster.submit`, `Cluster.map` and `Cluster.job` return. It is distinct from
`batchkit.models.Job`, the plain snapshot that `describe_jobs` reports: `handle.info` is the latest
snapshot, `handle.status` asks the cluster again. A handle waits (with a progress bar in Jupyter,
a status line in a terminal), reads logs, fetches a function job's return value (re-raising what
it raised), cancels, and lists the children of an array or multi-node job.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from msgspec.structs import replace

from batchkit.errors import BatchkitError, NotFoundError, UsageError
from batchkit.logmodel import LogEvent
from batchkit.models import Job as JobInfo
from batchkit.models import JobKind, JobStatus

if TYPE_CHECKING:
    from batchkit.doctor.findings import Finding, Report
    from batchkit.jobs.kill import KillResult
    from batchkit.jobs.logtail import AttemptChoice, TailItem
    from batchkit.jobs.waiting import StuckWatch
    from batchkit.providers.base import Provider

ProgressCallback = Callable[[JobInfo], None]

WAIT_INTERVAL_S = 0.5
WAIT_MAX_INTERVAL_S = 3.0
"""Notebook users watch the bar: poll more often than the CLI's 10-second ceiling."""

_PARALLEL_READS = 16
_RUNNER_TAIL = 20


class ClusterLike(Protocol):
    """What a handle asks of the cluster that made it. `batchkit.api.Cluster` is the one such
    cluster; it is named here by its shape so that this module sits below `api`, which makes the
    handles (rather than the two modules importing each other)."""

    provider: Provider

    def describe(self, job_id: str) -> JobInfo: ...

    def children(self, job_id: str) -> list[JobInfo]: ...

    def watch(
        self,
        job_id: str,
        *,
        timeout: float | None = ...,
        interval: float = ...,
        max_interval: float | None = ...,
        stuck: StuckWatch | None = ...,
    ) -> Iterator[JobInfo]: ...

    def stuck_watch(
        self, notify: Callable[[Finding], None], *, after: float | None = ...
    ) -> StuckWatch: ...

    def doctor(self, job_id: str | None = ..., *, older_than: float = ...) -> Report: ...

    def logs(
        self,
        job_id: str,
        *,
        head: int | None = ...,
        tail: int | None = ...,
        follow: bool = ...,
        period: float = ...,
        attempt: AttemptChoice = ...,
    ) -> Iterator[TailItem]: ...

    def kill(self, job_ids: Sequence[str], reason: str = ...) -> list[KillResult]: ...


class Job:
    """A submitted job (see the module docstring). Equality and hashing follow the job id."""

    def __init__(self, cluster: ClusterLike, info: JobInfo) -> None:
        self._cluster = cluster
        self._info = info

    # --- identity -------------------------------------------------------------------------------

    @property
    def job_id(self) -> str:
        return self._info.job_id

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def cluster(self) -> ClusterLike:
        """The `batchkit.Cluster` the job runs on."""
        return self._cluster

    @property
    def info(self) -> JobInfo:
        """The latest snapshot (`batchkit.models.Job`); `refresh()` or `status` update it."""
        return self._info

    @property
    def status(self) -> JobStatus:
        """The job's status, asked of the cluster now."""
        return self.refresh().status

    def refresh(self) -> JobInfo:
        self._info = self._cluster.describe(self.job_id)
        return self._info

    def to_dict(self) -> dict[str, Any]:
        return self._info.to_dict()

    # --- waiting --------------------------------------------------------------------------------

    def wait(self, progress: bool | ProgressCallback = True, timeout: float | None = None) -> Job:
        """Block until the job is SUCCEEDED or FAILED and return this handle (it does not raise
        when the job failed: look at `status`, or call `result()`). `progress=True` shows a bar
        (HTML in Jupyter, a line on stderr elsewhere); a callable receives each snapshot.
        Raises `WaitTimeoutError` after `timeout` seconds. A job still RUNNABLE after a while
        (10 minutes on AWS, 1 on the local engine) gets the doctor's leading finding shown once
        beside the progress."""
        observer = _observer(progress, self)
        notice = getattr(observer, "notice", None)
        stuck = (
            self._cluster.stuck_watch(lambda finding: notice(self.job_id, finding))
            if callable(notice)
            else None
        )
        final = self._info
        try:
            for final in self._cluster.watch(
                self.job_id,
                timeout=timeout,
                interval=WAIT_INTERVAL_S,
                max_interval=WAIT_MAX_INTERVAL_S,
                stuck=stuck,
            ):
                self._info = final
                observer(final)
        finally:
            close = getattr(observer, "close", None)
            if callable(close):
                close(final)
        return self

    def doctor(self) -> Report:
        """Why this job waits or failed, and what to change (`batchkit doctor JOB_ID`): the
        findings, most likely cause first (`.leading`, `.has_problem`); a table in Jupyter."""
        return self._cluster.doctor(self.job_id)

    # --- output ---------------------------------------------------------------------------------

    @overload
    def logs(
        self, follow: Literal[False] = False, *, attempt: int | Literal["all"] | None = None
    ) -> Logs: ...

    @overload
    def logs(self, follow: Literal[True]) -> Iterator[LogEvent]: ...

    def logs(
        self, follow: bool = False, *, attempt: int | Literal["all"] | None = None
    ) -> Logs | Iterator[LogEvent]:
        """The job's output as `LogEvent`s (`.message`, `.timestamp`, `.job_id`): everything so
        far, or — with `follow=True` — an iterator that yields lines as they come (across
        retries) and ends when the job has ended. An array or multi-node job gives its children's
        lines, each with the child's id in `job_id`. A retried job gives its latest attempt's
        lines, or those of `attempt` N (from 1), or of "all" its attempts in order."""
        events = self._events(follow, attempt)
        return events if follow else Logs(events)

    def _events(
        self, follow: bool, attempt: int | Literal["all"] | None = None
    ) -> Iterator[LogEvent]:
        from batchkit.jobs.logtail import LogLine

        for item in self._cluster.logs(self.job_id, follow=follow, period=1.0, attempt=attempt):
            if isinstance(item, LogLine):
                event = item.event
                if event.job_id is None:
                    event = replace(event, job_id=item.source or self.job_id)
                yield event

    # --- results --------------------------------------------------------------------------------

    def result(
        self, timeout: float | None = None, progress: bool | ProgressCallback = False
    ) -> Any:
        """The return value of a function job, waiting for it first. An exception raised by the
        function is raised here with its type and message, its remote traceback attached as the
        cause. For an array job (`map`, `array=`) this is `results()`."""
        self.wait(progress=progress, timeout=timeout)
        return self._values() if self._info.kind is JobKind.ARRAY_PARENT else self._value()

    def results(
        self, timeout: float | None = None, progress: bool | ProgressCallback = False
    ) -> list[Any]:
        """Every child's return value, in index order (one value for a single job). Waits for
        the whole job; raises the first child's exception (in index order) if any raised."""
        self.wait(progress=progress, timeout=timeout)
        return self._values() if self._info.kind is JobKind.ARRAY_PARENT else [self._value()]

    def _value(self) -> Any:
        """The value of this finished job that is no array parent."""
        index = self._info.id.array_index or 0
        return self._read_results([index], [self._info])[0]

    def _values(self) -> list[Any]:
        """The values of this finished array parent's children (`_info` is fresh from `wait`,
        so its children are listed without describing the parent again)."""
        children = self._cluster.provider.list_children(self._info)
        return self._read_results(list(range(self._info.array_size or 0)), children)

    def _read_results(self, indexes: Sequence[int], jobs: Sequence[JobInfo]) -> list[Any]:
        from batchkit.functions.payload import PAYLOAD_NAME, result_key
        from batchkit.functions.results import FunctionJobError, decode, unwrap

        folder = self._folder_key()
        objects = self._cluster.provider.objects
        by_index = {job.id.array_index or 0: job for job in jobs}

        def fetch(index: int) -> bytes | None:
            try:
                return objects.get(result_key(folder, index))
            except NotFoundError:
                return None

        if self._cluster.provider.kind == "local" or len(indexes) == 1:
            bodies = [fetch(i) for i in indexes]
        else:
            with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
                bodies = list(pool.map(fetch, indexes))
        values: list[Any] = []
        for index, body in zip(indexes, bodies, strict=True):
            job = by_index.get(index, self._info)
            if body is None:
                if not objects.exists(folder + PAYLOAD_NAME):
                    raise UsageError(
                        f"job {self.job_id} is not a function job: it has no return value",
                        hint="read its output with job.logs()",
                    )
                reason = job.status_reason or job.reason or "no reason given"
                said = "".join(f"; {line}" for line in self._runner_lines(job.job_id))
                raise FunctionJobError(
                    f"job {job.job_id} ended {job.status.value} without storing a result "
                    f"({reason}){said}",
                    job_id=job.job_id,
                    hint=f"read its output with job.logs() or `batchkit out {job.job_id}`",
                )
            values.append(unwrap(decode(body), job_id=job.job_id))
        return values

    def _runner_lines(self, job_id: str) -> list[str]:
        """What the runner said at the end of the job's output (`batchkit: ...` lines), to explain
        a missing result without a trip to the logs."""
        from batchkit.jobs.logtail import LogLine

        try:
            items = list(self._cluster.logs(job_id, tail=_RUNNER_TAIL))
        except BatchkitError:
            return []
        return [
            item.event.message
            for item in items
            if isinstance(item, LogLine) and item.event.message.startswith("batchkit: ")
        ]

    def _folder_key(self) -> str:
        url = self._info.s3_folder_url
        if not url:
            raise UsageError(
                f"job {self.job_id} has no job folder", hint="it was not submitted by batchkit"
            )
        prefix = self._cluster.provider.objects.url("")
        if not url.startswith(prefix):
            raise UsageError(
                f"job {self.job_id}'s folder {url} is not in this cluster's bucket ({prefix})",
                hint="connect to the cluster that ran the job",
            )
        key = url[len(prefix) :]
        return key if key.endswith("/") else key + "/"

    # --- control --------------------------------------------------------------------------------

    def cancel(self, reason: str = "Cancelled from Python") -> KillResult:
        """Cancel the job if it has not started, terminate it if it runs (FAILED with `reason`)."""
        (outcome,) = self._cluster.kill([self.job_id], reason)
        self.refresh()
        return outcome

    def children(self) -> JobList[Job]:
        """The children of an array job (`id:i`) or the nodes of a multi-node job (`id#n`)."""
        return JobList(Job(self._cluster, child) for child in self._cluster.children(self.job_id))

    # --- display --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<batchkit.Job {self.job_id} ({self.name}) {self._info.status.value}>"

    def _repr_html_(self) -> str:
        from batchkit.jobs.display import job_html

        return job_html(self._info)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.job_id == self.job_id

    def __hash__(self) -> int:
        return hash(self.job_id)


_T = TypeVar("_T", Job, JobInfo)


class JobList(list[_T]):
    """A list of jobs (handles or snapshots) that shows as a status table in Jupyter."""

    def _repr_html_(self) -> str:
        from batchkit.jobs.display import jobs_table_html

        return jobs_table_html([_snapshot(job) for job in self])

    def __repr__(self) -> str:
        from batchkit.jobs.display import jobs_table_text

        return jobs_table_text([_snapshot(job) for job in self])


class Logs(list[LogEvent]):
    """A job's output: a list of `LogEvent`s, shown as text in Jupyter; `.text` joins them."""

    @property
    def text(self) -> str:
        return "".join(event.message + "\n" for event in self)

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


def _snapshot(job: Job | JobInfo) -> JobInfo:
    return job.info if isinstance(job, Job) else job


def _observer(progress: bool | ProgressCallback, job: Job) -> ProgressCallback:
    if progress is True:
        from batchkit.jobs.progress import auto_progress

        return auto_progress()
    if progress is False or progress is None:
        return lambda _snapshot: None
    return progress

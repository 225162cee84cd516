"""The Python API and the one place that wires collaborators together.

    import batchkit
    cluster = batchkit.connect()            # the default cluster, or the local engine
    job = cluster.submit("echo hello")      # a script; or ["echo", "hi"]; or a function and args
    job.wait()                              # a progress bar in Jupyter, a status line elsewhere
    print(job.logs().text)
    cluster.map(square, range(10)).results()

`submit` and `map` return a `batchkit.Job` handle (`batchkit.handles`); a `JobSpec` (what the CLI
builds) returns the plain `batchkit.models.Job` snapshot, which `cluster.job(...)` turns into a
handle.

`connect` resolves a cluster name: None → the user config's `default_cluster`, else `local`;
`local` → the embedded engine; any other name → the AWS provider (imported only then, so boto3
is never loaded for local work). Everything else is provider-neutral logic from `batchkit.jobs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack, overload

from batchkit.config import LOCAL_CLUSTER, UserConfig, load_user_config
from batchkit.models import Job, JobSpec, JobStatus
from batchkit.providers.base import Provider

# Querying, killing and waiting are imported by the methods that use them: `sub` needs none of
# them (start-up).
if TYPE_CHECKING:
    from batchkit import handles
    from batchkit.clustermodel import Host, Queue
    from batchkit.doctor.findings import Finding, Report
    from batchkit.doctor.runner import Doctor
    from batchkit.jobs import query
    from batchkit.jobs.kill import KillResult
    from batchkit.jobs.logtail import AttemptChoice, BatchItem, LogTail, TailItem
    from batchkit.jobs.waiting import StuckWatch, Waiter
    from batchkit.jobspecs import DependencyLike, MapOptions


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

        # Discovery reads the user config's settings for `name` itself (stack, profile, region).
        provider = open_provider(name, profile=profile, region=region)
    return Cluster(provider, config=user)


AWS_MAX_POLL_S = 10.0
AWS_STUCK_AFTER_S = 600.0
LOCAL_STUCK_AFTER_S = 60.0
LOCAL_MAX_POLL_S = 2.0


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

    @overload
    def submit(self, target: JobSpec, /) -> Job: ...

    @overload
    def submit(
        self,
        target: str | bytes | Sequence[str] | Callable[..., Any],
        /,
        *args: Any,
        vcpus: float = 1,
        memory: int | None = None,
        gpus: int = 0,
        image: str | None = None,
        array: int | None = None,
        nodes: int = 1,
        depends_on: DependencyLike | Sequence[DependencyLike] | None = None,
        env: Mapping[str, str] | None = None,
        retries: int = 1,
        timeout: int | None = None,
        name: str | None = None,
        queue: str | None = None,
        executor: str | None = None,
        spot_retry: bool = False,
        share: str | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> handles.Job: ...

    def submit(self, target: Any, /, *args: Any, **kwargs: Any) -> Job | handles.Job:
        """Validate, stage and submit one job (single, array or multi-node).

        `target` is a shell script (`str`, run like a script piped to `batchkit sub`, `args` are
        its arguments), an argv list or tuple (run as typed), or a callable (a function job:
        `target(*args, **kwargs)` runs in the job and `result()` returns its value). The keyword
        options are the `sub` flags (memory in MiB, timeout in seconds, retries = attempts);
        every other keyword goes to the function. Returns a `batchkit.Job` handle, except for a
        `JobSpec` (the CLI's path), which returns the `batchkit.models.Job` snapshot."""
        if isinstance(target, JobSpec):
            if args or kwargs:
                from batchkit.errors import UsageError

                raise UsageError(
                    "a JobSpec carries its own options",
                    hint="set them on the JobSpec: msgspec.structs.replace(spec, name=...)",
                )
            from batchkit.jobs.submission import Submitter

            return Submitter(self.provider, clock=self._clock).submit(target)
        from batchkit.jobspecs import plan_job, split_options

        options, rest = split_options(kwargs)
        planned = plan_job(target, args, rest, options, python=self._python(options))
        return self._submit_planned(planned)

    def map(
        self,
        function: Callable[[Any], Any],
        items: Iterable[Any],
        **options: Unpack[MapOptions],
    ) -> handles.Job:
        """`function(item)` for every item, as ONE array job (child `i` gets `items[i]`);
        `.results()` of the returned handle gives the values in order. At most 10,000 items.
        The options are `submit`'s, without `array` and `nodes`."""
        from batchkit.jobspecs import SubmitOptions, plan_map

        chosen = SubmitOptions(**options)
        planned = plan_map(function, items, chosen, python=self._python(chosen))
        return self._submit_planned(planned)

    def job(self, job: str | Job) -> handles.Job:
        """A `batchkit.Job` handle on an existing job (by id, or from a snapshot)."""
        from batchkit.handles import Job as Handle

        return Handle(self, self.describe(job) if isinstance(job, str) else job)

    def _submit_planned(self, spec: JobSpec) -> handles.Job:
        from batchkit.jobs.submission import Submitter

        return self.job(Submitter(self.provider, clock=self._clock).submit(spec))

    def _python(self, options: Any) -> tuple[str, ...]:
        from batchkit.jobspecs import job_python

        return job_python(
            local=self.provider.kind == "local", image=options.image, executor=options.executor
        )

    def describe(self, job_id: str) -> Job:
        from batchkit.jobs import query

        return query.describe_job(self.provider, job_id)

    def jobs(
        self,
        statuses: Sequence[JobStatus] = (),
        *,
        status: str | JobStatus | Sequence[str | JobStatus] | None = None,
        expand: bool = False,
        queue: str | None = None,
        details: bool = False,
    ) -> handles.JobList[Job]:
        """The jobs in `statuses` (default: the five active ones) of every queue of the cluster,
        or of `queue`, awsbstat-ordered.

        `status=` is the Python spelling: a status, a list of them, or a comma string as for
        `stat -s` (`"RUNNING,FAILED"`, `"ALL"`). The list shows as a status table in Jupyter."""
        from batchkit.handles import JobList
        from batchkit.jobs import query
        from batchkit.models import ACTIVE_STATUSES

        wanted = list(statuses)
        if status is not None:
            from batchkit.jobs.validation import statuses_of

            wanted += statuses_of(status)
        return JobList(
            query.list_jobs(
                self.provider,
                wanted or list(ACTIVE_STATUSES),
                expand=expand,
                queue=queue,
                details=details,
            )
        )

    def jobs_by_ids(self, job_ids: Sequence[str], *, details: bool = False) -> query.JobsById:
        """These jobs, each parent followed by its children, in the order given (children with
        every field only when `details` asks for it)."""
        from batchkit.jobs import query

        return query.jobs_by_ids(self.provider, job_ids, details=details)

    def children(self, job_id: str) -> list[Job]:
        job = self.describe(job_id)
        return self.provider.list_children(job) if job.is_parent else []

    def kill(
        self, job_ids: Sequence[str], reason: str = "Terminated by the user"
    ) -> list[KillResult]:
        """Cancel or terminate each job, in the order given (any number of ids)."""
        from batchkit.jobs.kill import kill_jobs

        return kill_jobs(self.provider, job_ids, reason)

    def logs(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        period: float | None = None,
        attempt: AttemptChoice = None,
        stuck: StuckWatch | None = None,
    ) -> Iterator[TailItem]:
        """The job's output (see `batchkit.jobs.logtail`): the latest attempt of a retried job,
        or `attempt` N (from 1) or "all". `stuck` (see `stuck_watch`) sees the job while
        following; `period` is the seconds between polls while following (None: the tail's
        default)."""
        tailer = self._tail(period)
        return tailer.read(
            job_id, head=head, tail=tail, follow=follow, attempt=attempt, stuck=stuck
        )

    def _tail(self, period: float | None) -> LogTail:
        from batchkit.jobs.logtail import LogTail  # what reads logs; `sub` does not (start-up)

        return LogTail(self.provider, sleep=self._sleep, clock=self._monotonic, period=period)

    def log_batches(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        period: float | None = None,
        attempt: AttemptChoice = None,
    ) -> Iterator[BatchItem]:
        """As `logs`, with the lines of each page together in one `LogBatch` (yielded as soon as
        the page is read): for printing a large stream a page at a time."""
        tailer = self._tail(period)
        return tailer.read_batches(job_id, head=head, tail=tail, follow=follow, attempt=attempt)

    def watch(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        interval: float = 1.0,
        max_interval: float | None = None,
        stuck: StuckWatch | None = None,
    ) -> Iterator[Job]:
        """The job at each status change, until it ends (`stuck`: see `stuck_watch`)."""
        return self._waiter(interval, max_interval).watch(job_id, timeout=timeout, stuck=stuck)

    def wait(self, job_id: str, *, timeout: float | None = None, interval: float = 1.0) -> Job:
        """Block until the job is SUCCEEDED or FAILED; return it."""
        return self._waiter(interval).wait(job_id, timeout=timeout)

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        return self.provider.queues(names)

    def hosts(self) -> list[Host]:
        return self.provider.hosts()

    def doctor(self, job_id: str | None = None, *, older_than: float = 600.0) -> Report:
        """Why a job waits or failed, and what to change (`batchkit doctor`): the findings about
        `job_id`, or without one about the whole cluster (every queue and compute environment,
        and every job RUNNABLE or STARTING for more than `older_than` seconds)."""
        doctor = self._doctor(required=True)
        assert doctor is not None
        return doctor.job(job_id) if job_id else doctor.cluster(older_than)

    def why(self, job: Job) -> Finding | None:
        """The doctor's leading finding about a RUNNABLE, PENDING or FAILED job, from the few
        calls `stat` can afford (no log, no network checks); None when nothing stands out."""
        from batchkit.errors import BatchkitError

        doctor = self._doctor(required=False)
        if doctor is None:
            return None
        try:
            return doctor.why(job)
        except BatchkitError:  # `stat` must not fail because an explanation could not be had
            return None

    def stuck_watch(
        self, notify: Callable[[Finding], None], *, after: float | None = None
    ) -> StuckWatch:
        """A watch for `watch`/`logs`: once a job has stayed RUNNABLE for `after` seconds
        (default 10 minutes on AWS, 1 minute on the local engine), ask the doctor once and hand
        its leading finding to `notify`. A doctor that fails says nothing (waiting goes on)."""
        if after is None:
            after = LOCAL_STUCK_AFTER_S if self.provider.kind == "local" else AWS_STUCK_AFTER_S

        def on_stuck(job: Job) -> None:
            from batchkit.errors import BatchkitError

            try:
                finding = self.doctor(job.job_id).leading
            except BatchkitError:
                return
            if finding is not None:
                notify(finding)

        from batchkit.jobs.waiting import StuckWatch

        return StuckWatch(after, on_stuck, clock=self._monotonic)

    def _doctor(self, *, required: bool) -> Doctor | None:
        """The doctor for this cluster's provider: the local engine's facts, or those the AWS
        provider offers (`doctor_facts`); None (or an error when `required`) for a provider
        that offers none."""
        from batchkit.doctor.runner import Doctor
        from batchkit.providers.local.provider import LocalProvider

        facts: Any
        if isinstance(self.provider, LocalProvider):
            from batchkit.providers.local.facts import LocalDoctorFacts

            facts = LocalDoctorFacts(self.provider)
        elif callable(offer := getattr(self.provider, "doctor_facts", None)):
            facts = offer()
        elif required:
            from batchkit.errors import UsageError

            raise UsageError(
                f"cluster {self.name!r} ({self.provider.kind}) cannot be diagnosed",
                hint="batchkit doctor works on AWS clusters and the local engine",
            )
        else:
            return None
        return Doctor(self.provider, facts, clock=self._clock)

    def _waiter(self, interval: float, max_interval: float | None = None) -> Waiter:
        """Polls that grow from `interval` up to `max_interval`: by default 10 s on AWS (Batch's
        API budget), 2 s on the local engine, where a poll is a file read and `sub --wait`
        should end soon after the job does."""
        if max_interval is None:
            max_interval = LOCAL_MAX_POLL_S if self.provider.kind == "local" else AWS_MAX_POLL_S
        from batchkit.jobs.waiting import Waiter

        return Waiter(
            self.provider,
            sleep=self._sleep,
            clock=self._monotonic,
            interval=interval,
            max_interval=max_interval,
        )

    def __repr__(self) -> str:
        return f"<batchkit.Cluster {self.name} ({self.provider.kind})>"

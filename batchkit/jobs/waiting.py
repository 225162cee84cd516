"""Waiting for a job to end, polling with an injected clock and sleep.

`watch` yields the job each time its status (or, for a parent, its children's status summary)
changes, so a caller can show progress; `wait` returns the final job. The poll interval grows
gently from `interval` to `max_interval` so a long wait does not hammer DescribeJobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from batchkit.errors import BatchkitError, ExitCode
from batchkit.jobs.query import describe_job
from batchkit.models import Job, JobStatus
from batchkit.providers.base import Provider


class WaitTimeoutError(BatchkitError):
    exit_code = ExitCode.CONFLICT

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(
            f"job {job.job_id} is still {job.status.value} after {timeout:g} seconds",
            hint=f"wait longer, or see it with `batchkit stat {job.job_id}`",
        )
        self.job = job


class StuckWatch:
    """Calls `on_stuck(job)` once, when a job has been seen RUNNABLE for `after` seconds in a
    row (by the injected clock). Waiting and following hand it every job they describe; what
    `on_stuck` does (ask the doctor, tell the user) is the caller's business."""

    def __init__(
        self,
        after: float,
        on_stuck: Callable[[Job], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.after = after
        self._on_stuck = on_stuck
        self._clock = clock
        self._since: float | None = None
        self.fired = False

    def see(self, job: Job) -> None:
        if job.status is not JobStatus.RUNNABLE:
            self._since = None
            return
        now = self._clock()
        if self._since is None:
            self._since = now
        if not self.fired and now - self._since >= self.after:
            self.fired = True
            self._on_stuck(job)


class Waiter:
    def __init__(
        self,
        provider: Provider,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
        max_interval: float = 10.0,
    ) -> None:
        self._provider = provider
        self._sleep = sleep
        self._clock = clock
        self._interval = interval
        self._max_interval = max_interval

    def watch(
        self, job_id: str, *, timeout: float | None = None, stuck: StuckWatch | None = None
    ) -> Iterator[Job]:
        """Yield the job now and at every change until it is SUCCEEDED or FAILED; `stuck` sees
        every poll."""
        deadline = None if timeout is None else self._clock() + timeout
        interval = self._interval
        last: tuple[object, ...] | None = None
        while True:
            job = describe_job(self._provider, job_id)
            if stuck is not None:
                stuck.see(job)
            state = (job.status, tuple(sorted(job.status_summary.items())))
            if state != last:
                last = state
                yield job
            if job.status.is_final:
                return
            if deadline is not None and self._clock() >= deadline:
                raise WaitTimeoutError(job, timeout or 0)
            self._sleep(interval)
            interval = min(interval * 1.5, self._max_interval)

    def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        final: Job | None = None
        for final in self.watch(job_id, timeout=timeout):  # noqa: B007 - the last one is final
            pass
        assert final is not None  # watch always yields at least once
        return final

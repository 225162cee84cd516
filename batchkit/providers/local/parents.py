"""Array parents, derived from their children as Batch derives them, in constant time per change.

An array parent never runs. Its status is SUBMITTED, then PENDING once a child moves on, SUCCEEDED
when every child succeeded, FAILED once all children ended and any failed; its summary counts the
children by status, it started when the first child started and stopped when the last one did.
`ChildCounts` keeps all of that up to date as each child changes (`JobTable.set` reports every
change), so deriving a parent costs the same for 10 children as for 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping

from batchkit.models import JobStatus
from batchkit.providers.local.rows import JobRow


class ChildCounts:
    """A parent's children: how many in each status, the earliest start and the latest stop."""

    __slots__ = ("by_status", "earliest_start", "latest_stop", "total")

    def __init__(self) -> None:
        self.by_status: dict[JobStatus, int] = dict.fromkeys(JobStatus, 0)
        self.total = 0
        self.earliest_start: int | None = None
        self.latest_stop: int | None = None

    @property
    def done(self) -> int:
        return self.by_status[JobStatus.SUCCEEDED] + self.by_status[JobStatus.FAILED]

    @property
    def unfinished(self) -> int:
        return self.total - self.done

    def add(self, child: JobRow) -> None:
        self.total += 1
        self.by_status[child.status] += 1
        self._times(child)

    def moved(self, child: JobRow, before: JobStatus) -> None:
        """`child` went from `before` to its current status (and may have started or stopped)."""
        self.by_status[before] -= 1
        self.by_status[child.status] += 1
        self._times(child)

    def _times(self, child: JobRow) -> None:
        start = child.started_at
        if start is not None and (self.earliest_start is None or start < self.earliest_start):
            self.earliest_start = start
        stop = child.stopped_at
        if stop is None or not child.status.is_final:
            return
        if self.latest_stop is None or stop > self.latest_stop:
            self.latest_stop = stop

    def summary(self) -> dict[str, int]:
        return {status.value: self.by_status[status] for status in JobStatus}


def derive(
    parent: JobRow, counts: ChildCounts | None, terminated: Mapping[str, str], now: int
) -> bool:
    """Set an array parent's status, summary and times from its children's `counts`; True when
    every child is final (jobs that depend on the array may move on)."""
    counts = counts or ChildCounts()
    summary = counts.summary()
    parent.status_summary = summary
    finished = False
    total = counts.total
    if total and counts.done == total:
        finished = True
        parent.stopped_at = counts.latest_stop if counts.latest_stop is not None else now
        failed = summary[JobStatus.FAILED.value]
        if failed:
            parent.status = JobStatus.FAILED
            parent.status_reason = terminated.get(parent.id) or (
                f"{failed} of {total} child jobs failed"
            )
        else:
            parent.status = JobStatus.SUCCEEDED
            parent.status_reason = None
    elif total > summary[JobStatus.SUBMITTED.value]:
        parent.status = JobStatus.PENDING
    parent.started_at = counts.earliest_start
    return finished

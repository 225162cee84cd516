"""The scheduler's view of the jobs in memory: every row that is not final, indexed the ways a pass
needs them, and the changes of the pass waiting to be written.

Every status change goes through `JobTable.set`, which marks the row for the next write and keeps
each parent's counts (`parents.ChildCounts`) in step, so deriving an array parent never looks at
all its children again.
"""

from __future__ import annotations

from batchkit.models import JobStatus
from batchkit.providers.local.parents import ChildCounts
from batchkit.providers.local.rows import AttemptRow, JobRow, Spec
from batchkit.providers.local.store import Store

WAITING = (JobStatus.SUBMITTED, JobStatus.PENDING)


class JobTable:
    """The rows a scheduler works on, and what a pass changed (`dirty`, `dirty_attempts`,
    `dirty_parents`) until the scheduler writes it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.specs: dict[str, Spec] = {}
        self.live: dict[str, JobRow] = {}
        """Every row that is not final, and parents until all their children are final."""
        self.children: dict[str, list[JobRow]] = {}
        self.counts: dict[str, ChildCounts] = {}
        """Per parent: its children by status, earliest start, latest stop."""
        self.final: dict[str, JobStatus] = {}
        self.waiting: dict[str, JobRow] = {}
        self.runnable: dict[str, JobRow] = {}
        self.dirty: dict[str, JobRow] = {}
        self.dirty_attempts: list[AttemptRow] = []
        self.dirty_parents: set[str] = set()
        self.changed = True
        """Whether waiting or runnable jobs may move on (a pass resolves and places only then)."""
        self.shared = False
        """Whether any job taken in names a fair share (placement orders by share only then)."""

    def add(self, row: JobRow) -> None:
        """Take in a row read from the store (on start, or new since the last pass)."""
        if row.spec is not None:
            self.specs[row.id] = row.spec
            self.shared = self.shared or row.spec.share is not None
        if row.status.is_final and row.spec is not None:
            self.final[row.id] = row.status
            return
        if row.status.is_final:
            self.final[row.id] = row.status
            if row.parent_id in self.live:
                self._add_child(row.parent_id, row)
            return
        self.live[row.id] = row
        if row.parent_id is not None:
            self._add_child(row.parent_id, row)
        if self.is_unit(row):
            if row.status in WAITING:
                self.waiting[row.id] = row
            elif row.status is JobStatus.RUNNABLE:
                self.runnable[row.id] = row

    def _add_child(self, parent_id: str, row: JobRow) -> None:
        self.children.setdefault(parent_id, []).append(row)
        counts = self.counts.get(parent_id)
        if counts is None:
            counts = self.counts[parent_id] = ChildCounts()
        counts.add(row)

    def spec_of(self, row: JobRow) -> Spec:
        if row.spec is not None:
            return row.spec
        assert row.parent_id is not None
        return self.specs[row.parent_id]

    def is_unit(self, row: JobRow) -> bool:
        """Whether `row` runs as one unit: a single job, an array child or a multi-node job."""
        spec = self.spec_of(row)
        if row.parent_id is None:
            return spec.array_size is None
        return spec.nodes <= 1

    def is_multinode(self, unit: JobRow) -> bool:
        return unit.parent_id is None and self.spec_of(unit).nodes > 1

    def rows_of_unit(self, unit: JobRow) -> list[JobRow]:
        """The rows that run for `unit`: its nodes for a multi-node job, else itself."""
        if self.is_multinode(unit):
            return list(self.children.get(unit.id, []))
        return [unit]

    def status_of(self, job_id: str) -> JobStatus | None:
        """The status of any job (None: no such job), from memory or else the store."""
        row = self.live.get(job_id)
        if row is not None:
            return row.status
        status = self.final.get(job_id)
        if status is None:
            found = self.store.rows([job_id])
            if not found:
                return None
            status = found[0].status
            if status.is_final:
                self.final[job_id] = status
        return status

    def mark(self, row: JobRow) -> None:
        """Write `row` with the next flush."""
        self.dirty[row.id] = row
        if row.parent_id is not None:
            self.dirty_parents.add(row.parent_id)

    def set(self, row: JobRow, status: JobStatus, reason: str | None, now: int) -> None:
        """Move `row` to `status` (a final status stops it at `now`)."""
        before = row.status
        row.status = status
        row.status_reason = reason
        if status.is_final:
            row.stopped_at = now
        if row.parent_id is not None:
            counts = self.counts.get(row.parent_id)
            if counts is not None:
                counts.moved(row, before)
        self.mark(row)

    def set_unit(self, unit: JobRow, status: JobStatus, reason: str | None, now: int) -> None:
        """Move a unit, and for a multi-node job the nodes that are not final (all of them back
        to RUNNABLE)."""
        self.set(unit, status, reason, now)
        if self.is_multinode(unit):
            for node in self.children.get(unit.id, []):
                if not node.status.is_final or status is JobStatus.RUNNABLE:
                    self.set(node, status, reason, now)

    def finish_unit(
        self, unit: JobRow, status: JobStatus, reason: str | None, exit_code: int | None, now: int
    ) -> None:
        unit.exit_code = exit_code
        self.set_unit(unit, status, reason, now)
        self.changed = True

    def take_dirty(self) -> tuple[list[JobRow], list[AttemptRow]]:
        """The rows and attempts changed since the last call (and forget them)."""
        rows = list(self.dirty.values())
        attempts = self.dirty_attempts
        self.dirty.clear()
        self.dirty_attempts = []
        return rows, attempts

    def settle(self, rows: list[JobRow]) -> None:
        """Forget the rows just written that are final (a parent once all its children are)."""
        for row in rows:
            if not row.status.is_final or row.id not in self.live:
                continue
            counts = self.counts.get(row.id)
            if counts is not None and counts.unfinished:
                continue
            del self.live[row.id]
            self.final[row.id] = row.status
            self.children.pop(row.id, None)
            self.counts.pop(row.id, None)
            self.waiting.pop(row.id, None)
            self.runnable.pop(row.id, None)

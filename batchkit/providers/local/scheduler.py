"""The local scheduler: the Batch state machine over the jobs in the store.

One pass, `tick()`, does everything that is due: it reads new jobs and termination requests, polls
the running attempts (exits, timeouts), moves waiting jobs on when their dependencies allow, places
runnable jobs on the free vCPUs, memory and GPUs, derives array parents from their children, and
writes every change of the pass in one transaction (plus one before processes start, so a crash
never leaves a process the store does not know about for longer than a pass).

The parts: `table` (the rows in memory and what a pass changed), `placement` (capacity),
`attempts` (start, poll and end an attempt; recovery after a crash), `parents` (array parents,
derived in constant time per child change) and `executors` (which executor runs a job).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from batchkit.models import DependencyType, JobStatus
from batchkit.providers.local.attempts import (
    ESSENTIAL_EXITED,
    NODE_STOPPED,
    TIMEOUT_REASON,
    AttemptContext,
    Attempts,
)
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.executors import (
    Executors,
    ExecutorSelector,
    default_selector,
    process_only_selector,
)
from batchkit.providers.local.logs import LogStore
from batchkit.providers.local.objects import LocalObjectStore
from batchkit.providers.local.parents import derive
from batchkit.providers.local.placement import Ledger, place
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.rows import JobRow
from batchkit.providers.local.store import Store
from batchkit.providers.local.table import JobTable

__all__ = [
    "DEPENDENCY_FAILED",
    "ESSENTIAL_EXITED",
    "NODE_STOPPED",
    "TIMEOUT_REASON",
    "ExecutorSelector",
    "Scheduler",
    "default_selector",
    "process_only_selector",
]

log = logging.getLogger("batchkit.local.scheduler")

DEPENDENCY_FAILED = "Dependent Job failed"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Scheduler:
    """Schedules the jobs of one home; only the worker holding the home's lock runs one."""

    def __init__(
        self,
        home: Path,
        *,
        store: Store | None = None,
        capacity: Capacity | None = None,
        clock: Callable[[], int] = _now_ms,
        selector: ExecutorSelector | None = None,
        worker_id: str | None = None,
        host_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.store = store or Store(home / "engine.db")
        self.capacity = capacity or Capacity.of_this_machine()
        self._clock = clock
        self.wake = threading.Event()
        """Set when a process attempt's output ends (it has most likely exited)."""
        process = ProcessExecutor(clock=clock, on_output_end=self.wake.set)
        self.worker_id = worker_id or f"pid-{os.getpid()}"
        self.logs = LogStore(home / "logs", clock=clock)
        self.objects = LocalObjectStore(home / "s3")
        self.table = JobTable(self.store)
        self.ledger = Ledger(self.capacity)
        self.attempts = Attempts(
            self.table,
            self.ledger,
            Executors(selector or default_selector(home), process),
            AttemptContext(
                home=home,
                logs=self.logs,
                objects=self.objects,
                host_env=dict(os.environ if host_environment is None else host_environment),
                worker_id=self.worker_id,
            ),
        )
        self._terminated: dict[str, str] = {}
        self._seq = 0
        self._request_seq = 0
        self._requests_done = 0
        self._version: int | None = None
        self.progressed = False
        self._load()

    # --- public ---------------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """How many attempts are running."""
        return len(self.attempts.active)

    @property
    def busy(self) -> bool:
        """Whether any job is still not final."""
        return bool(self.table.live) or bool(self.attempts.active)

    def recover(self, reason: str) -> None:
        """Settle attempts a dead worker left STARTING or RUNNING: kill their leftover processes
        (guarded against pid reuse by the executor) and fail or retry them with `reason`."""
        now = self._clock()
        self.attempts.recover(reason, now)
        self._derive_parents(now)
        self._flush()

    def tick(self) -> bool:
        """One scheduling pass; True while any job is not final. Afterwards `progressed` says
        whether the pass changed anything."""
        self.progressed = False
        self.wake.clear()
        now = self._clock()
        table = self.table
        self._ingest(now)
        self.attempts.poll(now)
        placed: list[JobRow] = []
        if table.changed:
            table.changed = False
            self._resolve(now)
            placed = place(table, self.ledger, now)
        self._derive_parents(now)
        self._flush()
        if placed:
            for unit in placed:
                self.attempts.start(unit, now)
            self._derive_parents(now)
            self._flush()
        return self.busy

    def pause(self, seconds: float) -> None:
        """Wait up to `seconds` for the next pass, returning early when an attempt ends."""
        self.wake.wait(seconds)

    def shutdown(self, reason: str) -> None:
        """Stop every running attempt (the worker is going away) and fail or retry it."""
        now = self._clock()
        self.attempts.end_all(reason, now)
        self._derive_parents(now)
        self._flush()

    # --- loading and ingesting ------------------------------------------------------------------

    def _load(self) -> None:
        with self.store.read():
            rows = self.store.active_rows()
            self._seq = self.store.max_seq()
        for row in rows:
            self.table.add(row)
        self._request_seq = 0
        self._version = None  # the first pass reads the termination requests still pending

    def _ingest(self, now: int) -> None:
        version = self.store.data_version()
        if version == self._version:
            return
        self._version = version
        with self.store.read():
            requests = self.store.requests_after(self._request_seq)
            rows = self.store.rows_after(self._seq)
        for row in rows:
            self._seq = max(self._seq, row.seq)
            self.table.add(row)
            self.table.changed = True
        for request in requests:
            self._request_seq = request.seq
            self._requests_done = request.seq
            self._terminate(request.job_id, request.reason, now)

    # --- state machine --------------------------------------------------------------------------

    def _dependencies(self, unit: JobRow) -> list[str | None]:
        """The job ids `unit` waits for (None: the dependency can never be met)."""
        spec = self.table.spec_of(unit)
        needed: list[str | None] = []
        for dep in spec.depends_on:
            if dep.type is DependencyType.SEQUENTIAL:
                if unit.parent_id is not None and unit.idx:
                    needed.append(f"{unit.parent_id}:{unit.idx - 1}")
            elif dep.type is DependencyType.N_TO_N:
                if dep.job_id is not None and unit.parent_id is not None:
                    needed.append(f"{dep.job_id}:{unit.idx}")
                elif dep.job_id is not None:
                    needed.append(dep.job_id)
            elif dep.job_id is not None:
                needed.append(dep.job_id)
        return needed

    def _resolve(self, now: int) -> None:
        table = self.table
        for unit in list(table.waiting.values()):
            state = "ready"
            for job_id in self._dependencies(unit):
                status = None if job_id is None else table.status_of(job_id)
                if status is None or status is JobStatus.FAILED:
                    state = "failed"
                    break
                if status is not JobStatus.SUCCEEDED:
                    state = "waiting"
            if state == "failed":
                del table.waiting[unit.id]
                table.finish_unit(unit, JobStatus.FAILED, DEPENDENCY_FAILED, None, now)
            elif state == "waiting":
                if unit.status is not JobStatus.PENDING:
                    table.set_unit(unit, JobStatus.PENDING, None, now)
            else:
                del table.waiting[unit.id]
                table.set_unit(unit, JobStatus.RUNNABLE, None, now)
                table.runnable[unit.id] = unit

    def _terminate(self, job_id: str, reason: str, now: int) -> None:
        table = self.table
        row = table.live.get(job_id)
        if row is None:
            return
        spec = table.spec_of(row)
        if row.parent_id is not None and spec.nodes > 1:
            self._terminate(row.parent_id, reason, now)
            return
        if row.parent_id is None and spec.array_size is not None:
            self._terminated[row.id] = reason
            table.dirty_parents.add(row.id)
            for child in table.children.get(row.id, []):
                if not child.status.is_final:
                    self._terminate(child.id, reason, now)
            return
        active = self.attempts.active.get(row.id)
        if active is not None:
            self.attempts.end(active, None, reason, retryable=False, now=now)
            return
        table.waiting.pop(row.id, None)
        table.runnable.pop(row.id, None)
        table.finish_unit(row, JobStatus.FAILED, reason, None, now)

    def _derive_parents(self, now: int) -> None:
        """Array parents from their children's counts, as Batch derives them."""
        table = self.table
        for parent_id in table.dirty_parents:
            parent = table.live.get(parent_id)
            if parent is None or table.spec_of(parent).array_size is None:
                continue
            if derive(parent, table.counts.get(parent_id), self._terminated, now):
                table.changed = True  # jobs that depend on this array may move on
            table.dirty[parent.id] = parent
        table.dirty_parents.clear()

    def _flush(self) -> None:
        table = self.table
        if not table.dirty and not table.dirty_attempts and not self._requests_done:
            return
        self.progressed = True
        rows, attempts = table.take_dirty()
        self.store.save(rows, attempts, requests_done=self._requests_done)
        self._requests_done = 0
        table.settle(rows)

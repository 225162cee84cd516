"""The local scheduler: the Batch state machine over the jobs in the store.

One pass, `tick()`, does everything that is due: it reads new jobs and termination requests, polls
the running attempts (exits, timeouts), moves waiting jobs on when their dependencies allow, places
runnable jobs on the free vCPUs, memory and GPUs, derives array parents from their children, and
writes every change of the pass in one transaction (plus one before processes start, so a crash
never leaves a process the store does not know about for longer than a pass).

The units that run are single jobs, array children and multi-node jobs (a gang: every node starts
together, the main node decides the outcome and the others are stopped when it ends). Array parents
never run; their status is derived as Batch derives it: SUBMITTED, then PENDING once a child moves
on, SUCCEEDED when every child succeeded, FAILED once all children ended and any failed.

A job whose needs exceed the whole compute environment fails at once with a reason saying so
(Batch would leave it RUNNABLE forever; on one machine that helps nobody).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchkit.errors import BatchkitError, EngineError
from batchkit.models import DependencyType, JobStatus
from batchkit.providers.local.capacity import Capacity, describe_need
from batchkit.providers.local.environment import Placement, job_environment
from batchkit.providers.local.executor import Executor, Run, RunSpec
from batchkit.providers.local.logs import LogStore
from batchkit.providers.local.objects import LocalObjectStore
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.store import AttemptRow, JobRow, Spec, Store

log = logging.getLogger("batchkit.local.scheduler")

ExecutorSelector = Callable[[str | None, str], tuple[Executor, str | None]]

ESSENTIAL_EXITED = "Essential container in task exited"
DEPENDENCY_FAILED = "Dependent Job failed"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
NODE_STOPPED = "Stopped because the main node exited"
SELECTOR_TTL_S = 30.0

_WAITING = (JobStatus.SUBMITTED, JobStatus.PENDING)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def process_only_selector(image: str | None, preference: str) -> tuple[Executor, str | None]:
    """The executor choice when no Docker support is installed: always a local process."""
    if preference == "docker":
        raise EngineError(
            "this job asks for the Docker executor, but the local engine has none",
            hint="submit with the process executor (tag batchkit:executor=process)",
        )
    notice = None
    if image is not None:
        notice = f"image {image} is not used: the job runs as a local process"
    return ProcessExecutor(), notice


def default_selector(home: Path | None = None) -> ExecutorSelector:
    """The Docker-aware selection when its module exists (for `home`, its containers carry that
    home's label), else process only."""
    try:
        from batchkit.providers.local import selection  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return process_only_selector
    chosen: ExecutorSelector = (
        selection.select_executor if home is None else selection.selector_for(home)
    )
    return chosen


def _failure_reason(err: Exception, prefix: str = "") -> str:
    """A status reason for an attempt that could not start: the error and, for batchkit's own
    errors, the hint saying how to fix it (the reason is all `stat` and `sub --wait` show)."""
    if isinstance(err, BatchkitError):
        text = err.message + (f" (to fix: {err.hint})" if err.hint else "")
    else:
        text = str(err)
    return prefix + text


def _exit_reason(run: Run) -> str:
    """Why an attempt ended: what the executor knows (an OOM kill, a lost engine), else Batch's
    usual reason."""
    reason = getattr(run, "reason", None)
    return reason if isinstance(reason, str) and reason else ESSENTIAL_EXITED


@dataclass
class _Active:
    """One started attempt of a unit: its processes, their rows and their attempt records."""

    unit: JobRow
    spec: Spec
    number: int
    rows: dict[str, JobRow]
    runs: dict[str, Run] = field(default_factory=dict)
    records: dict[str, AttemptRow] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    deadline: int | None = None
    main_id: str | None = None


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
        self._selector = selector or default_selector(home)
        self._selected: dict[tuple[str | None, str], tuple[Executor, str | None, float]] = {}
        self.wake = threading.Event()
        """Set when a process attempt's output ends (it has most likely exited)."""
        self._process = ProcessExecutor(clock=clock, on_output_end=self.wake.set)
        self.worker_id = worker_id or f"pid-{os.getpid()}"
        self._host_env = dict(os.environ if host_environment is None else host_environment)
        self.logs = LogStore(home / "logs", clock=clock)
        self.objects = LocalObjectStore(home / "s3")

        self._specs: dict[str, Spec] = {}
        self._live: dict[str, JobRow] = {}
        self._children: dict[str, list[JobRow]] = {}
        self._final: dict[str, JobStatus] = {}
        self._waiting: dict[str, JobRow] = {}
        self._runnable: dict[str, JobRow] = {}
        self._active: dict[str, _Active] = {}
        self._terminated: dict[str, str] = {}
        self._dirty: dict[str, JobRow] = {}
        self._dirty_attempts: list[AttemptRow] = []
        self._dirty_parents: set[str] = set()
        self._used = [0.0, 0, 0]
        self._seq = 0
        self._request_seq = 0
        self._requests_done = 0
        self._version: int | None = None
        self._changed = True
        self.progressed = False
        self._load()

    # --- public ---------------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """How many attempts are running."""
        return len(self._active)

    @property
    def busy(self) -> bool:
        """Whether any job is still not final."""
        return bool(self._live) or bool(self._active)

    def recover(self, reason: str) -> None:
        """Settle attempts a dead worker left STARTING or RUNNING: kill their leftover processes
        (guarded against pid reuse by the executor) and fail or retry them with `reason`."""
        now = self._clock()
        stale = [
            row
            for row in self._live.values()
            if self._is_unit(row) and row.status in (JobStatus.STARTING, JobStatus.RUNNING)
        ]
        if stale:
            log.info("recovering %d attempts left by a previous worker", len(stale))
        for unit in stale:
            spec = self._spec_of(unit)
            rows = self._rows_of_unit(unit)
            ids = [row.id for row in rows]
            if unit.id not in ids:
                ids.append(unit.id)
            records = self.store.attempts(ids)
            active = _Active(unit=unit, spec=spec, number=unit.attempts, rows={})
            for row in rows:
                active.rows[row.id] = row
            for job_id, attempts in records.items():
                for record in attempts:
                    if record.number == unit.attempts and record.stopped_at is None:
                        active.records[job_id] = record
            for row in rows:
                found = active.records.get(row.id)
                if found is None:  # the worker died before it recorded the attempt
                    found = AttemptRow(row.id, unit.attempts, worker=self.worker_id)
                    active.records[row.id] = found
                record = found
                if not record.identity:
                    self._read_identity(row, record)
                if record.identity and record.executor:
                    self._reap(record.executor, spec, record.identity)
            self._end_attempt(active, None, reason, retryable=True, now=now, reap=False)
        self._flush()

    def tick(self) -> bool:
        """One scheduling pass; True while any job is not final. Afterwards `progressed` says
        whether the pass changed anything."""
        self.progressed = False
        self.wake.clear()
        now = self._clock()
        self._ingest(now)
        self._poll(now)
        placed: list[JobRow] = []
        if self._changed:
            self._changed = False
            self._resolve(now)
            placed = self._place(now)
        self._derive_parents(now)
        self._flush()
        if placed:
            for unit in placed:
                self._start(unit, now)
            self._derive_parents(now)
            self._flush()
        return self.busy

    def pause(self, seconds: float) -> None:
        """Wait up to `seconds` for the next pass, returning early when an attempt ends."""
        self.wake.wait(seconds)

    def shutdown(self, reason: str) -> None:
        """Stop every running attempt (the worker is going away) and fail or retry it."""
        now = self._clock()
        for active in list(self._active.values()):
            self._end_attempt(active, None, reason, retryable=True, now=now)
        self._derive_parents(now)
        self._flush()

    # --- loading and ingesting ------------------------------------------------------------------

    def _load(self) -> None:
        with self.store.read():
            rows = self.store.active_rows()
            self._seq = self.store.max_seq()
        for row in rows:
            self._add(row)
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
            self._add(row)
            self._changed = True
        for request in requests:
            self._request_seq = request.seq
            self._requests_done = request.seq
            self._terminate(request.job_id, request.reason, now)

    def _add(self, row: JobRow) -> None:
        if row.spec is not None:
            self._specs[row.id] = row.spec
        if row.status.is_final and row.spec is not None:
            self._final[row.id] = row.status
            return
        if row.status.is_final:
            self._final[row.id] = row.status
            if row.parent_id in self._live:
                self._children.setdefault(row.parent_id, []).append(row)
            return
        self._live[row.id] = row
        if row.parent_id is not None:
            self._children.setdefault(row.parent_id, []).append(row)
        if self._is_unit(row):
            if row.status in _WAITING:
                self._waiting[row.id] = row
            elif row.status is JobStatus.RUNNABLE:
                self._runnable[row.id] = row

    # --- helpers --------------------------------------------------------------------------------

    def _spec_of(self, row: JobRow) -> Spec:
        if row.spec is not None:
            return row.spec
        assert row.parent_id is not None
        return self._specs[row.parent_id]

    def _is_unit(self, row: JobRow) -> bool:
        spec = self._spec_of(row)
        if row.parent_id is None:
            return spec.array_size is None
        return spec.nodes <= 1

    def _rows_of_unit(self, unit: JobRow) -> list[JobRow]:
        if unit.parent_id is None and self._spec_of(unit).nodes > 1:
            return list(self._children.get(unit.id, []))
        return [unit]

    def _status_of(self, job_id: str) -> JobStatus | None:
        row = self._live.get(job_id)
        if row is not None:
            return row.status
        status = self._final.get(job_id)
        if status is None:
            found = self.store.rows([job_id])
            if not found:
                return None
            status = found[0].status
            if status.is_final:
                self._final[job_id] = status
        return status

    def _mark(self, row: JobRow) -> None:
        self._dirty[row.id] = row
        if row.parent_id is not None:
            self._dirty_parents.add(row.parent_id)

    def _set(self, row: JobRow, status: JobStatus, reason: str | None, now: int) -> None:
        row.status = status
        row.status_reason = reason
        if status.is_final:
            row.stopped_at = now
        self._mark(row)

    def _release(self, spec: Spec, count: int) -> None:
        self._used[0] -= spec.resources.vcpus * count
        self._used[1] -= spec.resources.memory * count
        self._used[2] -= spec.resources.gpus * count

    # --- state machine --------------------------------------------------------------------------

    def _dependencies(self, unit: JobRow) -> list[str | None]:
        """The job ids `unit` waits for (None: the dependency can never be met)."""
        spec = self._spec_of(unit)
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
        for unit in list(self._waiting.values()):
            state = "ready"
            for job_id in self._dependencies(unit):
                status = None if job_id is None else self._status_of(job_id)
                if status is None or status is JobStatus.FAILED:
                    state = "failed"
                    break
                if status is not JobStatus.SUCCEEDED:
                    state = "waiting"
            if state == "failed":
                del self._waiting[unit.id]
                self._finish_unit(unit, JobStatus.FAILED, DEPENDENCY_FAILED, None, now)
            elif state == "waiting":
                if unit.status is not JobStatus.PENDING:
                    self._set_unit(unit, JobStatus.PENDING, None, now)
            else:
                del self._waiting[unit.id]
                self._set_unit(unit, JobStatus.RUNNABLE, None, now)
                self._runnable[unit.id] = unit

    def _set_unit(self, unit: JobRow, status: JobStatus, reason: str | None, now: int) -> None:
        self._set(unit, status, reason, now)
        if unit.parent_id is None and self._spec_of(unit).nodes > 1:
            for node in self._children.get(unit.id, []):
                if not node.status.is_final or status is JobStatus.RUNNABLE:
                    self._set(node, status, reason, now)

    def _finish_unit(
        self, unit: JobRow, status: JobStatus, reason: str | None, exit_code: int | None, now: int
    ) -> None:
        unit.exit_code = exit_code
        self._set_unit(unit, status, reason, now)
        self._changed = True

    def _place(self, now: int) -> list[JobRow]:
        placed: list[JobRow] = []
        total = self.capacity
        for unit in list(self._runnable.values()):
            spec = self._spec_of(unit)
            count = spec.nodes if unit.parent_id is None else 1
            need = spec.resources
            if not total.fits(need, count):
                del self._runnable[unit.id]
                reason = (
                    f"CannotPlaceJob: the job needs {describe_need(need, count)} but the local"
                    f" compute environment has only {total.describe()}"
                )
                self._finish_unit(unit, JobStatus.FAILED, reason, None, now)
                continue
            free = Capacity(
                total.vcpus - self._used[0],
                int(total.memory - self._used[1]),
                int(total.gpus - self._used[2]),
            )
            if not free.fits(need, count):
                if free.vcpus <= 0 or free.memory <= 0:
                    break
                continue
            del self._runnable[unit.id]
            self._used[0] += need.vcpus * count
            self._used[1] += need.memory * count
            self._used[2] += need.gpus * count
            unit.attempts += 1
            self._set_unit(unit, JobStatus.STARTING, None, now)
            placed.append(unit)
        return placed

    def _select(self, spec: Spec) -> tuple[Executor, str | None]:
        key = (spec.image, spec.executor)
        cached = self._selected.get(key)
        if cached is not None and time.monotonic() < cached[2]:
            return cached[0], cached[1]
        executor, notice = self._selector(spec.image, spec.executor)
        if executor.name == "process":
            executor = self._process
        self._selected[key] = (executor, notice, time.monotonic() + SELECTOR_TTL_S)
        return executor, notice

    def _reap(self, name: str, spec: Spec, identity: Mapping[str, object]) -> None:
        try:
            if name == "process":
                self._process.reap_orphan(identity)
                return
            executor, _ = self._selector(spec.image, name)
            if executor.name == name:
                executor.reap_orphan(identity)
        except Exception:  # a lost engine must not stop the recovery of everything else
            log.exception("could not reap a %s attempt left behind (%s)", name, identity)

    @staticmethod
    def _poll_run(run: Run) -> tuple[int | None, str | None]:
        """(exit code or None, None), or (None, reason) when the executor lost the attempt."""
        try:
            return run.poll(), None
        except Exception as err:
            log.exception("lost track of an attempt")
            return None, f"The local engine lost track of the attempt: {err}"

    @staticmethod
    def _kill_run(run: Run) -> None:
        try:
            run.kill()
        except Exception:
            log.exception("could not stop an attempt")

    def _start(self, unit: JobRow, now: int) -> None:
        spec = self._spec_of(unit)
        rows = self._rows_of_unit(unit)
        active = _Active(unit=unit, spec=spec, number=unit.attempts, rows={r.id: r for r in rows})
        if spec.timeout is not None:
            active.deadline = now + spec.timeout * 1000
        self._active[unit.id] = active
        try:
            executor, notice = self._select(spec)
        except BatchkitError as err:
            self._end_attempt(active, None, _failure_reason(err), retryable=False, now=now)
            return
        stage_dir = self.objects.host_dir(spec.s3_folder_url) if spec.s3_folder_url else None
        multinode = len(rows) > 1 or unit.id != rows[0].id
        if multinode:
            active.main_id = f"{unit.id}#{spec.main_node}"
            active.records[unit.id] = AttemptRow(
                unit.id, active.number, started_at=now, worker=self.worker_id
            )
        for row in rows:
            stream = self.logs.new_stream_name(spec.job_definition)
            record = AttemptRow(
                row.id,
                active.number,
                started_at=now,
                log_stream=stream,
                executor=executor.name,
                worker=self.worker_id,
            )
            active.records[row.id] = record
            placement = Placement(
                job_id=row.id,
                attempt=active.number,
                array_index=row.idx if row.parent_id is not None and not multinode else None,
                node_index=row.idx if multinode else None,
                num_nodes=spec.nodes if multinode else None,
                main_node=spec.main_node,
            )
            env = job_environment(self._host_env, spec.environment, placement, stage_dir=stage_dir)
            run_spec = RunSpec(
                job_id=row.id,
                attempt=active.number,
                argv=spec.command,
                env=env,
                workdir=self._workdir(row, active.number),
                resources=spec.resources,
                image=spec.image,
                stage_dir=stage_dir,
            )
            try:
                run = executor.start(run_spec, self.logs.sink(stream))
            except Exception as err:  # any start failure fails this attempt
                reason = _failure_reason(err, "CannotStartContainerError: ")
                self._end_attempt(active, None, reason, retryable=True, now=now)
                return
            active.runs[row.id] = run
            record.identity = run.identity()
            self._write_identity(row, record)
        for row in rows:
            row.started_at = now
            row.stopped_at = None
            row.exit_code = None
            self._set(row, JobStatus.RUNNING, notice, now)
        if multinode:
            unit.started_at = now
            unit.stopped_at = None
            self._set(unit, JobStatus.RUNNING, notice, now)
        self._dirty_attempts.extend(active.records.values())

    def _identity_path(self, row: JobRow, attempt: int) -> Path:
        return self._workdir(row, attempt).parent / f"attempt-{attempt}.identity.json"

    def _write_identity(self, row: JobRow, record: AttemptRow) -> None:
        """Note how to find the attempt's processes before the store knows them, so that a worker
        dying right after the start still leaves enough for the next one to reap them."""
        path = self._identity_path(row, record.number)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"executor": record.executor, "identity": record.identity}))
        except OSError:
            log.exception("could not note the identity of %s", row.id)

    def _read_identity(self, row: JobRow, record: AttemptRow) -> None:
        try:
            raw = json.loads(self._identity_path(row, record.number).read_text())
        except (OSError, ValueError):
            return
        record.executor = raw.get("executor")
        record.identity = raw.get("identity")

    def _workdir(self, row: JobRow, attempt: int) -> Path:
        if row.parent_id is None:
            return self.home / "work" / row.id / f"attempt-{attempt}"
        spec = self._spec_of(row)
        part = f"node-{row.idx}" if spec.nodes > 1 else f"index-{row.idx}"
        return self.home / "work" / row.parent_id / part / f"attempt-{attempt}"

    def _poll(self, now: int) -> None:
        for active in list(self._active.values()):
            if active.deadline is not None and now >= active.deadline:
                self._end_attempt(active, None, TIMEOUT_REASON, retryable=True, now=now)
                continue
            if active.main_id is None:
                (job_id, run), *_ = active.runs.items()
                code, lost = self._poll_run(run)
                if lost is not None:
                    self._end_attempt(active, None, lost, retryable=True, now=now)
                elif code is not None:
                    self._end_attempt(active, code, _exit_reason(run), retryable=True, now=now)
                continue
            lost = None
            for job_id, run in active.runs.items():
                if job_id in active.ended:
                    continue
                code, lost = self._poll_run(run)
                if lost is not None:
                    break
                if code is None:
                    continue
                active.ended[job_id] = code
                if job_id != active.main_id:
                    row = active.rows[job_id]
                    record = active.records[job_id]
                    record.stopped_at = now
                    record.exit_code = code
                    record.status_reason = ESSENTIAL_EXITED
                    row.exit_code = code
                    self._set(
                        row,
                        JobStatus.SUCCEEDED if code == 0 else JobStatus.FAILED,
                        ESSENTIAL_EXITED,
                        now,
                    )
                    self._dirty_attempts.append(record)
            if lost is not None:
                self._end_attempt(active, None, lost, retryable=True, now=now)
            elif active.main_id in active.ended:
                code = active.ended[active.main_id]
                reason = _exit_reason(active.runs[active.main_id])
                self._end_attempt(active, code, reason, retryable=True, now=now)

    def _end_attempt(
        self,
        active: _Active,
        exit_code: int | None,
        reason: str,
        *,
        retryable: bool,
        now: int,
        reap: bool = True,
    ) -> None:
        """Close one attempt of a unit: stop what still runs, record the attempt, and move the
        unit to SUCCEEDED, FAILED, or back to RUNNABLE for another attempt."""
        unit, spec = active.unit, active.spec
        reserved = self._active.pop(unit.id, None) is not None
        if reap:
            for job_id, run in active.runs.items():
                if job_id not in active.ended or active.main_id is not None:
                    self._kill_run(run)
        multinode = active.main_id is not None or len(active.rows) > 1
        count = len(active.rows) if multinode else 1
        if reserved:
            self._release(spec, count)
        succeeded = exit_code == 0
        retry = not succeeded and retryable and unit.attempts < spec.retry_attempts
        if succeeded:
            outcome = JobStatus.SUCCEEDED
        elif retry:
            outcome = JobStatus.RUNNABLE
        else:
            outcome = JobStatus.FAILED
        for job_id, record in active.records.items():
            if record.stopped_at is not None:
                continue
            own = active.ended.get(job_id)
            is_other_node = multinode and job_id not in (unit.id, active.main_id)
            record.stopped_at = now
            record.exit_code = own if own is not None else (None if is_other_node else exit_code)
            stopped = is_other_node and reason == ESSENTIAL_EXITED
            record.status_reason = NODE_STOPPED if stopped else reason
            self._dirty_attempts.append(record)
        if multinode:
            for row in active.rows.values():
                if retry:
                    row.exit_code = None
                    row.stopped_at = None
                    self._set(row, JobStatus.RUNNABLE, None, now)
                elif row.id == active.main_id:
                    row.exit_code = exit_code
                    self._set(row, outcome, reason, now)
                elif row.id not in active.ended or not row.status.is_final:
                    row.exit_code = None
                    node_reason = NODE_STOPPED if reason == ESSENTIAL_EXITED else reason
                    self._set(row, outcome, node_reason, now)
        unit.exit_code = None if retry else exit_code
        if retry:
            unit.stopped_at = None
            self._set(unit, JobStatus.RUNNABLE, None, now)
            self._runnable[unit.id] = unit
        else:
            self._set(unit, outcome, reason, now)
        self._changed = True

    def _terminate(self, job_id: str, reason: str, now: int) -> None:
        row = self._live.get(job_id)
        if row is None:
            return
        spec = self._spec_of(row)
        if row.parent_id is not None and spec.nodes > 1:
            self._terminate(row.parent_id, reason, now)
            return
        if row.parent_id is None and spec.array_size is not None:
            self._terminated[row.id] = reason
            self._dirty_parents.add(row.id)
            for child in self._children.get(row.id, []):
                if not child.status.is_final:
                    self._terminate(child.id, reason, now)
            return
        active = self._active.get(row.id)
        if active is not None:
            self._end_attempt(active, None, reason, retryable=False, now=now)
            return
        self._waiting.pop(row.id, None)
        self._runnable.pop(row.id, None)
        self._finish_unit(row, JobStatus.FAILED, reason, None, now)

    def _derive_parents(self, now: int) -> None:
        """Array parents from their children, as Batch derives them."""
        for parent_id in self._dirty_parents:
            parent = self._live.get(parent_id)
            if parent is None:
                continue
            spec = self._spec_of(parent)
            if spec.array_size is None:
                continue
            children = self._children.get(parent_id, [])
            # Counted in C: this runs on every pass that changes a child, for every child.
            counts = Counter([child.status for child in children])
            summary = {status.value: counts[status] for status in JobStatus}
            parent.status_summary = summary
            done = summary["SUCCEEDED"] + summary["FAILED"]
            if children and done == len(children):
                self._changed = True  # jobs that depend on this array may move on
                parent.stopped_at = max((c.stopped_at or now) for c in children)
                if summary["FAILED"]:
                    parent.status = JobStatus.FAILED
                    parent.status_reason = self._terminated.get(parent_id) or (
                        f"{summary['FAILED']} of {len(children)} child jobs failed"
                    )
                else:
                    parent.status = JobStatus.SUCCEEDED
                    parent.status_reason = None
            elif len(children) > summary["SUBMITTED"]:
                parent.status = JobStatus.PENDING
            starts = [c.started_at for c in children if c.started_at is not None]
            parent.started_at = min(starts) if starts else None
            self._dirty[parent.id] = parent
        self._dirty_parents.clear()

    def _flush(self) -> None:
        if not self._dirty and not self._dirty_attempts and not self._requests_done:
            return
        self.progressed = True
        rows = list(self._dirty.values())
        self.store.save(rows, self._dirty_attempts, requests_done=self._requests_done)
        self._dirty.clear()
        self._dirty_attempts = []
        self._requests_done = 0
        for row in rows:
            if not row.status.is_final or row.id not in self._live:
                continue
            if self._children.get(row.id) and any(
                not c.status.is_final for c in self._children[row.id]
            ):
                continue
            del self._live[row.id]
            self._final[row.id] = row.status
            self._children.pop(row.id, None)
            self._waiting.pop(row.id, None)
            self._runnable.pop(row.id, None)

"""The lifecycle of one attempt of a unit: start its processes, poll them, end the attempt.

A unit is a single job, an array child or a multi-node job (a gang: every node starts together,
the main node decides the outcome and the others are stopped when it ends). Ending an attempt
records it and moves the unit to SUCCEEDED, FAILED, or back to RUNNABLE for another attempt.
Before the store knows an attempt, its identity (how to find its processes) is noted in a file, so
a worker that dies right after the start still leaves enough for the next one to reap them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct, field

from batchkit.errors import BatchkitError
from batchkit.models import JobStatus
from batchkit.providers.local.environment import Placement, job_environment
from batchkit.providers.local.executor import Run, RunSpec
from batchkit.providers.local.executors import Executors
from batchkit.providers.local.logs import LogStore
from batchkit.providers.local.objects import LocalObjectStore
from batchkit.providers.local.placement import Ledger
from batchkit.providers.local.private import private_dir
from batchkit.providers.local.rows import AttemptRow, JobRow, Spec
from batchkit.providers.local.table import JobTable

log = logging.getLogger("batchkit.local.scheduler")

ESSENTIAL_EXITED = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
NODE_STOPPED = "Stopped because the main node exited"


def failure_reason(err: Exception, prefix: str = "") -> str:
    """A status reason for an attempt that could not start: the error and, for batchkit's own
    errors, the hint saying how to fix it (the reason is all `stat` and `sub --wait` show)."""
    if isinstance(err, BatchkitError):
        text = err.message + (f" (to fix: {err.hint})" if err.hint else "")
    else:
        text = str(err)
    return prefix + text


def exit_reason(run: Run) -> str:
    """Why an attempt ended: what the executor knows (an OOM kill, a lost engine), else Batch's
    usual reason."""
    reason = getattr(run, "reason", None)
    return reason if isinstance(reason, str) and reason else ESSENTIAL_EXITED


def _poll_run(run: Run) -> tuple[int | None, str | None]:
    """(exit code or None, None), or (None, reason) when the executor lost the attempt."""
    try:
        return run.poll(), None
    except Exception as err:
        log.exception("lost track of an attempt")
        return None, f"The local engine lost track of the attempt: {err}"


def _kill_run(run: Run) -> None:
    try:
        run.kill()
    except Exception:
        log.exception("could not stop an attempt")


def _write_small(path: Path, text: str) -> None:
    """Write a small file with one `open` and one `write` (no buffered text layer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Active(Struct):
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


class AttemptContext(Struct):
    """Where attempts run and write: the home, its logs and staged objects, the host environment
    jobs inherit, and the id this worker records on each attempt."""

    home: Path
    logs: LogStore
    objects: LocalObjectStore
    host_env: Mapping[str, str]
    worker_id: str


class Attempts:
    """The running attempts of one scheduler, keyed by unit id."""

    def __init__(
        self, table: JobTable, ledger: Ledger, executors: Executors, context: AttemptContext
    ) -> None:
        self.table = table
        self.ledger = ledger
        self.executors = executors
        self.context = context
        self.active: dict[str, Active] = {}

    # --- start ----------------------------------------------------------------------------------

    def start(self, unit: JobRow, now: int) -> None:
        """Start the processes of `unit`'s new attempt (placed: it is STARTING) and mark it
        RUNNING, or end the attempt at once if it cannot start."""
        table, ctx = self.table, self.context
        spec = table.spec_of(unit)
        rows = table.rows_of_unit(unit)
        active = Active(unit=unit, spec=spec, number=unit.attempts, rows={r.id: r for r in rows})
        if spec.timeout is not None:
            active.deadline = now + spec.timeout * 1000
        self.active[unit.id] = active
        try:
            executor, notice = self.executors.select(spec)
        except BatchkitError as err:
            self.end(active, None, failure_reason(err), retryable=False, now=now)
            return
        stage_dir = ctx.objects.host_dir(spec.s3_folder_url) if spec.s3_folder_url else None
        multinode = len(rows) > 1 or unit.id != rows[0].id
        if multinode:
            active.main_id = f"{unit.id}#{spec.main_node}"
            active.records[unit.id] = AttemptRow(
                unit.id, active.number, started_at=now, worker=ctx.worker_id
            )
        for row in rows:
            stream = ctx.logs.new_stream_name(spec.job_definition)
            record = AttemptRow(
                row.id,
                active.number,
                started_at=now,
                log_stream=stream,
                executor=executor.name,
                worker=ctx.worker_id,
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
            env = job_environment(ctx.host_env, spec.environment, placement, stage_dir=stage_dir)
            workdir = self.workdir(row, active.number)
            run_spec = RunSpec(
                job_id=row.id,
                attempt=active.number,
                argv=spec.command,
                env=env,
                workdir=workdir,
                resources=spec.resources,
                image=spec.image,
                stage_dir=stage_dir,
            )
            try:
                run = executor.start(run_spec, ctx.logs.sink(stream))
            except Exception as err:  # any start failure fails this attempt
                reason = failure_reason(err, "CannotStartContainerError: ")
                self.end(active, None, reason, retryable=True, now=now)
                return
            active.runs[row.id] = run
            record.identity = run.identity()
            self._write_identity(workdir.parent / f"attempt-{active.number}.identity.json", record)
        for row in rows:
            row.started_at = now
            row.stopped_at = None
            row.exit_code = None
            table.set(row, JobStatus.RUNNING, notice, now)
        if multinode:
            unit.started_at = now
            unit.stopped_at = None
            table.set(unit, JobStatus.RUNNING, notice, now)
        table.dirty_attempts.extend(active.records.values())

    def workdir(self, row: JobRow, attempt: int) -> Path:
        home = self.context.home
        if row.parent_id is None:
            return home / "work" / row.id / f"attempt-{attempt}"
        spec = self.table.spec_of(row)
        part = f"node-{row.idx}" if spec.nodes > 1 else f"index-{row.idx}"
        return home / "work" / row.parent_id / part / f"attempt-{attempt}"

    def _identity_path(self, row: JobRow, attempt: int) -> Path:
        return self.workdir(row, attempt).parent / f"attempt-{attempt}.identity.json"

    def _write_identity(self, path: Path, record: AttemptRow) -> None:
        text = json.dumps({"executor": record.executor, "identity": record.identity})
        try:
            try:
                _write_small(path, text)
            except FileNotFoundError:  # an executor that made no directory for the attempt
                private_dir(path.parent)
                _write_small(path, text)
        except OSError:
            log.exception("could not note the identity of %s", record.job_id)

    def _read_identity(self, row: JobRow, record: AttemptRow) -> None:
        try:
            raw = json.loads(self._identity_path(row, record.number).read_text())
        except (OSError, ValueError):
            return
        record.executor = raw.get("executor")
        record.identity = raw.get("identity")

    # --- poll -----------------------------------------------------------------------------------

    def poll(self, now: int) -> None:
        """End the attempts whose processes exited, timed out or were lost."""
        for active in list(self.active.values()):
            if active.deadline is not None and now >= active.deadline:
                self.end(active, None, TIMEOUT_REASON, retryable=True, now=now)
                continue
            if active.main_id is None:
                run = next(iter(active.runs.values()))
                code, lost = _poll_run(run)
                if lost is not None:
                    self.end(active, None, lost, retryable=True, now=now)
                elif code is not None:
                    self.end(active, code, exit_reason(run), retryable=True, now=now)
                continue
            self._poll_gang(active, now)

    def _poll_gang(self, active: Active, now: int) -> None:
        lost = None
        for job_id, run in active.runs.items():
            if job_id in active.ended:
                continue
            code, lost = _poll_run(run)
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
                status = JobStatus.SUCCEEDED if code == 0 else JobStatus.FAILED
                self.table.set(row, status, ESSENTIAL_EXITED, now)
                self.table.dirty_attempts.append(record)
        if lost is not None:
            self.end(active, None, lost, retryable=True, now=now)
        elif active.main_id in active.ended:
            code = active.ended[active.main_id]
            reason = exit_reason(active.runs[active.main_id])
            self.end(active, code, reason, retryable=True, now=now)

    # --- end ------------------------------------------------------------------------------------

    def end(
        self,
        active: Active,
        exit_code: int | None,
        reason: str,
        *,
        retryable: bool,
        now: int,
        reap: bool = True,
    ) -> None:
        """Close one attempt of a unit: stop what still runs, record the attempt, and move the
        unit to SUCCEEDED, FAILED, or back to RUNNABLE for another attempt."""
        table = self.table
        unit, spec = active.unit, active.spec
        reserved = self.active.pop(unit.id, None) is not None
        if reap:
            for job_id, run in active.runs.items():
                if job_id not in active.ended or active.main_id is not None:
                    _kill_run(run)
        multinode = active.main_id is not None or len(active.rows) > 1
        count = len(active.rows) if multinode else 1
        if reserved:
            self.ledger.release(spec.resources, count)
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
            table.dirty_attempts.append(record)
        if multinode:
            for row in active.rows.values():
                if retry:
                    row.exit_code = None
                    row.stopped_at = None
                    table.set(row, JobStatus.RUNNABLE, None, now)
                elif row.id == active.main_id:
                    row.exit_code = exit_code
                    table.set(row, outcome, reason, now)
                elif row.id not in active.ended or not row.status.is_final:
                    row.exit_code = None
                    node_reason = NODE_STOPPED if reason == ESSENTIAL_EXITED else reason
                    table.set(row, outcome, node_reason, now)
        unit.exit_code = None if retry else exit_code
        if retry:
            unit.stopped_at = None
            table.set(unit, JobStatus.RUNNABLE, None, now)
            table.runnable[unit.id] = unit
        else:
            table.set(unit, outcome, reason, now)
        table.changed = True

    def end_all(self, reason: str, now: int) -> None:
        """Stop every running attempt (the worker is going away) and fail or retry it."""
        for active in list(self.active.values()):
            self.end(active, None, reason, retryable=True, now=now)

    # --- recovery -------------------------------------------------------------------------------

    def recover(self, reason: str, now: int) -> None:
        """Settle attempts a dead worker left STARTING or RUNNING: kill their leftover processes
        (guarded against pid reuse by the executor) and fail or retry them with `reason`."""
        table = self.table
        stale = [
            row
            for row in table.live.values()
            if table.is_unit(row) and row.status in (JobStatus.STARTING, JobStatus.RUNNING)
        ]
        if stale:
            log.info("recovering %d attempts left by a previous worker", len(stale))
        for unit in stale:
            spec = table.spec_of(unit)
            rows = table.rows_of_unit(unit)
            ids = [row.id for row in rows]
            if unit.id not in ids:
                ids.append(unit.id)
            records = table.store.attempts(ids)
            active = Active(unit=unit, spec=spec, number=unit.attempts, rows={})
            for row in rows:
                active.rows[row.id] = row
            for job_id, attempts in records.items():
                for record in attempts:
                    if record.number == unit.attempts and record.stopped_at is None:
                        active.records[job_id] = record
            for row in rows:
                found = active.records.get(row.id)
                if found is None:  # the worker died before it recorded the attempt
                    found = AttemptRow(row.id, unit.attempts, worker=self.context.worker_id)
                    active.records[row.id] = found
                record = found
                if not record.identity:
                    self._read_identity(row, record)
                if record.identity and record.executor:
                    self.executors.reap(record.executor, spec, record.identity)
            self.end(active, None, reason, retryable=True, now=now, reap=False)

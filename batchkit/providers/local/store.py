"""The local engine's state: one SQLite database per home, shared by every batchkit process.

Many CLI processes submit and read at once while one worker schedules, so the database runs in WAL
mode with a generous busy timeout, and every write is a short `BEGIN IMMEDIATE` transaction.
Only the worker changes a job's status once it exists; other processes insert jobs and termination
requests, and read.

Tables: `jobs` (every job, array child and MNP node; a top-level row carries the job's spec as
JSON, a child row only its own state), `attempts` (one row per attempt of a row that runs),
`requests` (termination requests for the worker) and `meta` (the worker's capacity).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from batchkit.models import (
    Attempt,
    Dependency,
    DependencyType,
    Job,
    JobStatus,
    Resources,
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
CHUNK = 500  # ids per `IN (...)` query, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    parent_id TEXT,
    idx INTEGER,
    runs INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    stopped_at INTEGER,
    exit_code INTEGER,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    vcpus REAL NOT NULL,
    memory INTEGER NOT NULL,
    gpus INTEGER NOT NULL,
    client_token TEXT,
    status_summary TEXT,
    spec TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs(parent_id, idx);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, parent_id);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_token ON jobs(client_token)
    WHERE client_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at INTEGER,
    stopped_at INTEGER,
    exit_code INTEGER,
    reason TEXT,
    status_reason TEXT,
    log_stream TEXT,
    executor TEXT,
    identity TEXT,
    worker TEXT,
    PRIMARY KEY (job_id, number)
);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ACTIVE = tuple(s.value for s in JobStatus if not s.is_final)


@dataclass(frozen=True)
class Spec:
    """What was submitted, as the engine keeps it (one per top-level job, shared by children).

    `s3_folder_url` is the job folder, already resolved from the request's `PCLUSTER_JOB_S3_URL`
    when the request named none."""

    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    queue: str = "local"
    array_size: int | None = None
    nodes: int = 1
    main_node: int = 0
    depends_on: tuple[Dependency, ...] = ()
    retry_attempts: int = 1
    timeout: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    s3_folder_url: str | None = None
    job_definition: str = "batchkit-local:1"
    executor: str = "auto"

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "command": list(self.command),
                "environment": dict(self.environment),
                "resources": {
                    "vcpus": self.resources.vcpus,
                    "memory": self.resources.memory,
                    "gpus": self.resources.gpus,
                },
                "image": self.image,
                "queue": self.queue,
                "array_size": self.array_size,
                "nodes": self.nodes,
                "main_node": self.main_node,
                "depends_on": [d.to_api() for d in self.depends_on],
                "retry_attempts": self.retry_attempts,
                "timeout": self.timeout,
                "tags": dict(self.tags),
                "s3_folder_url": self.s3_folder_url,
                "job_definition": self.job_definition,
                "executor": self.executor,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Spec:
        raw = json.loads(text)
        res = raw["resources"]
        return cls(
            name=raw["name"],
            command=tuple(raw["command"]),
            environment=raw["environment"],
            resources=Resources(res["vcpus"], res["memory"], res["gpus"]),
            image=raw["image"],
            queue=raw["queue"],
            array_size=raw["array_size"],
            nodes=raw["nodes"],
            main_node=raw["main_node"],
            depends_on=tuple(
                Dependency(d.get("jobId"), DependencyType(d["type"]) if "type" in d else None)
                for d in raw["depends_on"]
            ),
            retry_attempts=raw["retry_attempts"],
            timeout=raw["timeout"],
            tags=raw["tags"],
            s3_folder_url=raw["s3_folder_url"],
            job_definition=raw["job_definition"],
            executor=raw["executor"],
        )


@dataclass
class JobRow:
    """One row of `jobs`: a top-level job (with its spec) or a child (without)."""

    seq: int
    id: str
    parent_id: str | None
    idx: int | None
    runs: bool
    status: JobStatus
    status_reason: str | None
    created_at: int
    started_at: int | None
    stopped_at: int | None
    exit_code: int | None
    reason: str | None
    attempts: int
    status_summary: dict[str, int] | None
    spec: Spec | None

    _COLUMNS = (
        "seq, id, parent_id, idx, runs, status, status_reason, created_at, started_at, "
        "stopped_at, exit_code, reason, attempts, status_summary, spec"
    )

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> JobRow:
        return cls(
            seq=row[0],
            id=row[1],
            parent_id=row[2],
            idx=row[3],
            runs=bool(row[4]),
            status=JobStatus(row[5]),
            status_reason=row[6],
            created_at=row[7],
            started_at=row[8],
            stopped_at=row[9],
            exit_code=row[10],
            reason=row[11],
            attempts=row[12],
            status_summary=json.loads(row[13]) if row[13] else None,
            spec=Spec.from_json(row[14]) if row[14] else None,
        )


@dataclass
class AttemptRow:
    job_id: str
    number: int
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    log_stream: str | None = None
    executor: str | None = None
    identity: dict[str, Any] | None = None
    worker: str | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        """The row in the column order of `attempts` (the field order), identity as JSON."""
        values = [getattr(self, f.name) for f in fields(self)]
        values[-2] = json.dumps(self.identity) if self.identity is not None else None
        return tuple(values)

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> AttemptRow:
        job_id, number, started, stopped, code, reason, status_reason, stream, executor = row[:9]
        identity = json.loads(row[9]) if row[9] else None
        return cls(
            job_id, number, started, stopped, code, reason, status_reason, stream, executor,
            identity, row[10],
        )  # fmt: skip


@dataclass(frozen=True)
class NewRow:
    """A row `insert_job` writes."""

    id: str
    parent_id: str | None
    idx: int | None
    runs: bool
    resources: Resources


@dataclass(frozen=True)
class TerminateRequest:
    seq: int
    job_id: str
    reason: str


class Store:
    """One connection to `<home>/engine.db`; use one Store per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - only on exotic filesystems
            self._db.execute(f"PRAGMA journal_mode = {mode}")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self.write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, taken at once (`BEGIN IMMEDIATE`)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes when another connection commits (cheap: no table is read)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # --- writes from submitters -------------------------------------------------------------

    def insert_job(
        self,
        spec: Spec,
        rows: Sequence[NewRow],
        *,
        created_at: int,
        client_token: str | None,
    ) -> str:
        """Insert a job (its top-level row first, then its children) in one transaction.

        With a `client_token` already used, nothing is inserted and that job's id is returned."""
        with self.write() as db:
            if client_token is not None:
                found = db.execute(
                    "SELECT id FROM jobs WHERE client_token = ?", (client_token,)
                ).fetchone()
                if found is not None:
                    return str(found[0])
            top = rows[0]
            db.execute(
                "INSERT INTO jobs (id, parent_id, idx, runs, status, created_at, vcpus, memory,"
                " gpus, client_token, spec)"
                " VALUES (?, NULL, NULL, ?, 'SUBMITTED', ?, ?, ?, ?, ?, ?)",
                (
                    top.id,
                    int(top.runs),
                    created_at,
                    top.resources.vcpus,
                    top.resources.memory,
                    top.resources.gpus,
                    client_token,
                    spec.to_json(),
                ),
            )
            db.executemany(
                "INSERT INTO jobs (id, parent_id, idx, runs, status, created_at, vcpus, memory,"
                " gpus) VALUES (?, ?, ?, ?, 'SUBMITTED', ?, ?, ?, ?)",
                [
                    (
                        row.id,
                        row.parent_id,
                        row.idx,
                        int(row.runs),
                        created_at,
                        row.resources.vcpus,
                        row.resources.memory,
                        row.resources.gpus,
                    )
                    for row in rows[1:]
                ],
            )
            return top.id

    def request_termination(self, job_id: str, reason: str, at: int) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO requests (job_id, reason, created_at) VALUES (?, ?, ?)",
                (job_id, reason, at),
            )

    # --- reads ------------------------------------------------------------------------------

    def rows(self, ids: Iterable[str]) -> list[JobRow]:
        wanted = list(dict.fromkeys(ids))
        found: list[JobRow] = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor = self._db.execute(
                f"SELECT {JobRow._COLUMNS} FROM jobs WHERE id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.extend(JobRow.from_tuple(row) for row in cursor)
        return found

    def top_level(self, statuses: Sequence[JobStatus]) -> list[JobRow]:
        if not statuses:
            return []
        marks = ",".join("?" * len(statuses))
        cursor = self._db.execute(
            f"SELECT {JobRow._COLUMNS} FROM jobs WHERE parent_id IS NULL"  # noqa: S608
            f" AND status IN ({marks}) ORDER BY seq",
            [s.value for s in statuses],
        )
        return [JobRow.from_tuple(row) for row in cursor]

    def children(self, parent_id: str) -> list[JobRow]:
        cursor = self._db.execute(
            f"SELECT {JobRow._COLUMNS} FROM jobs WHERE parent_id = ? ORDER BY idx",  # noqa: S608
            (parent_id,),
        )
        return [JobRow.from_tuple(row) for row in cursor]

    def rows_after(self, seq: int) -> list[JobRow]:
        cursor = self._db.execute(
            f"SELECT {JobRow._COLUMNS} FROM jobs WHERE seq > ? ORDER BY seq",  # noqa: S608
            (seq,),
        )
        return [JobRow.from_tuple(row) for row in cursor]

    def active_rows(self) -> list[JobRow]:
        """Every non-final row, with every row of a job that is not final (a parent with all its
        children, final or not), in insertion order."""
        marks = ",".join("?" * len(ACTIVE))
        cursor = self._db.execute(
            f"SELECT {JobRow._COLUMNS} FROM jobs WHERE status IN ({marks})"  # noqa: S608
            f" OR id IN (SELECT parent_id FROM jobs WHERE parent_id IS NOT NULL"
            f" AND status IN ({marks}))"
            f" OR parent_id IN (SELECT id FROM jobs WHERE parent_id IS NULL"
            f" AND status IN ({marks})) ORDER BY seq",
            ACTIVE * 3,
        )
        return [JobRow.from_tuple(row) for row in cursor]

    def max_seq(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0])

    def has_active_jobs(self) -> bool:
        marks = ",".join("?" * len(ACTIVE))
        row = self._db.execute(
            f"SELECT 1 FROM jobs WHERE status IN ({marks}) LIMIT 1",  # noqa: S608
            ACTIVE,
        ).fetchone()
        return row is not None

    def requests_after(self, seq: int) -> list[TerminateRequest]:
        cursor = self._db.execute(
            "SELECT seq, job_id, reason FROM requests WHERE seq > ? ORDER BY seq", (seq,)
        )
        return [TerminateRequest(row[0], row[1], row[2]) for row in cursor]

    def attempts(self, job_ids: Iterable[str]) -> dict[str, list[AttemptRow]]:
        wanted = list(dict.fromkeys(job_ids))
        out: dict[str, list[AttemptRow]] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor = self._db.execute(
                "SELECT job_id, number, started_at, stopped_at, exit_code, reason, status_reason,"  # noqa: S608
                f" log_stream, executor, identity, worker FROM attempts WHERE job_id IN ({marks})"
                " ORDER BY job_id, number",
                chunk,
            )
            for row in cursor:
                attempt = AttemptRow.from_tuple(row)
                out.setdefault(attempt.job_id, []).append(attempt)
        return out

    def usage(self) -> tuple[float, int, int, int]:
        """(vCPUs, MiB, GPUs, processes) reserved by rows that are STARTING or RUNNING."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory), 0), COALESCE(SUM(gpus), 0),"
            " COUNT(*) FROM jobs WHERE runs = 1 AND status IN ('STARTING', 'RUNNING')"
        ).fetchone()
        return float(row[0]), int(row[1]), int(row[2]), int(row[3])

    def count_waiting(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE runs = 1 AND status IN"
            " ('SUBMITTED', 'PENDING', 'RUNNABLE')"
        ).fetchone()
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- writes from the worker ---------------------------------------------------------------

    def save(
        self,
        rows: Sequence[JobRow],
        attempts: Sequence[AttemptRow],
        *,
        requests_done: int = 0,
    ) -> None:
        """Write the state of changed rows and attempts in one transaction, and forget the
        termination requests up to `requests_done` (they have been applied)."""
        if not rows and not attempts and not requests_done:
            return
        with self.write() as db:
            if requests_done:
                db.execute("DELETE FROM requests WHERE seq <= ?", (requests_done,))
            db.executemany(
                "UPDATE jobs SET status = ?, status_reason = ?, started_at = ?, stopped_at = ?,"
                " exit_code = ?, reason = ?, attempts = ?, status_summary = ? WHERE id = ?",
                [
                    (
                        row.status.value,
                        row.status_reason,
                        row.started_at,
                        row.stopped_at,
                        row.exit_code,
                        row.reason,
                        row.attempts,
                        json.dumps(row.status_summary) if row.status_summary is not None else None,
                        row.id,
                    )
                    for row in rows
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO attempts (job_id, number, started_at, stopped_at,"
                " exit_code, reason, status_reason, log_stream, executor, identity, worker)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [attempt.to_tuple() for attempt in attempts],
            )


def to_job(row: JobRow, spec: Spec, attempts: Sequence[AttemptRow], log_group: str) -> Job:
    """The Batch-shaped view of a row; `spec` is the row's own or its parent's."""
    is_node = row.parent_id is not None and spec.nodes > 1
    is_child = row.parent_id is not None and not is_node
    command = list(spec.command)
    finished = [a for a in attempts if a.stopped_at is not None]
    latest = attempts[-1] if attempts else None
    return Job(
        job_id=row.id,
        name=spec.name,
        status=row.status,
        queue=spec.queue,
        job_definition=spec.job_definition,
        created_at=row.created_at,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        status_reason=row.status_reason,
        exit_code=row.exit_code,
        reason=row.reason,
        command=command,
        resources=spec.resources,
        image=spec.image,
        array_size=None if is_child else spec.array_size,
        nodes=spec.nodes,
        main_node=spec.main_node,
        depends_on=list(spec.depends_on),
        attempts=[
            Attempt(
                started_at=a.started_at,
                stopped_at=a.stopped_at,
                exit_code=a.exit_code,
                reason=a.reason,
                log_stream=a.log_stream,
                status_reason=a.status_reason,
            )
            for a in finished
        ],
        retry_attempts=spec.retry_attempts,
        timeout=spec.timeout,
        log_stream=latest.log_stream if latest is not None else None,
        log_group=log_group,
        s3_folder_url=spec.s3_folder_url,
        status_summary=dict(row.status_summary or {}),
    )

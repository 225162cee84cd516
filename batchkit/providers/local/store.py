"""The local engine's state: one SQLite database per home, shared by every batchkit process.

Only the worker changes a job's status once it exists; other processes insert jobs and termination
requests, and read. The schema and how a connection is opened are in `schema`; the rows as Python
values in `rows`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from batchkit.models import JobStatus
from batchkit.providers.local.rows import (
    AttemptRow,
    JobRow,
    NewRow,
    Spec,
    TerminateRequest,
    to_job,
)
from batchkit.providers.local.schema import (
    ACTIVE,
    BUSY_TIMEOUT_MS,
    connect,
    create_schema,
    has_schema,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "AttemptRow",
    "JobRow",
    "NewRow",
    "Spec",
    "Store",
    "TerminateRequest",
    "to_job",
]

CHUNK = 500  # ids per `IN (...)` query, well under SQLite's variable limit


class Store:
    """One connection to `<home>/engine.db`; use one Store per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)
        if not has_schema(self._db):  # a write transaction only the first time
            with self.write() as db:
                create_schema(db)

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

"""The local engine's database schema, and how a connection to it is opened.

Many CLI processes submit and read at once while one worker schedules, so the database runs in WAL
mode with a generous busy timeout (every write is a short `BEGIN IMMEDIATE` transaction).

Tables: `jobs` (every job, array child and MNP node; a top-level row carries the job's spec as
JSON, a child row only its own state), `attempts` (one row per attempt of a row that runs),
`requests` (termination requests for the worker) and `meta` (the worker's capacity).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from batchkit.models import JobStatus

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
"""The statuses of a job that is not final, as stored."""


def connect(path: Path) -> sqlite3.Connection:
    """Open `path` (creating it and its directory) in autocommit mode, WAL, with the busy
    timeout; the caller creates the schema in its first write transaction (`create_schema`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # pragma: no cover - only on exotic filesystems
        db.execute(f"PRAGMA journal_mode = {mode}")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def has_schema(db: sqlite3.Connection) -> bool:
    """Whether the database already has this schema version (so opening it writes nothing)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet: a new database
        return False
    return row is not None and row[0] == str(SCHEMA_VERSION)


def create_schema(db: sqlite3.Connection) -> None:
    """Create what is missing of the schema (inside the caller's write transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
        (str(SCHEMA_VERSION),),
    )

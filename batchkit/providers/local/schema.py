"""The local engine's database schema, and how a connection to it is opened.

Many CLI processes submit and read at once while one worker schedules, so the database runs in WAL
mode with a generous busy timeout (every write is a short `BEGIN IMMEDIATE` transaction).

Tables: `jobs` (every job, array child and MNP node; a top-level row carries the job's spec as
JSON, a child row only its own state), `attempts` (one row per attempt of a row that runs),
`requests` (termination requests for the worker) and `meta` (the worker's capacity).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from batchkit.errors import EngineError
from batchkit.models import JobStatus
from batchkit.providers.local.private import private_file, private_home

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
    private_home(path.parent)
    check_not_emptied(path)
    if not path.exists():
        create_database(path)
    private_file(path)  # SQLite gives the -wal and -shm files the database's mode
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - only on exotic filesystems
            db.execute(f"PRAGMA journal_mode = {mode}")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
    except sqlite3.DatabaseError as err:
        db.close()
        if is_damage(err):
            raise damaged(path, err) from err
        raise
    return db


# Errors that mean the file itself is damaged, not busy or unwritable (SQLite result codes).
DAMAGE = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def is_damage(err: sqlite3.Error) -> bool:
    name = getattr(err, "sqlite_errorname", "") or ""
    return any(name.startswith(code) for code in DAMAGE)


def damaged(path: Path, err: BaseException | str, *, recoverable: bool = True) -> EngineError:
    aside = path.with_name(path.name + ".damaged")
    recover = (
        f"recover what is left of its jobs with `sqlite3 {aside} .recover | sqlite3 "
        f"{path.with_name('recovered.db')}`; "
        if recoverable
        else "nothing is left in it to recover; "
    )
    return EngineError(
        f"the local engine's database {path} is damaged: {err}",
        hint=f"move it aside (`mv {path} {aside}`; batchkit then starts an empty engine); "
        f"{recover}the jobs' output stays in {path.parent / 'logs'}",
    )


UNUSED_HOME = frozenset({"engine.db", "worker.lock"})
"""What a home holds before any job: the database and the worker's lock (see check_not_emptied)."""
_CREATING = ".engine.db.new-"  # the prefix of a database being made (create_database)


def check_not_emptied(path: Path) -> None:
    """A 0-byte engine.db in a home with any sign of earlier use (work/, logs/, s3/, worker.log:
    anything besides the database and the worker's lock) lost its jobs (a full disk, a careless
    copy): say so rather than silently start afresh, whatever the file's age. A database that
    batchkit makes is never seen at 0 bytes (`create_database`), so a concurrent first submission
    is not mistaken for this."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_size != 0:
        return
    with contextlib.suppress(OSError):
        signs = [
            name
            for name in (entry.name for entry in path.parent.iterdir())
            if name not in UNUSED_HOME and not name.startswith(_CREATING)
        ]
        if signs:
            raise damaged(
                path,
                f"it is empty (0 bytes) although the home was used ({', '.join(sorted(signs))})",
                recoverable=False,
            )


def create_database(path: Path) -> None:
    """Make `path` an empty WAL database (0600) in one step: it is written under another name and
    linked into place, so no process ever sees a new engine.db at 0 bytes (which is what an
    emptied one looks like); a database another process linked first is kept."""
    import tempfile  # here: only the first connection to a home makes its database

    fd, made = tempfile.mkstemp(dir=path.parent, prefix=_CREATING)  # 0600: the owner's alone
    os.close(fd)
    try:
        db = sqlite3.connect(made, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")  # writes the header: the file is not empty
        finally:
            db.close()
        try:
            os.link(made, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:  # a file system without hard links: copy it into place, if still absent
            with contextlib.suppress(FileExistsError):
                target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(target, "wb") as copy:
                    copy.write(Path(made).read_bytes())
    finally:
        Path(made).unlink(missing_ok=True)


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

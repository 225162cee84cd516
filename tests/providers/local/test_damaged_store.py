"""A damaged engine.db is named, with how to move it aside and recover what is left."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchkit.cli.app import app
from batchkit.errors import EngineError
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.schema import create_database
from batchkit.providers.local.store import Store
from batchkit.providers.local.worker import serve


def garbage(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "engine.db"
    path.write_bytes(b"this is not an SQLite database, it was overwritten\n" * 200)
    return path


def test_a_corrupt_database_says_move_it_aside_and_how_to_recover(tmp_path: Path) -> None:
    path = garbage(tmp_path)
    with pytest.raises(EngineError) as info:
        Store(path)
    assert f"database {path} is damaged: file is not a database" in info.value.message
    hint = info.value.hint or ""
    assert f"mv {path} {path}.damaged" in hint
    assert f"sqlite3 {path}.damaged .recover" in hint
    assert "permission" not in hint


def test_the_provider_and_the_worker_report_it_the_same_way(tmp_path: Path) -> None:
    garbage(tmp_path)
    with pytest.raises(EngineError, match="is damaged"):
        LocalProvider(tmp_path, start_worker=False).store  # noqa: B018
    with pytest.raises(EngineError, match="is damaged"):
        serve(tmp_path, idle_exit=0)


def test_local_worker_on_it_is_one_clear_error(isolated_environment: Path) -> None:
    garbage(isolated_environment)
    result = CliRunner().invoke(app, ["local", "worker", "--idle-exit", "0"])
    assert result.exit_code == 6
    assert "error: the local engine's database" in result.stderr
    assert "unexpected" not in result.stderr and "hint: move it aside" in result.stderr


@pytest.mark.parametrize(
    "sign", ["work/", "logs/", "s3/", "worker.log", "engine.db-wal", "recovered.db"]
)
def test_an_emptied_database_in_a_used_home_is_noticed_whatever_its_age(
    tmp_path: Path, sign: str
) -> None:
    """Any sign of earlier use beside a 0-byte engine.db, even one emptied a moment ago."""
    home = tmp_path / "engine"
    home.mkdir()
    used = home / sign.rstrip("/")
    used.mkdir() if sign.endswith("/") else used.write_bytes(b"")
    path = home / "engine.db"
    path.write_bytes(b"")  # just now: the age no longer matters
    with pytest.raises(EngineError, match=r"empty \(0 bytes\) although the home was used") as info:
        Store(path)
    assert sign.rstrip("/") in info.value.message
    hint = info.value.hint or ""
    assert f"mv {path} {path}.damaged" in hint and "nothing is left in it to recover" in hint
    assert path.stat().st_size == 0  # left as it was found


def test_a_zero_byte_database_alone_is_a_new_engine(tmp_path: Path) -> None:
    home = tmp_path / "engine"
    home.mkdir()
    (home / "engine.db").write_bytes(b"")  # e.g. touched, beside only the worker's lock
    (home / "worker.lock").write_bytes(b"")
    Store(home / "engine.db").close()
    assert (home / "engine.db").stat().st_size > 0


def test_the_process_that_creates_the_database_is_not_stopped_by_it(tmp_path: Path) -> None:
    """A first submission stages its files (s3/) before it opens the database; a new engine.db
    is never visible at 0 bytes, so neither it nor a concurrent first submission sees damage."""
    home = tmp_path / "engine"
    (home / "s3").mkdir(parents=True)
    (home / "work").mkdir()
    path = home / "engine.db"
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def first_submission() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as err:  # collected for the assertion
            failures.append(err)

    threads = [threading.Thread(target=first_submission, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "an opener hung"
    assert failures == []
    assert path.stat().st_size > 0
    assert sorted(p.name for p in home.iterdir() if p.name.startswith(".engine")) == []
    Store(tmp_path / "fresh" / "engine.db").close()


def test_without_hard_links_a_new_database_is_never_taken_for_an_emptied_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without hard links: the new database is copied into place whole, so a
    first submission (whose job folder s3/ already exists) is not told to move it aside."""
    home = tmp_path / "engine"
    (home / "s3").mkdir(parents=True)

    def no_links(*_: object, **__: object) -> None:
        raise PermissionError("hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    create_database(home / "engine.db")  # what another opener may see at once: never 0 bytes

    assert (home / "engine.db").stat().st_size > 0
    assert (home / "engine.db").stat().st_mode & 0o077 == 0
    Store(home / "engine.db").close()
    Store(home / "engine.db").close()  # the second opener too

"""A damaged engine.db is named, with how to move it aside and recover what is left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchkit.cli.app import app
from batchkit.errors import EngineError
from batchkit.providers.local.provider import LocalProvider
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


def test_an_emptied_database_beside_earlier_jobs_is_noticed(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(parents=True)
    path = tmp_path / "engine.db"
    path.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    with pytest.raises(EngineError, match=r"empty \(0 bytes\) although jobs ran here") as info:
        Store(path)
    assert "nothing is left in it to recover" in (info.value.hint or "")


def test_a_new_engine_is_not_mistaken_for_an_emptied_one(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(parents=True)
    (tmp_path / "engine.db").write_bytes(b"")  # just made by a concurrent first submission
    Store(tmp_path / "engine.db")
    Store(tmp_path / "fresh" / "engine.db")

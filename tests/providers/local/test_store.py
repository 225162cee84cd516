"""The SQLite store: WAL mode and a busy timeout, so many processes can share it."""

from __future__ import annotations

from pathlib import Path

from batchkit.models import Resources
from batchkit.providers.local.store import BUSY_TIMEOUT_MS, NewRow, Spec, Store


def test_the_store_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = Store(tmp_path / "engine.db")
    with store.read() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS


def test_a_spec_survives_the_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "engine.db")
    spec = Spec(
        name="n",
        command=("a", "b c", "ü"),
        environment={"K": "v"},
        resources=Resources(0.5, 64, 1),
        array_size=3,
        tags={"t": "1"},
    )
    store.insert_job(
        spec, [NewRow("id", None, None, False, spec.resources)], created_at=5, client_token=None
    )
    (row,) = store.rows(["id"])
    assert row.spec == spec
    assert row.created_at == 5


def test_writers_in_two_connections_do_not_lose_rows(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "engine.db"), Store(tmp_path / "engine.db")
    spec = Spec(name="n", command=("true",))
    for i in range(20):
        before = one.data_version()
        writer = one if i % 2 else two
        writer.insert_job(
            spec,
            [NewRow(f"job-{i}", None, None, True, spec.resources)],
            created_at=i,
            client_token=None,
        )
        # Another connection's commit is visible to `data_version`; our own is not.
        assert (one.data_version() != before) is (writer is two)
    assert [row.id for row in one.rows_after(0)] == [f"job-{i}" for i in range(20)]

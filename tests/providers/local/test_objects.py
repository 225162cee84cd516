"""The local bucket: objects as files, `s3://batchkit-local/` URLs, and the job-folder mapping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from batchkit.errors import EngineError, NotFoundError, UsageError
from batchkit.providers.local.objects import LocalObjectStore


def test_put_get_exists_and_url(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    key = "local/batch/job-x-1/x.sh"
    assert not store.exists(key)
    store.put(key, b"#!/bin/sh\necho hi\n")
    assert store.exists(key)
    assert store.get(key) == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "s3" / "batchkit-local" / key).read_bytes() == store.get(key)
    assert store.url(key) == "s3://batchkit-local/local/batch/job-x-1/x.sh"
    store.put(key, b"replaced")
    assert store.get(key) == b"replaced"


def test_missing_object_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        LocalObjectStore(tmp_path).get("nope")
    assert "s3://batchkit-local/nope" in str(caught.value)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "../up", "./x"])
def test_keys_cannot_escape_the_bucket(tmp_path: Path, key: str) -> None:
    with pytest.raises(UsageError):
        LocalObjectStore(tmp_path).put(key, b"x")


def test_job_folder_urls_map_to_host_directories(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    folder = store.host_dir("s3://batchkit-local/local/batch/job-x-1/")
    assert folder == tmp_path / "s3" / "batchkit-local" / "local" / "batch" / "job-x-1"
    assert store.host_dir("s3://other-bucket/local/batch/job-x-1/") is None


RESULT = "local/batch/job-f-1.results/0.pkl"


def stored_result(tmp_path: Path) -> tuple[LocalObjectStore, Path]:
    store = LocalObjectStore(tmp_path / "s3")
    store.put(RESULT, b"the job's pickle")
    return store, store.bucket_dir / RESULT


def test_a_result_that_is_a_link_is_refused_and_not_read(tmp_path: Path) -> None:
    store, path = stored_result(tmp_path)
    elsewhere = tmp_path / "elsewhere.pkl"
    elsewhere.write_bytes(b"someone else's pickle")
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(EngineError) as caught:
        store.get(RESULT)
    assert caught.value.message == (
        f"refusing to read s3://batchkit-local/{RESULT}: it is a link, not a file written at "
        "its key"
    )
    assert f"remove {path}" in (caught.value.hint or "")


def test_a_results_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    store, path = stored_result(tmp_path)
    moved = tmp_path / "moved"
    path.parent.rename(moved)
    path.parent.symlink_to(moved)
    with pytest.raises(EngineError, match=f"its folder {path.parent} is a link"):
        store.get(RESULT)


@pytest.mark.parametrize(
    ("which", "mode", "said"),
    [
        ("file", 0o666, "writable by others"),
        ("file", 0o620, "writable by its group"),
        ("folder", 0o777, "writable by others"),
        ("folder", 0o770, "writable by its group"),
    ],
)
def test_a_result_others_may_have_written_is_refused(
    tmp_path: Path, which: str, mode: int, said: str
) -> None:
    store, path = stored_result(tmp_path)
    target = path if which == "file" else path.parent
    target.chmod(mode)
    with pytest.raises(EngineError) as caught:
        store.get(RESULT)
    assert f"its {which} {target} is {said}, so it may not be what the job wrote" in str(
        caught.value
    )


def test_a_result_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, path = stored_result(tmp_path)
    owner = path.stat().st_uid
    stranger = owner + 4242
    monkeypatch.setattr(os, "geteuid", lambda: stranger)
    with pytest.raises(EngineError) as caught:
        store.get(RESULT)
    assert f"belongs to uid {owner}, not to you (uid {stranger})" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_root_reads_what_the_image_user_it_handed_the_folder_to_wrote(tmp_path: Path) -> None:
    """As root, the Docker executor hands results/ to the image's user (uid 1000 in the presets),
    who writes the result: that owner is expected, a loose mode still is not."""
    store, path = stored_result(tmp_path)
    for owned in (path, path.parent):
        os.chown(owned, 1000, 1000)
    assert store.get(RESULT) == b"the job's pickle"
    path.chmod(0o646)
    with pytest.raises(EngineError, match="writable by others"):
        store.get(RESULT)


def test_objects_and_their_folders_are_private(tmp_path: Path) -> None:
    _, path = stored_result(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, *path.parent.parents):
        if folder == tmp_path:
            break
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

"""The local bucket: objects as files, `s3://batchkit-local/` URLs, and the job-folder mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.errors import NotFoundError, UsageError
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

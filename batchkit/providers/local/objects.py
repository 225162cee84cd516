"""The local engine's S3: one bucket, `batchkit-local`, kept as plain files under the home.

A key `local/batch/job-x-1/x.sh` lives at `<home>/s3/batchkit-local/local/batch/job-x-1/x.sh` and
a job sees it as `s3://batchkit-local/local/batch/job-x-1/x.sh`. Because the job folder is a real
directory, a local job reads it straight from disk (`BATCHKIT_JOB_STAGE_DIR`) instead of syncing.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from batchkit.errors import EngineError, NotFoundError, UsageError
from batchkit.providers.local.private import private_dir

BUCKET = "batchkit-local"
URL_PREFIX = f"s3://{BUCKET}/"


class LocalObjectStore:
    """`ObjectStore` over a directory: put/get/exists by key, `s3://batchkit-local/` URLs."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def bucket_dir(self) -> Path:
        """The directory that plays the bucket."""
        return self._root / BUCKET

    def url(self, key: str) -> str:
        return URL_PREFIX + key

    def put(self, key: str, body: bytes) -> None:
        import tempfile  # here: a submission that stages nothing does not import it (start-up)

        path = self._path(key)
        private_dir(path.parent)  # and every folder above it, up to the home
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")  # 0600: the owner's alone
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """The object's bytes, read only from the file written at its key: never through a link,
        and never from a file (or folder) another user owns or may write, because a function
        job's result is unpickled by its submitter (`refuse_foreign`)."""
        path = self._path(key)
        try:
            # never through a link: an object is the file written at its own key
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise EngineError(
                    f"refusing to read {self.url(key)}: it is a link, not a file written at "
                    "its key",
                    hint=f"remove {path}: nothing in the local bucket is ever a link",
                ) from None
            if not isinstance(err, FileNotFoundError | IsADirectoryError | NotADirectoryError):
                raise
            raise NotFoundError(
                f"object {self.url(key)} not found",
                hint=f"the local bucket lives in {self.bucket_dir}",
            ) from None
        with os.fdopen(fd, "rb") as handle:
            refuse_foreign(self.url(key), path, os.fstat(fd), os.lstat(path.parent))
            return handle.read()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def host_dir(self, url: str) -> Path | None:
        """The host directory that plays the S3 folder `url`, or None if `url` is not local."""
        if not url.startswith(URL_PREFIX):
            return None
        key = url[len(URL_PREFIX) :].strip("/")
        return self._path(key) if key else self.bucket_dir

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", "..", ".") for part in parts):
            raise UsageError(
                f"invalid object key {key!r}",
                hint="keys are relative paths without empty, '.' or '..' components",
            )
        return self.bucket_dir.joinpath(*parts)


def refuse_foreign(url: str, path: Path, file: os.stat_result, folder: os.stat_result) -> None:
    """Refuse an object that someone other than its reader may have written: a file or folder
    that group or others may write, or one owned by another user. Root reads files of any owner:
    as root, the Docker executor hands a job's results folder to the image's user, who writes
    the result."""
    me = os.geteuid()
    for what, info, where in (("file", file, path), ("folder", folder, path.parent)):
        if stat.S_ISLNK(info.st_mode):
            why = f"its {what} {where} is a link"
        elif info.st_mode & stat.S_IWOTH:
            why = f"its {what} {where} is writable by others"
        elif info.st_mode & stat.S_IWGRP:
            why = f"its {what} {where} is writable by its group"
        elif me not in (0, info.st_uid):
            why = f"its {what} {where} belongs to uid {info.st_uid}, not to you (uid {me})"
        else:
            continue
        raise EngineError(
            f"refusing to read {url}: {why}, so it may not be what the job wrote",
            hint="jobs write their results 0600 in a 0700 folder of their own; if you did "
            f"not loosen {where} yourself, someone else may have written it",
        )

"""Which user a Docker image runs its processes as, and handing a job's private directories to
that user, for when batchkit runs as root and a container keeps its image's `USER` (no
directory of the job is ever made world-writable for it)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any


def parse_ids(text: str) -> dict[str, tuple[int, int]]:
    """`name → (id, primary gid)` from an /etc/passwd (or, with the gid repeated, /etc/group)."""
    found: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit():
            gid = int(fields[3]) if fields[3].isdigit() else int(fields[2])
            found[fields[0]] = (int(fields[2]), gid)
    return found


def image_owner(client: Any, image: str) -> tuple[int, int]:
    """(uid, gid) of the image's `USER`; root when it names none. Names are looked up in the
    image's own /etc/passwd and /etc/group (a `KeyError` when they are not there); a numeric user
    without a group is taken as that number for both, without reading the image (the folders
    handed over are 0700, so only the uid matters)."""
    config = client.images.get(image).attrs.get("Config") or {}
    user, _, group = str(config.get("User") or "").partition(":")
    if not user and not group:
        return 0, 0
    passwd = groups = ""
    if not user.isdigit() or (group and not group.isdigit()):
        passwd, groups = _read(client, image, "/etc/passwd"), _read(client, image, "/etc/group")
    uid, gid = (int(user), int(user)) if user.isdigit() else parse_ids(passwd)[user or "root"]
    if group:
        gid = int(group) if group.isdigit() else parse_ids(groups)[group][0]
    return uid, gid


def _read(client: Any, image: str, path: str) -> str:
    """A file of the image, read from a created (never started) container."""
    container = client.containers.create(image, command=["true"])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(Path(path).name)
            return member.read().decode("utf-8", "replace") if member else ""
    finally:
        container.remove(force=True)


def hand_over(path: Path, uid: int, gid: int) -> None:
    """Give `path` (and, for a directory, all it holds) to uid:gid; directories stay 0700."""
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.chown(Path(root, name), uid, gid, follow_symlinks=False)

"""Which user a Docker image runs as, and handing a job's folders to it: the parts that need no
Docker engine (a fake client stands in for one)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from batchkit.errors import EngineError
from batchkit.providers.local.docker_executor import DockerExecutor
from batchkit.providers.local.imageuser import hand_over, image_owner, parse_ids

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
worker:x:1001:100::/home/worker:/bin/sh
# a comment line
broken:x:notanumber:0::/:/bin/sh
short:x:7
"""
GROUP = """\
root:x:0:
users:x:100:worker
staff:x:50:app
"""


def test_parse_ids_reads_passwd_and_group_lines_and_skips_the_rest() -> None:
    assert parse_ids(PASSWD) == {
        "root": (0, 0),
        "daemon": (1, 1),
        "app": (1000, 1000),
        "worker": (1001, 100),
    }
    # /etc/group: the id, and a fourth field (the members) that is no number: the id again
    assert parse_ids(GROUP) == {"root": (0, 0), "users": (100, 100), "staff": (50, 50)}
    assert parse_ids("") == {}


class FakeContainer:
    def __init__(self, files: dict[str, str], removed: list[str]) -> None:
        self._files = files
        self._removed = removed

    def get_archive(self, path: str) -> tuple[list[bytes], dict[str, Any]]:
        body = self._files[path].encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(Path(path).name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
        return [buffer.getvalue()], {}

    def remove(self, *, force: bool = False) -> None:
        self._removed.append("removed" if force else "kept")


class FakeClient:
    """Just enough of docker.DockerClient: an image's config, and containers that are created
    (never started) to read a file of the image."""

    def __init__(self, user: str | None, files: dict[str, str] | None = None) -> None:
        self.created: list[str] = []
        self.removed: list[str] = []
        client = self

        class Images:
            def get(self, image: str) -> Any:
                return type("Image", (), {"attrs": {"Config": {"User": user}}})()

        class Containers:
            def create(self, image: str, command: list[str]) -> FakeContainer:
                client.created.append(image)
                return FakeContainer(files or {}, client.removed)

        self.images = Images()
        self.containers = Containers()


FILES = {"/etc/passwd": PASSWD, "/etc/group": GROUP}


@pytest.mark.parametrize(
    ("user", "owner", "reads_image"),
    [
        (None, (0, 0), False),
        ("", (0, 0), False),
        ("1000", (1000, 1000), False),
        ("1000:50", (1000, 50), False),
        ("app", (1000, 1000), True),
        ("worker", (1001, 100), True),
        ("app:staff", (1000, 50), True),
        ("1001:staff", (1001, 50), True),
        ("worker:0", (1001, 0), True),
    ],
)
def test_image_owner_follows_the_images_user(
    user: str | None, owner: tuple[int, int], reads_image: bool
) -> None:
    client = FakeClient(user, FILES)
    assert image_owner(client, "img") == owner
    assert bool(client.created) == reads_image
    assert client.removed == ["removed"] * len(client.created)  # never left behind


@pytest.mark.parametrize("user", ["ghost", "app:nogroup"])
def test_a_name_the_image_does_not_know_is_one_clear_error(user: str, tmp_path: Path) -> None:
    client = FakeClient(user, FILES)
    with pytest.raises(KeyError):
        image_owner(client, "img")
    executor = DockerExecutor(client, home=tmp_path, user=None)  # type: ignore[arg-type]
    with pytest.raises(EngineError) as caught:
        executor._image_owner("img")
    assert caught.value.message.startswith("cannot tell which user image img runs as")
    assert "numeric USER" in (caught.value.hint or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_hand_over_gives_the_tree_but_not_what_its_links_point_at(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("not the job's")
    job = tmp_path / "job"
    (job / "sub").mkdir(parents=True, mode=0o700)
    job.chmod(0o700)
    (job / "sub").chmod(0o700)
    (job / "sub" / "file").write_text("x")
    (job / "link").symlink_to(outside)

    hand_over(job, 1000, 1001)

    for path in (job, job / "sub", job / "sub" / "file", job / "link"):
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (1000, 1001), path
    assert (outside.stat().st_uid, outside.stat().st_gid) == (0, 0)
    assert stat.S_IMODE(job.stat().st_mode) == 0o700  # modes are left as they were
    assert stat.S_IMODE((job / "sub").stat().st_mode) == 0o700

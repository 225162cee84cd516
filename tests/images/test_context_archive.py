"""The build context: what goes in (.dockerignore), and a hash that depends on content only."""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchkit.errors import UsageError
from batchkit.images.context import (
    BuildContext,
    DockerIgnore,
    content_tag,
    scan_context,
    write_archive,
)


def make_tree(root: Path, files: dict[str, str], order: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel in order or list(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
    return root


FILES = {
    "Dockerfile": "FROM scratch\nCOPY . /app\n",
    "app/main.py": "print('hi')\n",
    "app/lib/util.py": "X = 1\n",
    "data/big.bin": "0123456789" * 1000,
    "README.md": "# readme\n",
}


def paths(root: Path) -> list[str]:
    return [entry.path for entry in scan_context(root).entries]


def test_same_content_same_hash_whatever_mtimes_and_creation_order(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "a", FILES)
    order = list(FILES)
    random.Random(7).shuffle(order)
    second = make_tree(tmp_path / "b", FILES, order)
    for index, path in enumerate(sorted(second.rglob("*"))):
        os.utime(path, (1_000_000 + index, 2_000_000 + index * 13))

    assert write_archive(scan_context(first)) == write_archive(scan_context(second))


def test_one_changed_byte_changes_the_hash(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a", FILES)
    before = write_archive(scan_context(root))
    (root / "app/main.py").write_text("print('hI')\n")
    assert write_archive(scan_context(root)).sha256 != before.sha256


def test_a_renamed_file_or_a_new_empty_dir_changes_the_hash(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a", FILES)
    before = write_archive(scan_context(root)).sha256
    (root / "app/main.py").rename(root / "app/main2.py")
    renamed = write_archive(scan_context(root)).sha256
    (root / "empty").mkdir()
    assert len({before, renamed, write_archive(scan_context(root)).sha256}) == 3


def test_the_exec_bit_is_content_but_other_mode_bits_are_not(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a", FILES)
    script = root / "app/main.py"
    script.chmod(0o644)
    base = write_archive(scan_context(root)).sha256
    script.chmod(0o600)
    assert write_archive(scan_context(root)).sha256 == base
    script.chmod(0o755)
    assert write_archive(scan_context(root)).sha256 != base


def test_archive_headers_are_normalised_and_sorted(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a", FILES)
    (root / "app/main.py").chmod(0o750)
    sink = io.BytesIO()
    digest = write_archive(scan_context(root), sink)
    assert digest.size == len(sink.getvalue())
    sink.seek(0)
    with tarfile.open(fileobj=sink) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
        modes = {m.name: m.mode for m in members}
        assert modes["app/main.py"] == 0o755
        assert modes["README.md"] == 0o644
        assert modes["app"] == 0o755
        extracted = archive.extractfile("data/big.bin")
        assert extracted is not None and extracted.read() == FILES["data/big.bin"].encode()


def test_long_paths_and_symlinks_are_archived_deterministically(tmp_path: Path) -> None:
    long_name = "d" * 60 + "/" + "f" * 80 + ".txt"
    trees = []
    for label in ("a", "b"):
        root = make_tree(tmp_path / label, {"Dockerfile": "FROM x\n", long_name: "x"})
        (root / "link").symlink_to("Dockerfile")
        trees.append(write_archive(scan_context(root)))
    assert trees[0] == trees[1]
    sink = io.BytesIO()
    write_archive(scan_context(tmp_path / "a"), sink)
    sink.seek(0)
    with tarfile.open(fileobj=sink) as archive:
        assert archive.getmember(long_name).size == 1
        assert archive.getmember("link").linkname == "Dockerfile"


def test_dockerignore_patterns_negation_and_double_star(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM x\n",
            ".dockerignore": "\n".join(
                [
                    "# comments and blank lines are ignored",
                    "",
                    "*.log",
                    "!keep.log",
                    "**/__pycache__",
                    "/build",
                    "docs/*.md",
                    "secret?.txt",
                    "data",
                    "!data/wanted.csv",
                ]
            ),
            "a.log": "",
            "keep.log": "",
            "sub/b.log": "",
            "pkg/__pycache__/m.pyc": "",
            "__pycache__/top.pyc": "",
            "build/out.o": "",
            "src/build/keep.c": "",
            "docs/guide.md": "",
            "docs/deep/guide.md": "",
            "secret1.txt": "",
            "secret12.txt": "",
            "data/unwanted.csv": "",
            "data/wanted.csv": "",
        },
    )
    assert paths(root) == [
        ".dockerignore",
        "Dockerfile",
        "data/wanted.csv",
        "docs",
        "docs/deep",
        "docs/deep/guide.md",
        "keep.log",
        "pkg",
        "secret12.txt",
        "src",
        "src/build",
        "src/build/keep.c",
        "sub",
        "sub/b.log",
    ]


def test_ignored_files_do_not_change_the_hash(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx", {**FILES, ".dockerignore": "*.tmp\nscratch/\n"})
    before = write_archive(scan_context(root))
    (root / "x.tmp").write_text("noise")
    make_tree(root / "scratch", {"a": "1", "deep/b": "2"})
    assert write_archive(scan_context(root)) == before


def test_dockerfile_and_dockerignore_are_sent_even_when_ignored(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "ctx",
        {"Dockerfile": "FROM x\n", ".dockerignore": "*\n!app\n", "app/x": "1", "other": "2"},
    )
    assert paths(root) == [".dockerignore", "Dockerfile", "app", "app/x"]


def test_last_matching_pattern_wins() -> None:
    rules = DockerIgnore.parse("!keep\n*\n")
    assert rules.excluded("keep")
    rules = DockerIgnore.parse("*\n!keep\n")
    assert not rules.excluded("keep")
    assert rules.excluded("other")
    assert not rules.excluded("keep/inner")  # a re-included directory keeps its contents


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("*.py", "a.py", True),
        ("*.py", "dir/a.py", False),  # `*` stays within one segment
        ("**/*.py", "dir/deep/a.py", True),
        ("**/*.py", "a.py", True),  # `**/` matches zero directories too
        ("dir/**", "dir/x/y", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab]x", "bx", True),
        ("[!ab]x", "cx", True),
        ("./lead/../x", "x", True),  # patterns are cleaned like paths
        ("x/", "x/y", True),
        (r"\*lit", "*lit", True),
        (r"\*lit", "alit", False),
    ],
)
def test_pattern_rules(pattern: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(pattern).excluded(path) is excluded


def test_a_missing_dockerfile_is_a_usage_error_naming_the_context(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx", {"app.py": ""})
    with pytest.raises(UsageError, match=r"no Dockerfile in build context .*ctx") as info:
        scan_context(root)
    assert info.value.hint and "--file" in info.value.hint
    with pytest.raises(UsageError, match="not a directory"):
        scan_context(root / "app.py")


def test_content_tag_folds_in_dockerfile_build_args_and_platform(tmp_path: Path) -> None:
    digest = write_archive(scan_context(make_tree(tmp_path / "ctx", FILES)))
    tags = {
        content_tag(digest),
        content_tag(digest, dockerfile="other/Dockerfile"),
        content_tag(digest, build_args={"BASE_IMAGE": "a"}),
        content_tag(digest, build_args={"BASE_IMAGE": "b"}),
        content_tag(digest, platform="linux/arm64"),
    }
    assert len(tags) == 5
    assert all(len(tag) == 16 and int(tag, 16) >= 0 for tag in tags)
    assert content_tag(digest, build_args={"A": "1", "B": "2"}) == content_tag(
        digest, build_args={"B": "2", "A": "1"}
    )


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}", fullmatch=True),
        st.binary(max_size=64),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_hash_is_independent_of_creation_order(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes], rng: random.Random
) -> None:
    # drop paths that would be both a file and a directory
    names = sorted(files)
    files = {n: files[n] for n in names if not any(o.startswith(n + "/") for o in names)}
    digests = []
    for _ in range(2):
        root = tmp_path_factory.mktemp("ctx")
        (root / "Dockerfile").write_text("FROM x\n")
        order = list(files)
        rng.shuffle(order)
        for rel in order:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(files[rel])
        digests.append(write_archive(scan_context(root)))
    assert digests[0] == digests[1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM x\n", "secret": "s"})
    (root / "secret").chmod(0)
    with pytest.raises(UsageError, match=r"cannot read .*secret"):
        write_archive(scan_context(root))


def test_a_file_that_changes_size_while_archived_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM x\n", "grows": "1"})
    context = scan_context(root)
    (root / "grows").write_text("12345")
    with pytest.raises(UsageError, match="changed while the build context was archived"):
        write_archive(context)
    (root / "grows").unlink()
    with pytest.raises(UsageError, match="vanished"):
        write_archive(context)


def _tarfile_archive(context: BuildContext) -> bytes:
    """The archive as `tarfile` writes it (streamed, GNU format): what write_archive must equal
    byte for byte, so that no image's content hash changes."""
    from batchkit.images.tarheaders import tarinfo

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as archive:
        for entry in context.entries:
            mode = {"dir": 0o755, "symlink": 0o777}.get(
                entry.kind, 0o755 if entry.executable else 0o644
            )
            info = tarinfo(entry.path, entry.kind, mode, entry.size, entry.target)
            if entry.kind == "file":
                with (context.root / entry.path).open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return out.getvalue()


def test_the_archive_is_byte_for_byte_what_tarfile_writes(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    rng = random.Random(3)
    files = {
        "Dockerfile": b"FROM scratch\n",
        "empty": b"",
        "exactly-512": bytes(512),
        "big.bin": rng.randbytes(3 * (1 << 20) + 7),
        "ünïcødé/naïve.txt": b"utf-8 names\n",
        "d/" + "n" * 99: b"a name of 101 bytes with its directory",
        "d/" + "long" * 40: b"a GNU long name",
        "deep/" * 30 + "leaf": b"x" * 1000,
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "run.sh").write_bytes(b"#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty-dir").mkdir()
    (root / "link").symlink_to("exactly-512")
    (root / "long-link").symlink_to("t" * 150)
    context = scan_context(root)
    sink = io.BytesIO()

    digest = write_archive(context, sink)

    expected = _tarfile_archive(context)
    assert sink.getvalue() == expected
    assert digest.size == len(expected) and digest.size % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(expected)) as archive:
        names = archive.getnames()
    assert "d/" + "long" * 40 in names and "link" in names

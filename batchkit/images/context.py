"""The build context: which files go in, the deterministic archive, and its content hash.

An image is named by its content, so the archive must depend on nothing but content: entries are
sorted by path, owners are 0/0 with no names, every mtime is 0, modes are reduced to 0644/0755,
and the tar format is fixed. The same tree therefore gives the same bytes, and the same hash,
whatever the file order on disk, the mtimes or the user who checked it out.

`.dockerignore` is honoured with Docker's rules: `#` comments, `!` re-includes, `*` and `?` stay
within one path segment, `**` spans any number of segments, a pattern that matches a directory
excludes everything under it, and the last matching pattern wins. The Dockerfile and
`.dockerignore` themselves are always sent, as Docker does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from msgspec import Struct

from batchkit.errors import UsageError
from batchkit.images.tarheaders import BLOCK, RECORD, header

_CHUNK = 1 << 20
TAG_HASH_LENGTH = 16
"""Hex digits of the content hash used in image tags (64 bits)."""


class IgnorePattern(Struct, frozen=True):
    """One `.dockerignore` line, compiled."""

    text: str
    negated: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """True when `path` or one of its parent directories matches (Docker's rule)."""
        if self.regex.fullmatch(path):
            return True
        parts = path.split("/")
        return any(self.regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts)))


def _compile(pattern: str) -> re.Pattern[str]:
    """Translate one cleaned Docker pattern into a regular expression over `/`-separated paths."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    # `**/` matches zero or more whole directories.
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as err:
        raise UsageError(
            f".dockerignore pattern {pattern!r} is invalid: {err}",
            hint="fix or remove that line of .dockerignore",
        ) from err


def _clean(pattern: str) -> str:
    """Docker cleans patterns like filepath.Clean: no leading `/`, no `./`, no doubled `/`."""
    cleaned = os.path.normpath(pattern).replace(os.sep, "/")
    cleaned = cleaned.lstrip("/")
    return "" if cleaned == "." else cleaned


class DockerIgnore:
    """The rules of one `.dockerignore` file."""

    def __init__(self, patterns: Sequence[IgnorePattern] = ()) -> None:
        self.patterns = tuple(patterns)

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        patterns: list[IgnorePattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            body = _clean(line[1:].strip() if negated else line)
            if not body:
                continue
            patterns.append(IgnorePattern(raw.strip(), negated, _compile(body)))
        return cls(patterns)

    @classmethod
    def load(cls, root: Path) -> DockerIgnore:
        path = root / ".dockerignore"
        if not path.is_file():
            return cls()
        return cls.parse(path.read_text(encoding="utf-8"))

    @property
    def has_exceptions(self) -> bool:
        return any(pattern.negated for pattern in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether the context-relative `path` (with `/`) is left out. The last match wins."""
        verdict = False
        for pattern in self.patterns:
            if pattern.matches(path):
                verdict = not pattern.negated
        return verdict


class ContextEntry(Struct, frozen=True):
    """One file, directory or symlink of the context, by its `/`-separated relative path."""

    path: str
    kind: str  # "file" | "dir" | "symlink"
    size: int = 0
    executable: bool = False
    target: str = ""


class BuildContext(Struct, frozen=True):
    """The files of a context directory that go to the builder, in archive order."""

    root: Path
    dockerfile: str
    entries: tuple[ContextEntry, ...]

    @property
    def file_count(self) -> int:
        return sum(1 for entry in self.entries if entry.kind == "file")


def check_context(root: Path, dockerfile: str = "Dockerfile") -> str:
    """The Dockerfile's path in the context at `root` (posix); UsageError when `root` is not a
    directory or has no such file."""
    if not root.is_dir():
        raise UsageError(
            f"build context {root} is not a directory",
            hint="give the directory that holds the Dockerfile, or use --preset",
        )
    dockerfile = PurePosixPath(dockerfile).as_posix()
    if not (root / dockerfile).is_file():
        raise UsageError(
            f"no {dockerfile} in build context {root}",
            hint="add a Dockerfile to that directory, or name another with --file",
        )
    return dockerfile


def scan_context(root: Path, dockerfile: str = "Dockerfile") -> BuildContext:
    """List what the context at `root` sends to the builder, sorted by path.

    Raises UsageError when `root` is not a directory or has no `dockerfile`.
    """
    root = root.resolve()
    dockerfile = check_context(root, dockerfile)
    ignore = DockerIgnore.load(root)
    always = {dockerfile, ".dockerignore"}
    entries: list[ContextEntry] = []
    for entry in _walk(root, "", ignore, always):
        entries.append(entry)
    entries.sort(key=lambda entry: entry.path)
    return BuildContext(root=root, dockerfile=dockerfile, entries=tuple(entries))


def _walk(
    root: Path, prefix: str, ignore: DockerIgnore, always: set[str]
) -> Iterator[ContextEntry]:
    directory = root / prefix if prefix else root
    try:
        children = sorted(os.scandir(directory), key=lambda child: child.name)
    except OSError as err:
        raise UsageError(
            f"cannot read {directory}: {err.strerror}",
            hint="fix the permissions, or exclude it in .dockerignore",
        ) from err
    for child in children:
        rel = f"{prefix}/{child.name}" if prefix else child.name
        excluded = ignore.excluded(rel) and rel not in always
        if child.is_symlink():
            if not excluded:
                yield ContextEntry(rel, "symlink", target=str(Path(child.path).readlink()))
        elif child.is_dir():
            if excluded and not ignore.has_exceptions:
                continue  # nothing below can be re-included: don't walk it
            if not excluded:
                yield ContextEntry(rel, "dir")
            yield from _walk(root, rel, ignore, always)
        elif child.is_file() and not excluded:
            info = child.stat()
            yield ContextEntry(
                rel,
                "file",
                size=info.st_size,
                executable=bool(info.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)),
            )
        # sockets, fifos and devices are never part of a build context


class ArchiveDigest(Struct, frozen=True):
    """The sha256 (hex) of the archive bytes and their length."""

    sha256: str
    size: int


class _Archive:
    """The archive as it is written: gathered into large blocks, which are hashed, counted and
    forwarded to `sink` (one hash update per megabyte, not three per file)."""

    def __init__(self, sink: BinaryIO | None) -> None:
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data
        self.size += len(data)
        if len(self._pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.sha256.update(self._pending)
            if self._sink is not None:
                self._sink.write(self._pending)
            self._pending = bytearray()


def _mode(entry: ContextEntry) -> int:
    if entry.kind == "dir":
        return 0o755
    if entry.kind == "symlink":
        return 0o777
    return 0o755 if entry.executable else 0o644


def write_archive(
    context: BuildContext,
    sink: BinaryIO | None = None,
    *,
    rewrite: Callable[[Path, ContextEntry], bytes | None] | None = None,
) -> ArchiveDigest:
    """Write the deterministic tar of `context` to `sink` (or nowhere) and return its digest.

    The bytes are those of `tarfile` in GNU format, streamed (`w|`): each entry's header
    (`tarheaders`), its data padded to 512 bytes, two zero blocks, and zeros up to a whole
    10,240-byte record. `rewrite(path, entry)` may give a file's content instead of what is on
    disk (None: as is). Raises UsageError when a file changed size or vanished while it was
    archived.
    """
    archive = _Archive(sink)
    root = str(context.root)
    for entry in context.entries:
        content = None
        if rewrite is not None and entry.kind == "file":
            content = rewrite(context.root / entry.path, entry)
        if content is not None:
            archive.write(header(entry.path, entry.kind, _mode(entry), len(content), ""))
            archive.write(content + b"\x00" * (-len(content) % BLOCK))
            continue
        archive.write(header(entry.path, entry.kind, _mode(entry), entry.size, entry.target))
        if entry.kind == "file":
            path = os.path.join(root, entry.path)  # noqa: PTH118 - pathlib costs more than a small file
            _copy_file(path, entry.size, archive)
    archive.write(b"\x00" * (2 * BLOCK))
    if archive.size % RECORD:
        archive.write(b"\x00" * (RECORD - archive.size % RECORD))
    archive.flush()
    return ArchiveDigest(archive.sha256.hexdigest(), archive.size)


def _copy_file(path: str, size: int, archive: _Archive) -> None:
    """Exactly `size` bytes of `path`, then zeros to the next 512-byte block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise UsageError(
            f"{path} vanished while the build context was archived",
            hint="run the build again once the files stop changing",
        ) from err
    except PermissionError as err:
        raise UsageError(
            f"cannot read {path} for the build context: permission denied",
            hint="make it readable, or exclude it in .dockerignore",
        ) from err
    try:
        if os.fstat(fd).st_size != size:
            raise _changed(path)
        left = size
        while left:
            data = os.read(fd, min(left, _CHUNK))
            if not data:
                raise _changed(path)
            archive.write(data)
            left -= len(data)
    finally:
        os.close(fd)
    if size % BLOCK:
        archive.write(b"\x00" * (BLOCK - size % BLOCK))


def _changed(path: str) -> UsageError:
    return UsageError(
        f"{path} changed while the build context was archived",
        hint="run the build again once the files stop changing",
    )


def content_tag(
    digest: ArchiveDigest,
    *,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> str:
    """The content hash an image is tagged with: the archive hash folded with what else decides
    the image (which Dockerfile, the build arguments, the platform). 16 hex digits."""
    recipe = json.dumps(
        {
            "archive": digest.sha256,
            "dockerfile": dockerfile,
            "build_args": dict(sorted((build_args or {}).items())),
            "platform": platform,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:TAG_HASH_LENGTH]

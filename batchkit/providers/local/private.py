"""The local engine's state is its owner's alone: directories 0700, files 0600.

The home holds the database, the staged job folders (scripts, `-e` env files with the secrets a
user named) and the function results a submitter unpickles: another local user must not read
them, nor drop a file there. Directories batchkit makes are created 0700; an existing home is
tightened only when it is recognisably batchkit's (it holds `engine.db`, or is empty), so that a
`BATCHKIT_HOME` pointing at a shared directory is never chmod-ed behind its owner's back.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENGINE_FILES = ("engine.db",)


def private_dir(path: Path) -> Path:
    """Create `path`, and each missing parent, as a directory only its owner may enter (made
    ones only: an existing directory keeps its mode)."""
    missing: list[Path] = []
    step = path
    while not step.is_dir() and step != step.parent:
        missing.append(step)
        step = step.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another process: theirs to set
        _chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    return path


def private_home(home: Path) -> Path:
    """The engine's home, 0700: made so, or tightened when it is batchkit's own."""
    if not home.is_dir():
        return private_dir(home)
    ours = any((home / name).exists() for name in ENGINE_FILES) or not any(home.iterdir())
    if ours:
        _chmod(home, 0o700)
    return home


def private_file(path: Path) -> None:
    """Make an existing file readable and writable by its owner only."""
    _chmod(path, 0o600)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (before a library creates it 0644)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_uid == os.getuid():
            path.chmod(mode)
    except OSError:
        pass  # not ours to change (or gone): the directory above it is what protects it

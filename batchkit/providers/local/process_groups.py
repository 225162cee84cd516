"""Finding and killing a local attempt's process group through /proc: a process's start time
(with its pid, what identifies it across a pid's reuse), its process group, the live members of a
group, and killing a group outright. Without /proc (not Linux) no start time or group is known,
and no process can be proven to belong to a group.
"""

from __future__ import annotations

import contextlib
import os
import signal


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return raw[raw.rfind(b")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def process_group(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) whose process group is `pgid`."""
    members: list[int] = []
    try:
        entries = list(os.scandir("/proc"))
    except OSError:  # no /proc (not Linux): nothing can be proven to belong to the group
        return members
    for entry in entries:
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

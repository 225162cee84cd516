"""Runs an attempt as a local process group: the executor for jobs without a container.

The argv runs exactly as given (no shell added) in the attempt's working directory, in a new
session and therefore a new process group, so that stopping it (timeout, termination, the main
node of an MNP job ending, or the main process exiting as a container's would) kills everything it
started. Output lines go to the log sink as they come. A process is identified by pid and start
time, so a later worker can kill it after a crash without hitting a recycled pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from batchkit.providers.local.executor import (
    REASON_FILE_VARIABLE,
    LogSink,
    RunSpec,
    is_multinode,
    read_reason,
    reason_file,
)
from batchkit.shipped import folder

MAX_LINE = 16 * 1024
"""Longer lines are split into events of this many bytes, as Docker's log drivers split them."""

READ_SIZE = 64 * 1024
"""The most output one read takes in; what has arrived by then is written to the log at once."""

EXIT_GRACE_S = 1.0
"""How long `poll` waits for the last output after the process exits (a daemonized grandchild may
hold the pipe open forever; the attempt must still end)."""


ENTRYPOINT = folder("dockerfiles") / "scripts" / "batchkit-entrypoint"
"""The preset images' entrypoint: a node of a multi-node job runs through it here too, for the
same rendezvous, hostfile and launch agent as in a container."""

ROOT_MPI = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
"""Open MPI refuses to run as root unless told. A process job runs as whoever runs the engine,
with no isolation to lose: when that is root, the job is root whatever mpirun thinks, so the
process executor lets it (the preset images run jobs as an unprivileged user instead)."""


def node_command(spec: RunSpec) -> tuple[list[str], dict[str, str]]:
    """The argv and environment a process attempt runs with: a node of a multi-node job goes
    through the entrypoint, with its hostfile in the attempt's directory."""
    env = dict(spec.env)
    if not is_multinode(env):
        return list(spec.argv), env
    env.setdefault("BATCHKIT_HOSTFILE", str(spec.workdir / "mpi-hostfile"))
    env[REASON_FILE_VARIABLE] = str(reason_file(spec.workdir))
    if os.geteuid() == 0:
        for name, value in ROOT_MPI.items():
            env.setdefault(name, value)
    return ["/bin/sh", str(ENTRYPOINT), *spec.argv], env


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def _process_group(pid: int) -> int | None:
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


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _messages(lines: list[bytes]) -> list[str]:
    """Output lines as log messages, each at most MAX_LINE bytes."""
    return [
        line[start : start + MAX_LINE].decode("utf-8", "replace")
        for line in lines
        for start in range(0, max(len(line), 1), MAX_LINE)
    ]


def exit_status(returncode: int) -> int:
    """A Popen return code as a container runtime reports it: 128 + N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class ProcessRun:
    """One running attempt: a process group whose output is pumped into a log sink."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        log: LogSink,
        clock: Callable[[], int],
        on_output_end: Callable[[], None] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self._on_output_end = on_output_end
        self._workdir = workdir
        self._process = process
        self._pgid = process.pid
        self._start_time = process_start_time(process.pid)
        self._clock = clock
        self._exited_at: float | None = None
        self._code: int | None = None
        self._drained = threading.Event()
        """Set once all the output is in the log (before `on_output_end` wakes the scheduler)."""
        assert process.stdout is not None
        self._pump = threading.Thread(
            target=self._pump_lines, args=(process.stdout, log), daemon=True
        )
        self._pump.start()

    def _pump_lines(self, stream: IO[bytes], log: LogSink) -> None:
        """Move the output into `log` as it comes, the complete lines of each read in one call;
        a line longer than MAX_LINE becomes several events, an unterminated last line one."""
        pending = b""
        try:
            with stream:
                while chunk := os.read(stream.fileno(), READ_SIZE):
                    *lines, pending = (pending + chunk).split(b"\n")
                    while len(pending) > MAX_LINE:
                        lines.append(pending[:MAX_LINE])
                        pending = pending[MAX_LINE:]
                    if lines:
                        log.extend(_messages(lines), self._clock())
                if pending:
                    log.extend(_messages([pending]), self._clock())
        finally:
            self._drained.set()
            if self._on_output_end is not None:
                self._wait_exit()
                self._on_output_end()

    def _wait_exit(self) -> None:
        """Wait (without reaping) until the process has exited: the output usually ends as it
        exits, and a scheduler woken a moment too early would see it still running and sleep a
        whole period."""
        if hasattr(os, "waitid"):
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOWAIT)

    def poll(self) -> int | None:
        if self._code is None:
            if not self._has_exited():
                return None
            # The main process is gone but not yet reaped, so its pid still names our group:
            # like a container, take the rest of the group with it, then reap.
            _kill_group(self._pgid)
            self._code = self._process.wait()
            self._exited_at = time.monotonic()
        drained = self._drained.is_set()
        if not drained and time.monotonic() - (self._exited_at or 0.0) < EXIT_GRACE_S:
            return None
        return exit_status(self._code)

    @property
    def reason(self) -> str | None:
        """Why the attempt ended, when its node said (see `executor.REASON_FILE_VARIABLE`)."""
        if self._code is None or self._workdir is None:
            return None
        return read_reason(self._workdir)

    def _has_exited(self) -> bool:
        if not hasattr(os, "waitid"):  # e.g. macOS: reap at once (the group is then not killed)
            return self._process.poll() is not None
        try:
            info = os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self._process.poll() is not None
        return info is not None

    def kill(self) -> None:
        if self._code is None:
            _kill_group(self._pgid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._code = self._process.wait(timeout=5)
                self._exited_at = time.monotonic()

    def identity(self) -> dict[str, Any]:
        return {"pid": self._process.pid, "pgid": self._pgid, "start_time": self._start_time}


class ProcessExecutor:
    """`Executor` running each attempt as a local process group (see the module docstring)."""

    name = "process"

    def __init__(
        self,
        *,
        clock: Callable[[], int] = _now_ms,
        on_output_end: Callable[[], None] | None = None,
    ) -> None:
        """`on_output_end` is called (from a pump thread) when an attempt's output ends, which is
        almost always when it exits: the scheduler uses it to wake up at once."""
        self._clock = clock
        self._on_output_end = on_output_end

    def start(self, spec: RunSpec, log: LogSink) -> ProcessRun:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        argv, env = node_command(spec)
        process = subprocess.Popen(
            argv,
            cwd=spec.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        return ProcessRun(process, log, self._clock, self._on_output_end, spec.workdir)

    def reap_orphan(self, identity: Mapping[str, Any]) -> None:
        """Kill what is left of an attempt whose worker died, unless its pid was reused.

        The group is killed when its leader is still the recorded process (same start time), or
        when the leader is gone but members remain and no other process has taken the leader's pid
        (Linux does not hand out a pid that is still some group's id)."""
        pid = identity.get("pid")
        if not isinstance(pid, int) or pid <= 1:
            return
        pgid = identity.get("pgid", pid)
        recorded = identity.get("start_time")
        if not isinstance(pgid, int) or pgid <= 1:
            return
        current = process_start_time(pid)
        if current is not None:
            if recorded is not None and current != recorded:
                return  # the pid now belongs to someone else
            if _process_group(pid) != pgid:
                return
            _kill_group(pgid)
            return
        if group_members(pgid):
            _kill_group(pgid)

"""Runs an attempt as a local process group: the executor for jobs without a container.

The argv runs exactly as given (no shell added) in the attempt's working directory, in a new
session and therefore a new process group, so that stopping it (timeout, termination, the main
node of an MNP job ending, or the main process exiting as a container's would) kills everything it
started. Output lines go to the log sink as they come. A process is identified by pid and start
time, so a later worker can kill it after a crash without hitting a recycled pid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchkit.providers.local.executor import (
    REASON_FILE_VARIABLE,
    LogSink,
    RunSpec,
    is_multinode,
    read_reason,
    reason_file,
)
from batchkit.shipped import folder

log = logging.getLogger("batchkit.local.process")

MAX_LINE = 16 * 1024
"""Longer lines are split into events of this many bytes, as Docker's log drivers split them."""

READ_SIZE = 64 * 1024
"""The most output one read takes in; what has arrived by then is written to the log at once."""

EXIT_GRACE_S = 1.0
"""How long `poll` waits for the last output after the process exits (a daemonized grandchild may
hold the pipe open forever; the attempt must still end)."""


PUMP_IDLE_S = 2.0
"""How long the output thread waits for a next attempt before it ends."""

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


class _Pump:
    """One thread that moves the output of every running attempt of an executor into its log,
    and notices each exit (a pidfd per process where Linux has them): no thread per attempt.

    The thread starts with the first attempt and ends once no attempt has been left for
    `PUMP_IDLE_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[ProcessRun] = []
        self._thread: threading.Thread | None = None
        self._wake_w = -1

    def add(self, run: ProcessRun) -> None:
        with self._lock:
            self._pending.append(run)
            if self._thread is None:
                self._start_thread()
            else:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._wake_w, b"\0")

    def _start_thread(self) -> None:
        """(With the lock held.)"""
        wake_r, self._wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(
            target=self._loop, args=(wake_r,), name="batchkit-output", daemon=True
        )
        self._thread.start()

    def _loop(self, wake_r: int) -> None:
        selector = selectors.DefaultSelector()
        selector.register(wake_r, selectors.EVENT_READ, None)
        watched = 0
        idle = False
        try:
            while True:
                with self._lock:
                    for run in self._pending:
                        for fd in run.watch():
                            selector.register(fd, selectors.EVENT_READ, run)
                            watched += 1
                    self._pending.clear()
                    if not watched and idle:
                        self._thread = None
                        os.close(self._wake_w)
                        return
                events = selector.select(None if watched else PUMP_IDLE_S)
                idle = not watched and not events
                for key, _ in events:
                    if key.data is None:
                        with contextlib.suppress(BlockingIOError, OSError):
                            os.read(wake_r, 4096)
                    elif _ready(key.data, key.fd):
                        selector.unregister(key.fd)
                        key.data.release(key.fd)
                        watched -= 1
        finally:
            selector.close()
            os.close(wake_r)
            with self._lock:
                if self._thread is threading.current_thread():  # an unexpected error
                    log.error("the output thread stopped; a new one takes over")
                    os.close(self._wake_w)
                    self._thread = None
                    if self._pending:
                        self._start_thread()


def _ready(run: ProcessRun, fd: int) -> bool:
    """`run.ready(fd)`; an error moving one attempt's output ends that output, not the others'."""
    try:
        return run.ready(fd)
    except Exception:
        log.exception("could not move an attempt's output to its log")
        run.abandon()
        return True


class ProcessRun:
    """One running attempt: a process group whose output the executor's pump moves into a log
    sink."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        log: LogSink,
        clock: Callable[[], int],
        on_output_end: Callable[[], None] | None = None,
        workdir: Path | None = None,
        pump: _Pump | None = None,
    ) -> None:
        self._on_output_end = on_output_end
        self._workdir = workdir
        self._process = process
        self._pgid = process.pid
        self._start_time = process_start_time(process.pid)
        self._clock = clock
        self._log = log
        self._exited_at: float | None = None
        self._code: int | None = None
        self._pending = b""
        self._drained = threading.Event()
        """Set once all the output is in the log."""
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # opened before anyone can reap it
            self._pidfd = os.pidfd_open(process.pid)
        self._gone = False
        """Whether the pump saw the process exit (its pidfd became readable)."""
        assert process.stdout is not None
        self._stdout = process.stdout
        (pump or _Pump()).add(self)

    def watch(self) -> list[int]:
        """The descriptors the pump waits on: the output pipe, and the process's pidfd."""
        fds = [self._stdout.fileno()]
        if self._pidfd is not None:
            fds.append(self._pidfd)
        return fds

    def ready(self, fd: int) -> bool:
        """The pump's call when `fd` is readable; True when it is done with `fd` (the pump then
        stops watching it and calls `release`)."""
        if fd == self._pidfd:
            self._gone = True
            self._maybe_ended()
            return True
        chunk = b""
        with contextlib.suppress(OSError):
            chunk = os.read(fd, READ_SIZE)
        if chunk:
            self._take(chunk)
            return False
        if self._pending:
            self._log.extend(_messages([self._pending]), self._clock())
            self._pending = b""
        self._drained.set()
        self._maybe_ended()
        return True

    def abandon(self) -> None:
        """Give up on the output (the pump failed on it): the attempt can end."""
        self._drained.set()
        self._maybe_ended()

    def release(self, fd: int) -> None:
        """Close `fd` once the pump no longer watches it."""
        if fd == self._pidfd:
            self._pidfd = None
            os.close(fd)
        else:
            self._stdout.close()

    def _take(self, chunk: bytes) -> None:
        """Log the complete lines of `chunk` in one call; a line longer than MAX_LINE becomes
        several events, an unterminated last line waits for the rest."""
        *lines, pending = (self._pending + chunk).split(b"\n")
        while len(pending) > MAX_LINE:
            lines.append(pending[:MAX_LINE])
            pending = pending[MAX_LINE:]
        self._pending = pending
        if lines:
            self._log.extend(_messages(lines), self._clock())

    def _maybe_ended(self) -> None:
        """Wake the scheduler once the output is drained and the process has exited (or, with no
        pidfd to tell, once the output is drained: it has most likely exited)."""
        if self._on_output_end is None or not self._drained.is_set():
            return
        if self._gone or self._pidfd is None:
            self._on_output_end()

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
        self._pump = _Pump()

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
        return ProcessRun(
            process, log, self._clock, self._on_output_end, spec.workdir, pump=self._pump
        )

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

"""One running attempt of the process executor (`ProcessRun`: a process group, its exit and
its reason) and the one output thread per executor that moves the output of every running attempt
into its log sink, each read's complete lines in one write, a line longer than `MAX_LINE` split
into several events as Docker's log drivers split it, and that notices each exit by a pidfd.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchkit.providers.local.executor import LogSink, read_reason
from batchkit.providers.local.process_groups import kill_group, process_start_time

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


class OutputPump:
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
        pump: OutputPump | None = None,
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
        (pump or OutputPump()).add(self)

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
            kill_group(self._pgid)
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
            kill_group(self._pgid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._code = self._process.wait(timeout=5)
                self._exited_at = time.monotonic()

    def identity(self) -> dict[str, Any]:
        return {"pid": self._process.pid, "pgid": self._pgid, "start_time": self._start_time}

"""The local engine's worker: the one process per home that runs the scheduler.

`submit()` spawns it in the background when no worker holds the home's lock (and it exits once it
has been idle for a while); `batchkit local worker` runs it in the foreground with `serve()`.
Exactly one worker serves a home: it holds an exclusive `flock` on `<home>/worker.lock` (which also
records its pid) for as long as it runs, so a crashed worker's lock vanishes with it.

Idle exit closes a race with submitters: the worker releases the lock first and only then looks for
unfinished jobs once more (a submitter inserts first and only then checks the lock), so a job is
never left without a worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from batchkit.errors import ConflictError
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.private import create_private_file, private_file, private_home
from batchkit.providers.local.store import Store

if TYPE_CHECKING:
    import logging

    from batchkit.providers.local.executors import ExecutorSelector
    from batchkit.providers.local.scheduler import Scheduler


def _log() -> logging.Logger:
    """The worker's logger; `logging` is the worker's to import, not every submitter's."""
    import logging

    return logging.getLogger("batchkit.local.worker")


ACTIVE_PERIOD_S = 0.005
"""Pause after a pass that changed something: short, so the next exit is noticed promptly."""
MAX_PERIOD_S = 0.05
"""Longest pause while jobs are not final (passes that change nothing double the pause)."""
BACKOFF_AFTER_S = 1.0
"""Back off only after this long without a change."""
IDLE_PERIOD_S = 0.1
"""Pause between passes with nothing to do (a new submission is noticed within this time)."""
LOCK_WAIT_S = 1.0
DEFAULT_IDLE_EXIT_S = 60.0

LOCK_NAME = "worker.lock"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class WorkerBusyError(ConflictError):
    """Another worker already serves this home (there is one worker per home)."""

    def __init__(self, home: Path, pid: int | None) -> None:
        who = f"worker (pid {pid})" if pid and pid > 0 else "worker"
        super().__init__(
            f"another local engine {who} already serves {home}",
            hint="it keeps running your jobs; stop it first (kill its pid) to run one here",
        )
        self.home = home
        self.pid = pid


class WorkerLock:
    """The exclusive lock that makes a process the home's worker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0, *, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Take the lock, retrying for up to `wait` seconds; record this pid in it."""
        private_home(self.path.parent)  # `local worker` on a new home makes it, 0700
        deadline = time.monotonic() + wait
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        private_file(self.path)  # one an older batchkit made 0644
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                sleep(0.02)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def worker_pid(home: Path) -> int | None:
    """The pid of the worker serving `home`, or None when no worker holds the lock."""
    path = home / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def spawn_worker(
    home: Path,
    *,
    idle_exit: float = DEFAULT_IDLE_EXIT_S,
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached background worker for `home` (its stderr goes to `<home>/worker.log`)."""
    home = private_home(home.absolute())  # the worker runs inside it: absolute, not nested
    argv = [
        sys.executable,
        "-m",
        "batchkit.providers.local.worker",
        "--home",
        str(home),
        "--idle-exit",
        str(idle_exit),
    ]
    create_private_file(home / "worker.log")
    private_file(home / "worker.log")
    with open(home / "worker.log", "ab") as errors:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
            close_fds=True,
            env=dict(os.environ if environment is None else environment),
            cwd=home,
        )


def serve(
    home: Path,
    *,
    idle_exit: float | None,
    clock: Callable[[], int] = _now_ms,
    sleep: Callable[[float], None] | None = None,
    capacity: Capacity | None = None,
    selector: ExecutorSelector | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the scheduler for `home` until SIGINT/SIGTERM, `stop`, or `idle_exit` idle seconds.

    Between passes it waits with `sleep` (default: until the period ends or an attempt ends,
    whichever comes first). Raises `WorkerBusyError` if another worker already serves this home.
    Attempts still running when the worker is told to stop are killed and failed (or retried) with
    a reason that says so."""
    from batchkit.providers.local.process_groups import process_start_time

    home = home.absolute()
    lock = WorkerLock(home / LOCK_NAME)
    if not lock.acquire(LOCK_WAIT_S, sleep=sleep or time.sleep):
        raise WorkerBusyError(home, worker_pid(home))
    stopping = stop or threading.Event()
    restore = _install_signal_handlers(stopping)
    capacity = capacity or Capacity.of_this_machine()
    pid = os.getpid()
    worker_id = f"{pid}@{process_start_time(pid)}"
    _log().info("serving %s with %s", home, capacity.describe())
    try:
        store = Store(home / "engine.db")
        store.set_meta("capacity", _capacity_json(capacity))
        scheduler = _new_scheduler(home, store, capacity, clock, selector, worker_id)

        def pause(seconds: float) -> None:
            (sleep or scheduler.pause)(seconds)

        idle_since: float | None = None
        period = ACTIVE_PERIOD_S
        progress_at = time.monotonic()
        while not stopping.is_set():
            busy = scheduler.tick()
            now = time.monotonic()
            if scheduler.progressed:
                progress_at = now
            if busy:
                idle_since = None
                # Short passes while things happen; back off while long attempts just run.
                recent = now - progress_at < BACKOFF_AFTER_S
                period = ACTIVE_PERIOD_S if recent else min(period * 2, MAX_PERIOD_S)
                pause(period)
                continue
            idle_since = idle_since if idle_since is not None else now
            if idle_exit is not None and now - idle_since >= idle_exit:
                lock.release()
                if not store.has_active_jobs() or not lock.acquire(LOCK_WAIT_S):
                    _log().info("idle for %.0f s: exiting", idle_exit)
                    return
                # A job came in while we let go: serve it with a fresh view of the store.
                scheduler = _new_scheduler(home, store, capacity, clock, selector, worker_id)
                idle_since = None
                continue
            pause(IDLE_PERIOD_S)
        scheduler.shutdown(f"The local worker (pid {pid}) was stopped while the job ran")
    finally:
        lock.release()
        restore()


def _new_scheduler(
    home: Path,
    store: Store,
    capacity: Capacity,
    clock: Callable[[], int],
    selector: ExecutorSelector | None,
    worker_id: str,
) -> Scheduler:
    from batchkit.providers.local.scheduler import Scheduler

    scheduler = Scheduler(
        home, store=store, capacity=capacity, clock=clock, selector=selector, worker_id=worker_id
    )
    scheduler.recover(
        "The local worker running this job stopped unexpectedly (crashed or was killed)"
    )
    return scheduler


def _capacity_json(capacity: Capacity) -> str:
    return json.dumps(capacity.to_dict())


def _install_signal_handlers(stopping: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, old)

    return restore


def main(argv: list[str] | None = None) -> int:
    import argparse
    import logging

    parser = argparse.ArgumentParser(
        prog="python -m batchkit.providers.local.worker",
        description="Run the batchkit local engine's worker for one home.",
    )
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        help="exit after this many idle seconds (default: run until SIGINT/SIGTERM)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d: %(message)s")
    try:
        serve(args.home, idle_exit=args.idle_exit)
    except WorkerBusyError as err:  # lost the race to start: the other worker serves the home
        _log().info("%s", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

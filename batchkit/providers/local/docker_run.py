"""One started container of a local job attempt, from start to removal: `LogPump` copies its
stdout and stderr into the attempt's log sink as they come (with Docker's own timestamps), and
`DockerRun` polls it for its exit code (out of memory, removed behind batchkit's back, or an engine
gone too long each said as the reason), kills it and removes it once its last log line was read.
`docker_executor` makes both when it starts a container.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from batchkit.errors import EngineError
from batchkit.providers.local.executor import LogSink, read_reason

# What AWS Batch reports for a container the kernel killed for exceeding its memory.
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"

_KILLED_EXIT_CODE = 137  # 128 + SIGKILL, what a killed container reports
_ENGINE_LOST_EXIT_CODE = 255
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z ")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def split_log_timestamp(line: str) -> tuple[int | None, str]:
    """Split Docker's `2026-11-25T12:00:00.123456789Z ` prefix off a log line: (epoch ms, text)."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None, line
    seconds = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    millis = int((match.group(2) or "0")[:3].ljust(3, "0"))
    return int(seconds.timestamp()) * 1000 + millis, line[match.end() :]


def remove_container(api: Any, container_id: str, description: str) -> None:
    """Kill (when running) and remove a container with its anonymous volumes; a container that is
    already gone is fine. `api` is a `docker.APIClient`."""
    try:
        api.remove_container(container_id, v=True, force=True)
    except NotFound:
        return
    except (DockerException, OSError) as err:
        raise EngineError(
            f"could not remove {description} ({container_id[:12]}): {err}",
            hint=f"remove it by hand: docker rm -f {container_id}",
        ) from err


class LogPump:
    """Copies a container's stdout and stderr into a LogSink, line by line, as they come.

    Reads `logs(stream=True, follow=True, timestamps=True)` on a daemon thread; the stream ends when
    the container stops (or is removed). One Docker log message is one event with Docker's own
    timestamp; a line over 16 KiB arrives as several messages, as it reaches CloudWatch from a Batch
    container (and as the process executor splits it).
    """

    def __init__(self, container: Container, sink: LogSink) -> None:
        self._container = container
        self._sink = sink
        self._thread = threading.Thread(
            target=self._run, name=f"batchkit-logs-{container.short_id}", daemon=True
        )
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        copied = 0
        try:
            for chunk in self._container.logs(stream=True, follow=True, timestamps=True):
                self._emit(chunk)
                copied += 1
            # A follow stream can also end early (a dropped connection, an engine restart):
            # read the whole log once more and copy only the messages not seen yet.
            for index, chunk in enumerate(
                self._container.logs(stream=True, follow=False, timestamps=True)
            ):
                if index >= copied:
                    self._emit(chunk)
        except (DockerException, OSError) as err:  # the container was removed mid-stream
            self.error = err

    def _emit(self, chunk: bytes) -> None:
        for piece in _LINE.findall(chunk.decode("utf-8", errors="replace")):
            timestamp, body = split_log_timestamp(piece)
            self._sink.append(body.removesuffix("\n"), timestamp)


class DockerRun:
    """One started container. `reason` says why it ended when Docker knows more than the exit code
    (out of memory, removed behind batchkit's back, engine gone); the engine may use it as the
    attempt's status reason."""

    def __init__(
        self,
        container: Container,
        pump: LogPump,
        *,
        job_id: str,
        attempt: int,
        clock: Callable[[], float] = time.monotonic,
        log_grace: float = 10.0,
        engine_grace: float = 120.0,
        workdir: Path | None = None,
    ) -> None:
        self._workdir = workdir
        self._container = container
        self._pump = pump
        self._job_id = job_id
        self._attempt = attempt
        self._clock = clock
        self._log_grace = log_grace
        self._engine_grace = engine_grace
        self._lock = threading.Lock()
        self._exit_code: int | None = None
        self._exited_at: float | None = None
        self._unreachable_since: float | None = None
        self._removed = False
        self.reason: str | None = None

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    def poll(self) -> int | None:
        """The exit code once the container stopped and its output was read, else None.

        Makes one quick engine call. An engine that stays unreachable for `engine_grace` seconds
        ends the attempt with exit code 255 rather than leaving the job RUNNING forever.
        """
        with self._lock:
            if self._exit_code is not None:
                return self._exit_code
            try:
                self._container.reload()
            except NotFound:
                self._finish(_KILLED_EXIT_CODE, f"container {self.container_id} disappeared")
                return self._exit_code
            except (DockerException, OSError) as err:
                now = self._clock()
                if self._unreachable_since is None:
                    self._unreachable_since = now
                elif now - self._unreachable_since >= self._engine_grace:
                    self._finish(_ENGINE_LOST_EXIT_CODE, f"Docker engine unreachable: {err}")
                    return self._exit_code
                return None
            self._unreachable_since = None
            state: dict[str, Any] = self._container.attrs.get("State", {})
            if state.get("Status") not in ("exited", "dead"):
                return None
            # Wait (without blocking) for the log pump to read the last lines before removal.
            now = self._clock()
            if self._exited_at is None:
                self._exited_at = now
            if self._pump.is_alive() and now - self._exited_at < self._log_grace:
                return None
            reason = OOM_REASON if state.get("OOMKilled") else None
            self._finish(int(state.get("ExitCode", _ENGINE_LOST_EXIT_CODE)), reason)
            return self._exit_code

    def kill(self) -> None:
        """Kill the container (SIGKILL) and remove it. Safe to call twice; raises EngineError when
        the engine cannot be reached (the container id stays in `identity()` for a later reap)."""
        with self._lock:
            if self._exit_code is None:
                self._exit_code = _KILLED_EXIT_CODE
                self.reason = "killed"
            self._remove()
        self._pump.join(timeout=5.0)

    def identity(self) -> dict[str, Any]:
        return {
            "executor": "docker",
            "container_id": self.container_id,
            "container_name": self._container.name,
            "job_id": self._job_id,
            "attempt": self._attempt,
        }

    def _finish(self, exit_code: int, reason: str | None) -> None:
        self._exit_code = exit_code
        if reason is None and self._workdir is not None:
            reason = read_reason(self._workdir)  # what the node said, when it said something
        self.reason = reason
        # The exit code is known; a container that cannot be removed now is reaped by label later.
        with contextlib.suppress(EngineError):
            self._remove()

    def _remove(self) -> None:
        if self._removed:
            return
        remove_container(
            self._container.client.api, self.container_id, f"the container of job {self._job_id}"
        )
        self._removed = True

"""The seam between the local scheduler and what actually runs a job attempt.

The process executor runs the attempt as a local process group; the Docker executor runs it in a
container. The scheduler only ever sees `Executor` and `Run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from batchkit.models import Resources


class LogSink(Protocol):
    """Where an attempt's output goes: one CloudWatch-like log stream."""

    def append(self, message: str, timestamp: int | None = None) -> None:
        """Append one line (without its newline); `timestamp` in epoch ms, default now."""
        ...

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        """Append lines that arrived together, all with one `timestamp`."""
        ...


@dataclass(frozen=True)
class RunSpec:
    """One attempt of one job (or one MNP node), ready to start.

    `argv` is the container command (batchkit's wrapper); `env` is the complete environment the job
    sees (AWS_BATCH_* variables included); `workdir` is the attempt's own directory on the host
    (the process executor's cwd; the Docker executor mounts it). `stage_dir` is the host directory
    that plays the job's S3 folder (mounted read-only into containers at the same path).
    """

    job_id: str
    attempt: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: Path
    resources: Resources
    image: str | None = None
    stage_dir: Path | None = None


class Run(Protocol):
    """A started attempt."""

    def poll(self) -> int | None:
        """The exit code once the attempt ended, else None. Never blocks."""
        ...

    def kill(self) -> None:
        """Stop the attempt now (SIGKILL to the whole process group, or stop the container) and
        release what it held. Safe to call twice."""
        ...

    def identity(self) -> dict[str, Any]:
        """JSON-able facts to find and kill this attempt after a worker crash (pid and start time,
        or a container id)."""
        ...


class Executor(Protocol):
    name: str

    def start(self, spec: RunSpec, log: LogSink) -> Run:
        """Start the attempt; its stdout and stderr lines go to `log` as they come."""
        ...

    def reap_orphan(self, identity: Mapping[str, Any]) -> None:
        """Kill and clean up an attempt left behind by a worker that died (kill -9)."""
        ...

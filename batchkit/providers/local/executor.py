"""The seam between the local scheduler and what actually runs a job attempt.

The process executor runs the attempt as a local process group; the Docker executor runs it in a
container. The scheduler only ever sees `Executor` and `Run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from msgspec import Struct

from batchkit.models import Resources

REASON_FILE_VARIABLE = "BATCHKIT_STATUS_REASON_FILE"
"""Where a node of a multi-node job may say why the job failed (the entrypoint's supervisor names
a lost node there); the engine makes it the attempt's status reason. Local engine only: on AWS
Batch the reason is Batch's own and the main node's log says which node was lost."""

MAX_REASON = 1024


def is_multinode(env: Mapping[str, str]) -> bool:
    try:
        return int(env.get("AWS_BATCH_JOB_NUM_NODES", "1")) > 1
    except ValueError:
        return False


def reason_file(workdir: Path) -> Path:
    return workdir / "status-reason"


def read_reason(workdir: Path) -> str | None:
    """The status reason a node wrote for its attempt, if any (first line, bounded)."""
    try:
        with reason_file(workdir).open("rb") as file:
            raw = file.read(MAX_REASON)
    except OSError:
        return None
    line = raw.decode("utf-8", "replace").strip().splitlines()
    return line[0] if line else None


class LogSink(Protocol):
    """Where an attempt's output goes: one CloudWatch-like log stream."""

    def append(self, message: str, timestamp: int | None = None) -> None:
        """Append one line (without its newline); `timestamp` in epoch ms, default now."""
        ...

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        """Append lines that arrived together, all with one `timestamp`."""
        ...


class RunSpec(Struct, frozen=True):
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

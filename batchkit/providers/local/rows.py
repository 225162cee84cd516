"""The rows of the local engine's database as Python values, and the Batch-shaped view of a row.

`Spec` is what was submitted (one per top-level job, shared by its children), `JobRow` one row of
`jobs`, `AttemptRow` one row of `attempts`; `to_job` turns a row into the `Job` every command shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import Struct, field
from msgspec.structs import astuple

from batchkit.models import (
    Attempt,
    Dependency,
    DependencyType,
    Job,
    JobStatus,
    Resources,
)


class Spec(Struct, frozen=True):
    """What was submitted, as the engine keeps it (one per top-level job, shared by children).

    `s3_folder_url` is the job folder, already resolved from the request's `PCLUSTER_JOB_S3_URL`
    when the request named none."""

    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    queue: str = "local"
    array_size: int | None = None
    nodes: int = 1
    main_node: int = 0
    depends_on: tuple[Dependency, ...] = ()
    retry_attempts: int = 1
    timeout: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    s3_folder_url: str | None = None
    job_definition: str = "batchkit-local:1"
    executor: str = "auto"
    share: str | None = None
    priority: int | None = None
    share_weight: float = 1.0
    """The weight factor of `share` when the job was submitted (see `shares`)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "command": list(self.command),
                "environment": dict(self.environment),
                "resources": {
                    "vcpus": self.resources.vcpus,
                    "memory": self.resources.memory,
                    "gpus": self.resources.gpus,
                },
                "image": self.image,
                "queue": self.queue,
                "array_size": self.array_size,
                "nodes": self.nodes,
                "main_node": self.main_node,
                "depends_on": [d.to_api() for d in self.depends_on],
                "retry_attempts": self.retry_attempts,
                "timeout": self.timeout,
                "tags": dict(self.tags),
                "s3_folder_url": self.s3_folder_url,
                "job_definition": self.job_definition,
                "executor": self.executor,
                "share": self.share,
                "priority": self.priority,
                "share_weight": self.share_weight,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Spec:
        raw = json.loads(text)
        res = raw["resources"]
        return cls(
            name=raw["name"],
            command=tuple(raw["command"]),
            environment=raw["environment"],
            resources=Resources(res["vcpus"], res["memory"], res["gpus"]),
            image=raw["image"],
            queue=raw["queue"],
            array_size=raw["array_size"],
            nodes=raw["nodes"],
            main_node=raw["main_node"],
            depends_on=tuple(
                Dependency(d.get("jobId"), DependencyType(d["type"]) if "type" in d else None)
                for d in raw["depends_on"]
            ),
            retry_attempts=raw["retry_attempts"],
            timeout=raw["timeout"],
            tags=raw["tags"],
            s3_folder_url=raw["s3_folder_url"],
            job_definition=raw["job_definition"],
            executor=raw["executor"],
            share=raw.get("share"),  # absent from rows written before fair share
            priority=raw.get("priority"),
            share_weight=raw.get("share_weight", 1.0),
        )


class JobRow(Struct):
    """One row of `jobs`: a top-level job (with its spec) or a child (without)."""

    seq: int
    id: str
    parent_id: str | None
    idx: int | None
    runs: bool
    status: JobStatus
    status_reason: str | None
    created_at: int
    started_at: int | None
    stopped_at: int | None
    exit_code: int | None
    reason: str | None
    attempts: int
    status_summary: dict[str, int] | None
    spec: Spec | None

    _COLUMNS = (
        "seq, id, parent_id, idx, runs, status, status_reason, created_at, started_at, "
        "stopped_at, exit_code, reason, attempts, status_summary, spec"
    )

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> JobRow:
        return cls(
            seq=row[0],
            id=row[1],
            parent_id=row[2],
            idx=row[3],
            runs=bool(row[4]),
            status=JobStatus(row[5]),
            status_reason=row[6],
            created_at=row[7],
            started_at=row[8],
            stopped_at=row[9],
            exit_code=row[10],
            reason=row[11],
            attempts=row[12],
            status_summary=json.loads(row[13]) if row[13] else None,
            spec=Spec.from_json(row[14]) if row[14] else None,
        )


class AttemptRow(Struct):
    job_id: str
    number: int
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    log_stream: str | None = None
    executor: str | None = None
    identity: dict[str, Any] | None = None
    worker: str | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        """The row in the column order of `attempts` (the field order), identity as JSON."""
        values = list(astuple(self))
        values[-2] = json.dumps(self.identity) if self.identity is not None else None
        return tuple(values)

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> AttemptRow:
        job_id, number, started, stopped, code, reason, status_reason, stream, executor = row[:9]
        identity = json.loads(row[9]) if row[9] else None
        return cls(
            job_id, number, started, stopped, code, reason, status_reason, stream, executor,
            identity, row[10],
        )  # fmt: skip


class NewRow(Struct, frozen=True):
    """A row `insert_job` writes."""

    id: str
    parent_id: str | None
    idx: int | None
    runs: bool
    resources: Resources


class TerminateRequest(Struct, frozen=True):
    seq: int
    job_id: str
    reason: str


def to_job(row: JobRow, spec: Spec, attempts: Sequence[AttemptRow], log_group: str) -> Job:
    """The Batch-shaped view of a row; `spec` is the row's own or its parent's."""
    is_node = row.parent_id is not None and spec.nodes > 1
    is_child = row.parent_id is not None and not is_node
    command = list(spec.command)
    finished = [a for a in attempts if a.stopped_at is not None]
    latest = attempts[-1] if attempts else None
    return Job(
        job_id=row.id,
        name=spec.name,
        status=row.status,
        queue=spec.queue,
        job_definition=spec.job_definition,
        created_at=row.created_at,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        status_reason=row.status_reason,
        exit_code=row.exit_code,
        reason=row.reason,
        command=command,
        resources=spec.resources,
        image=spec.image,
        array_size=None if is_child else spec.array_size,
        nodes=spec.nodes,
        main_node=spec.main_node,
        depends_on=list(spec.depends_on),
        attempts=[
            Attempt(
                started_at=a.started_at,
                stopped_at=a.stopped_at,
                exit_code=a.exit_code,
                reason=a.reason,
                log_stream=a.log_stream,
                status_reason=a.status_reason,
            )
            for a in finished
        ],
        retry_attempts=spec.retry_attempts,
        timeout=spec.timeout,
        log_stream=latest.log_stream if latest is not None else None,
        log_group=log_group,
        s3_folder_url=spec.s3_folder_url,
        status_summary=dict(row.status_summary or {}),
    )

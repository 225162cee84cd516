"""The AWS Batch job model that every provider speaks: statuses, ids, specifications, requests
and the jobs a provider reports.

These are `msgspec.Struct`s, not dataclasses or pydantic models, so the CLI starts fast: Python
3.11 compiles every generated method of a dataclass when its class is created (0.5-1 ms a class
here, about 20 ms of `batchkit sub`'s start-up for the records on its path), where a Struct's class
is made in C in a few microseconds. They behave as frozen dataclasses do (fields in order,
defaults, equality, hashing, repr); change one with `msgspec.structs.replace(obj, field=value)`.
Times are epoch milliseconds, as Batch reports them. A provider turns its own records into these;
everything above the providers works only with these types. Log events are in
`batchkit.logmodel`, queues, hosts and subscriptions in `batchkit.clustermodel`: a submission
imports neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from msgspec import Struct, field


class JobStatus(StrEnum):
    """The seven statuses of an AWS Batch job, in lifecycle order."""

    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def order(self) -> int:
        return STATUS_ORDER.index(self)

    @classmethod
    def parse_list(cls, text: str) -> list[JobStatus]:
        """Parse awsbstat's `-s` value: a comma list, case-insensitive, `ALL` for every status.

        Duplicates are dropped, first occurrence wins. Raises ValueError naming a bad value.
        """
        result: list[JobStatus] = []
        for raw in text.split(","):
            word = raw.strip().upper()
            if not word:
                continue
            if word == "ALL":
                candidates = list(STATUS_ORDER)
            else:
                try:
                    candidates = [cls(word)]
                except ValueError:
                    allowed = ", ".join(s.value for s in STATUS_ORDER)
                    raise ValueError(
                        f"unknown status {raw.strip()!r}; use one of {allowed} or ALL"
                    ) from None
            for status in candidates:
                if status not in result:
                    result.append(status)
        if not result:
            raise ValueError("no status given; use a comma list such as RUNNING,FAILED or ALL")
        return result


#: Tags batchkit puts on a `SubmitRequest` for the provider (never sent to Batch as such):
#: the local executor the user asked for (`--executor`: auto, process or docker), and
#: `--spot-retry` (on AWS: retry only attempts whose host was reclaimed; ignored locally).
EXECUTOR_TAG = "batchkit:executor"
#: Given to a job that must fetch its folder: its image, named by the wrapper's error should the
#: image have no S3 client (see `jobs.wrapper`; the AWS provider fills in a definition's image).
JOB_IMAGE_VARIABLE = "BATCHKIT_JOB_IMAGE"
EXECUTOR_CHOICES = ("auto", "process", "docker")
SPOT_RETRY_TAG = "batchkit:spot-retry"

STATUS_ORDER: tuple[JobStatus, ...] = tuple(JobStatus)
ACTIVE_STATUSES: tuple[JobStatus, ...] = STATUS_ORDER[:5]
FINAL_STATUSES: tuple[JobStatus, ...] = STATUS_ORDER[5:]


class DependencyType(StrEnum):
    """Batch's dependency types for array jobs (a plain dependency has no type)."""

    N_TO_N = "N_TO_N"
    SEQUENTIAL = "SEQUENTIAL"


class Dependency(Struct, frozen=True):
    """One entry of SubmitJob's `dependsOn`.

    `job_id` is None only for a SEQUENTIAL array, whose children then run one after another.
    """

    job_id: str | None
    type: DependencyType | None = None

    def to_api(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.job_id is not None:
            out["jobId"] = self.job_id
        if self.type is not None:
            out["type"] = self.type.value
        return out


class JobKind(StrEnum):
    SINGLE = "single"
    ARRAY_PARENT = "array"
    ARRAY_CHILD = "array-child"
    MNP_PARENT = "multinode"
    MNP_NODE = "multinode-node"


_CHILD_ID = re.compile(r"^(?P<parent>[^:#]+)(?:(?P<array>:\d+)|(?P<node>#\d+))$")


class JobId(Struct, frozen=True):
    """A job id as Batch spells it: `id`, an array child `id:i` or an MNP node `id#n`."""

    parent: str
    array_index: int | None = None
    node_index: int | None = None

    @classmethod
    def parse(cls, text: str) -> JobId:
        match = _CHILD_ID.match(text)
        if match is None:
            return cls(text)
        if match["array"]:
            return cls(match["parent"], array_index=int(match["array"][1:]))
        return cls(match["parent"], node_index=int(match["node"][1:]))

    @property
    def is_child(self) -> bool:
        return self.array_index is not None or self.node_index is not None

    def __str__(self) -> str:
        if self.array_index is not None:
            return f"{self.parent}:{self.array_index}"
        if self.node_index is not None:
            return f"{self.parent}#{self.node_index}"
        return self.parent


class Resources(Struct, frozen=True):
    """What one job (or one MNP node) reserves. Memory in MiB."""

    vcpus: float = 1
    memory: int = 128
    gpus: int = 0


class JobSpec(Struct, frozen=True):
    """What a user asks to run, before staging: the awsbsub flags as typed values.

    Exactly one of `command` (inline: argv run as-is) or `script` (the bytes of a command file or a
    stdin script, run with `arguments`) is set. `staged_files` are files held in memory (base name
    → bytes) staged in the job folder beside the `input_files`, as a function job's payload is.
    Validation lives in `batchkit.jobs.validation`.
    """

    name: str
    command: tuple[str, ...] = ()
    script: bytes | None = None
    script_name: str | None = None
    arguments: tuple[str, ...] = ()
    working_dir: str | None = None
    parent_working_dir: str | None = None
    input_files: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    queue: str | None = None
    array_size: int | None = None
    nodes: int = 1
    depends_on: tuple[Dependency, ...] = ()
    retry_attempts: int = 1
    timeout: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    staged_files: Mapping[str, bytes] = field(default_factory=dict)
    share: str | None = None
    """Fair share: the share identifier the job is billed to (its queue's scheduling policy)."""
    priority: int | None = None
    """Fair share: the job's priority within its share (0-9999, higher first)."""
    memory_default: bool = False
    """`resources.memory` is batchkit's default, not asked for (no -m, no memory=): a Fargate
    queue, which has no such size, gets its smallest one instead (`jobs.fargate.fit_memory`)."""


class Attempt(Struct):
    """One try of a job: Batch's `attempts[]` entry, flattened."""

    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_stream: str | None = None
    status_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The attempt as DescribeJobs spells it."""
        return {
            "container": {
                "exitCode": self.exit_code,
                "reason": self.reason,
                "logStreamName": self.log_stream,
            },
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "statusReason": self.status_reason,
        }


class Job(Struct):
    """A job as `describe_jobs` reports it, for every kind: single, array parent or child, MNP
    parent or node. Times are epoch milliseconds."""

    job_id: str
    name: str
    status: JobStatus
    queue: str = ""
    job_definition: str = ""
    created_at: int | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    command: list[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    array_size: int | None = None
    nodes: int = 1
    main_node: int = 0
    depends_on: list[Dependency] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    retry_attempts: int = 1
    timeout: int | None = None
    log_stream: str | None = None
    log_group: str = "/aws/batch/job"
    s3_folder_url: str | None = None
    status_summary: dict[str, int] = field(default_factory=dict)
    console_url: str | None = None

    @property
    def id(self) -> JobId:
        return JobId.parse(self.job_id)

    @property
    def kind(self) -> JobKind:
        ident = self.id
        if ident.array_index is not None:
            return JobKind.ARRAY_CHILD
        if ident.node_index is not None:
            return JobKind.MNP_NODE
        if self.array_size is not None:
            return JobKind.ARRAY_PARENT
        if self.nodes > 1:
            return JobKind.MNP_PARENT
        return JobKind.SINGLE

    @property
    def is_parent(self) -> bool:
        return self.kind in (JobKind.ARRAY_PARENT, JobKind.MNP_PARENT)

    @property
    def child_count(self) -> int:
        if self.kind is JobKind.ARRAY_PARENT:
            return self.array_size or 0
        if self.kind is JobKind.MNP_PARENT:
            return self.nodes
        return 0

    def child_ids(self) -> list[str]:
        """The ids of this parent's children (`id:i` or `id#n`), in index order."""
        if self.kind is JobKind.ARRAY_PARENT:
            return [f"{self.job_id}:{i}" for i in range(self.array_size or 0)]
        if self.kind is JobKind.MNP_PARENT:
            return [f"{self.job_id}#{i}" for i in range(self.nodes)]
        return []

    @property
    def display_id(self) -> str:
        """awsbstat's id column: `id [N]` for an array parent, `id *N` for an MNP parent."""
        if self.kind is JobKind.ARRAY_PARENT:
            return f"{self.job_id} [{self.array_size}]"
        if self.kind is JobKind.MNP_PARENT:
            return f"{self.job_id} *{self.nodes}"
        return self.job_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in Batch's camelCase vocabulary, for `--json`."""
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "jobName": self.name,
            "kind": self.kind.value,
            "status": self.status.value,
            "statusReason": self.status_reason,
            "jobQueue": self.queue,
            "jobDefinition": self.job_definition,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "command": self.command,
            "vcpus": self.resources.vcpus,
            "memory": self.resources.memory,
            "gpus": self.resources.gpus,
            "image": self.image,
            "arraySize": self.array_size,
            "nodes": self.nodes,
            "dependsOn": [d.to_api() for d in self.depends_on],
            "attempts": [attempt.to_dict() for attempt in self.attempts],
            "retryAttempts": self.retry_attempts,
            "timeout": self.timeout,
            "logGroup": self.log_group,
            "logStream": self.log_stream,
            "s3FolderUrl": self.s3_folder_url,
            "statusSummary": self.status_summary,
            "consoleUrl": self.console_url,
        }
        return out


class SubmitRequest(Struct, frozen=True):
    """A fully planned SubmitJob, provider-neutral: what `jobs.submission` hands a provider after
    staging. `command` is the container command (batchkit's wrapper argv); `environment` holds the
    Batch environment overrides (`PCLUSTER_JOB_S3_URL` among them). `client_token` makes a retried
    submission idempotent: a provider that finds a job tagged with it returns that job."""

    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    queue: str | None = None
    array_size: int | None = None
    nodes: int = 1
    depends_on: tuple[Dependency, ...] = ()
    retry_attempts: int = 1
    timeout: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    client_token: str | None = None
    s3_folder_url: str | None = None
    share: str | None = None
    priority: int | None = None

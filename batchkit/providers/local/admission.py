"""What the local engine checks before it accepts a job, as SubmitJob does (the queue, the
command, array size, node count, retries, timeout, resources, the executor and the dependencies),
and the engine's spec of an accepted request.

The names and limits are Batch's: the limits are `batchkit.limits` (SubmitJob in the AWS Batch API
Reference and the service quotas of the AWS Batch User Guide), the same ones
`batchkit.jobs.validation` checks, so a job the CLI lets through is never refused here for its shape
and the other way round; the local engine's one queue and job definitions are named the way Batch
names its own.
"""

from __future__ import annotations

from batchkit.errors import JobNotFoundError, NotFoundError, UsageError
from batchkit.limits import (
    MAX_ARRAY_SIZE,
    MAX_DEPENDENCIES,
    MAX_NODES,
    MAX_RETRY_ATTEMPTS,
    MAX_TIMEOUT_SECONDS,
    MIN_ARRAY_SIZE,
    MIN_MEMORY_MIB,
    MIN_RETRY_ATTEMPTS,
    MIN_TIMEOUT_SECONDS,
)
from batchkit.models import EXECUTOR_CHOICES, EXECUTOR_TAG, DependencyType, SubmitRequest
from batchkit.providers.local.capacity import QUEUE
from batchkit.providers.local.rows import Spec
from batchkit.providers.local.shares import SharePolicy, share_weight
from batchkit.providers.local.store import Store

JOB_DEFINITION = "batchkit-local:1"
MNP_JOB_DEFINITION = "batchkit-local-mnp:1"
QUEUE_ARN = f"arn:aws:batch:local:000000000000:job-queue/{QUEUE}"
EXECUTOR_PREFERENCES = EXECUTOR_CHOICES


def admit(request: SubmitRequest, store: Store, policy: SharePolicy | None) -> Spec:
    """Validate a request as SubmitJob would, and turn it into the engine's spec (`policy`: the
    queue's fair-share policy, if it has one)."""
    if request.queue not in (None, QUEUE, QUEUE_ARN):
        raise NotFoundError(
            f"job queue {request.queue!r} not found on the local engine",
            hint=f"the local engine has one queue, {QUEUE!r}; leave the queue unset",
        )
    if not request.command:
        raise UsageError(f"job {request.name!r} has no command", hint="give a command to run")
    size = request.array_size
    if size is not None and not MIN_ARRAY_SIZE <= size <= MAX_ARRAY_SIZE:
        raise UsageError(
            f"array size {size} is out of range",
            hint=f"use {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE}, as Batch",
        )
    if not 1 <= request.nodes <= MAX_NODES:
        raise UsageError(
            f"node count {request.nodes} is out of range", hint=f"use 1 to {MAX_NODES}, as Batch"
        )
    if size is not None and request.nodes > 1:
        raise UsageError(
            "a job cannot be both an array and a multi-node job",
            hint="drop --array-size or --nodes",
        )
    if not MIN_RETRY_ATTEMPTS <= request.retry_attempts <= MAX_RETRY_ATTEMPTS:
        raise UsageError(
            f"retry attempts {request.retry_attempts} is out of range",
            hint=f"use {MIN_RETRY_ATTEMPTS} to {MAX_RETRY_ATTEMPTS}",
        )
    if request.timeout is not None and request.timeout < MIN_TIMEOUT_SECONDS:
        raise UsageError(
            f"timeout {request.timeout}s is too short",
            hint=f"AWS Batch needs at least {MIN_TIMEOUT_SECONDS} seconds",
        )
    if request.timeout is not None and request.timeout > MAX_TIMEOUT_SECONDS:
        raise UsageError(
            f"timeout {request.timeout}s is too long",
            hint=f"AWS Batch takes at most {MAX_TIMEOUT_SECONDS} seconds; leave it unset for none",
        )
    res = request.resources
    if res.vcpus <= 0 or res.memory < MIN_MEMORY_MIB or res.gpus < 0:
        raise UsageError(
            f"invalid resources: {res.vcpus} vCPUs, {res.memory} MiB, {res.gpus} GPUs",
            hint=f"use more than 0 vCPUs, at least {MIN_MEMORY_MIB} MiB of memory "
            "and 0 or more GPUs",
        )
    executor = request.tags.get(EXECUTOR_TAG, "auto")
    if executor not in EXECUTOR_PREFERENCES:
        raise UsageError(
            f"unknown executor {executor!r}",
            hint="use one of: " + ", ".join(EXECUTOR_PREFERENCES),
        )
    check_dependencies(request, store)
    weight = share_weight(policy, request.share)
    return Spec(
        name=request.name,
        command=tuple(request.command),
        environment=dict(request.environment),
        resources=res,
        image=request.image,
        queue=QUEUE,
        array_size=size,
        nodes=request.nodes,
        depends_on=tuple(request.depends_on),
        retry_attempts=request.retry_attempts,
        timeout=request.timeout,
        tags=dict(request.tags),
        s3_folder_url=request.s3_folder_url or request.environment.get("PCLUSTER_JOB_S3_URL"),
        job_definition=MNP_JOB_DEFINITION if request.nodes > 1 else JOB_DEFINITION,
        executor=executor,
        share=request.share,
        priority=request.priority,
        share_weight=weight,
    )


def check_dependencies(request: SubmitRequest, store: Store) -> None:
    """SubmitJob's rules for `dependsOn`: at most `MAX_DEPENDENCIES` (20), each an existing job of
    this engine, a SEQUENTIAL one only on an array, an N_TO_N one only between arrays of the same
    size."""
    deps = request.depends_on
    if len(deps) > MAX_DEPENDENCIES:
        raise UsageError(
            f"{len(deps)} dependencies is too many", hint=f"Batch allows {MAX_DEPENDENCIES}"
        )
    targets = {row.id: row for row in store.rows(d.job_id for d in deps if d.job_id)}
    for dep in deps:
        if dep.job_id is None:
            if dep.type is not DependencyType.SEQUENTIAL or request.array_size is None:
                raise UsageError(
                    "a dependency without a job id must be SEQUENTIAL, on an array job",
                    hint="give the job id to depend on",
                )
            continue
        target = targets.get(dep.job_id)
        if target is None:
            raise JobNotFoundError(
                dep.job_id, hint="a job can only depend on jobs of the same cluster"
            )
        if dep.type is DependencyType.N_TO_N:
            other = target.spec.array_size if target.spec is not None else None
            if request.array_size is None or other != request.array_size:
                raise UsageError(
                    f"an N_TO_N dependency on {dep.job_id} needs two arrays of the same size",
                    hint="make both jobs arrays of the same size, or drop the type",
                )

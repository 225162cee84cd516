"""What AWS Batch accepts from a job on Fargate, checked before anything is sent.

The vCPU and memory combinations are those of the AWS Batch API Reference, ResourceRequirement
(`computemodel.FARGATE_MEMORY`, which the doctor reads too). Fargate has no GPUs (a GPU resource
requirement is for EC2 resources only, same page), and multi-node parallel jobs, which do not
run on Fargate either, are refused by `multinode.check_queue`.
"""

from __future__ import annotations

from msgspec.structs import replace

from batchkit.errors import UsageError
from batchkit.jobs.multinode import FARGATE
from batchkit.models import JobSpec


def valid_memory(vcpus: float) -> list[int]:
    """The memory values (MiB) Fargate accepts with `vcpus` ([] for a vCPU count it lacks)."""
    from batchkit.computemodel import FARGATE_MEMORY  # on a Fargate queue only (start-up)

    return list(FARGATE_MEMORY.get(float(vcpus), ()))


def fit_memory(spec: JobSpec, capacity: str | None) -> JobSpec:
    """`spec` for a queue of `capacity`: on Fargate, memory left at batchkit's default (no -m,
    no memory=; 128 MiB for a script, 1024 for a function, sizes Fargate mostly lacks) becomes the
    smallest that Fargate offers with the vCPUs asked and that is at least that default (1 vCPU:
    2048 MiB). Memory that was asked for is left to `check_fargate`, as are vCPUs Fargate lacks."""
    allowed = valid_memory(spec.resources.vcpus) if capacity == FARGATE else []
    if not spec.memory_default or not allowed:
        return spec
    memory = next((m for m in allowed if m >= spec.resources.memory), allowed[-1])
    return replace(spec, resources=replace(spec.resources, memory=memory))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_fargate(spec: JobSpec, capacity: str | None) -> None:
    """Raise UsageError when Batch would refuse this job on a Fargate queue (`capacity` is what
    the provider says the queue runs on; multi-node jobs are `multinode.check_queue`'s)."""
    if capacity != FARGATE:
        return
    queue = spec.queue or "the default queue"
    resources = spec.resources
    if resources.gpus:
        raise UsageError(
            f"--gpus {resources.gpus}: {queue} runs on Fargate, which has no GPUs",
            hint="send GPU jobs to a queue of EC2/SPOT GPU instances (`-q`), or drop --gpus",
        )
    allowed = valid_memory(resources.vcpus)
    if not allowed:
        from batchkit.computemodel import FARGATE_MEMORY

        counts = ", ".join(_number(v) for v in FARGATE_MEMORY)
        raise UsageError(
            f"Fargate has no {_number(resources.vcpus)}-vCPU size ({queue})",
            hint=f"use -p with one of {counts} vCPUs",
        )
    if resources.memory not in allowed:
        shown = ", ".join(str(m) for m in allowed)
        raise UsageError(
            f"Fargate does not offer {resources.memory} MiB with {_number(resources.vcpus)} "
            f"vCPU ({queue})",
            hint=f"use -m with one of: {shown} (MiB)",
        )

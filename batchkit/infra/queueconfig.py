"""The `queues:` of `batchkit.yaml`: each queue and its compute environments, and the rules that
tie their fields together (a Fargate environment has no instance types, a GPU queue has GPU
instances, environment names are unique…), each problem tied to its key (`infra.config`)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from batchkit.infra import efa
from batchkit.infra.blocking import BlockedJobTimeoutsConfig
from batchkit.infra.configbase import RESOURCE_NAME_PATTERN, Model, Problem
from batchkit.infra.teamconfig import FairShareConfig
from batchkit.infra.yamlmarks import KeyPath

# Instance families with NVIDIA or AMD GPUs that Batch can schedule GPU jobs on.
GPU_FAMILIES = frozenset(
    {"g3", "g3s", "g4dn", "g4ad", "g5", "g5g", "g6", "g6e", "g6f", "gr6", "gr6f", "g7e", "p2",
     "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"}
)  # fmt: skip


class ComputeType(StrEnum):
    EC2 = "EC2"
    SPOT = "SPOT"
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"

    @property
    def is_fargate(self) -> bool:
        return self in (ComputeType.FARGATE, ComputeType.FARGATE_SPOT)


EC2_STRATEGIES = ("BEST_FIT", "BEST_FIT_PROGRESSIVE")
SPOT_STRATEGIES = (*EC2_STRATEGIES, "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED")


class ComputeEnvironmentConfig(Model):
    """One compute environment of a queue (Batch allows up to 3 per queue)."""

    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    type: ComputeType = ComputeType.EC2
    instance_types: list[Annotated[str, Field(min_length=1)]] | None = None
    min_vcpus: Annotated[int, Field(ge=0)] = 0
    desired_vcpus: Annotated[int, Field(ge=0)] | None = None
    max_vcpus: Annotated[int, Field(ge=1)] = 256
    allocation_strategy: str | None = None
    bid_percentage: Annotated[int, Field(ge=1, le=100)] | None = None

    @property
    def resolved_instance_types(self) -> list[str]:
        return list(self.instance_types or ["optimal"])

    @property
    def resolved_allocation_strategy(self) -> str:
        if self.allocation_strategy:
            return self.allocation_strategy
        if self.type is ComputeType.SPOT:
            return "SPOT_PRICE_CAPACITY_OPTIMIZED"
        return "BEST_FIT_PROGRESSIVE"

    @property
    def needs_spot_fleet_role(self) -> bool:
        """Batch uses a Spot Fleet role only for SPOT environments with the BEST_FIT strategy."""
        return self.type is ComputeType.SPOT and self.resolved_allocation_strategy == "BEST_FIT"


class QueueConfig(Model):
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    priority: Annotated[int, Field(ge=0, le=1000)] = 1
    gpu: bool = False
    compute_environments: Annotated[list[ComputeEnvironmentConfig], Field(min_length=1)]
    fair_share: FairShareConfig | None = None
    blocked_job_timeouts: BlockedJobTimeoutsConfig = BlockedJobTimeoutsConfig()
    """How long a job may block the queue before Batch cancels it (`infra.blocking`)."""
    efa: bool = False
    """Instances with an EFA network interface (and in a cluster placement group), for MPI."""
    placement_group: bool = False
    """One cluster placement group for the queue's instances: low latency between nodes."""

    @property
    def is_fargate(self) -> bool:
        return self.compute_environments[0].type.is_fargate

    @property
    def needs_placement_group(self) -> bool:
        """EFA instances must share a cluster placement group (AWS Batch User Guide, "Elastic
        Fabric Adapter"), so `efa: true` implies one."""
        return not self.is_fargate and (self.placement_group or self.efa)

    @property
    def spot_only(self) -> bool:
        """Every environment is Spot: one reclaimed instance ends a multi-node job."""
        return all(ce.type is ComputeType.SPOT for ce in self.compute_environments)


def is_gpu_instance_type(instance_type: str) -> bool:
    """`g5.xlarge`, `g5` and `p4d.24xlarge` are GPU types; `c6i.large` and `optimal` are not."""
    return instance_type.split(".", 1)[0].lower() in GPU_FAMILIES


def queue_problems(queue: QueueConfig, at: KeyPath) -> Iterator[Problem]:
    if len(queue.compute_environments) > 3:
        yield Problem((*at, "compute_environments"), "a queue can use at most 3 environments")
    if len({ce.type.is_fargate for ce in queue.compute_environments}) > 1:
        yield Problem(
            (*at, "compute_environments"),
            "a queue cannot mix FARGATE/FARGATE_SPOT with EC2/SPOT environments; use two queues",
        )
    yield from efa.queue_problems(
        queue,
        [
            ((*at, "compute_environments", ci), ce.instance_types)
            for ci, ce in enumerate(queue.compute_environments)
        ],
        at,
    )
    ce_names: set[str] = set()
    for ci, ce in enumerate(queue.compute_environments):
        ce_at = (*at, "compute_environments", ci)
        if ce.name in ce_names:
            yield Problem((*ce_at, "name"), f"environment name {ce.name!r} is used twice")
        ce_names.add(ce.name)
        yield from _environment_problems(ce, ce_at)
        if queue.gpu and ce.type.is_fargate:
            yield Problem((*ce_at, "type"), "Fargate has no GPUs; use EC2 or SPOT in a GPU queue")
        elif queue.gpu and not ce.instance_types:
            yield Problem(
                (*ce_at, "instance_types"),
                "a GPU queue needs explicit GPU instance types (e.g. [g5.xlarge, g6])",
            )
        for ti, instance_type in enumerate(ce.instance_types or []):
            gpu = is_gpu_instance_type(instance_type)
            if queue.gpu and not gpu:
                yield Problem(
                    (*ce_at, "instance_types", ti),
                    f"{instance_type!r} has no GPU but the queue is marked `gpu: true`",
                )
            elif gpu and not queue.gpu:
                yield Problem(
                    (*ce_at, "instance_types", ti),
                    f"{instance_type!r} is a GPU type: mark the queue `gpu: true` so GPU jobs "
                    "land there and CPU jobs do not hold GPU instances",
                )


def _environment_problems(ce: ComputeEnvironmentConfig, at: KeyPath) -> Iterator[Problem]:
    if ce.type.is_fargate:
        for field in ("instance_types", "allocation_strategy", "bid_percentage"):
            if getattr(ce, field) is not None:
                yield Problem((*at, field), f"{ce.type.value} environments do not take {field}")
        for field in ("min_vcpus", "desired_vcpus"):
            if getattr(ce, field):
                yield Problem((*at, field), f"{ce.type.value} environments scale from 0 by design")
    else:
        allowed = SPOT_STRATEGIES if ce.type is ComputeType.SPOT else EC2_STRATEGIES
        if ce.allocation_strategy is not None and ce.allocation_strategy not in allowed:
            yield Problem(
                (*at, "allocation_strategy"),
                f"{ce.type.value} allows {', '.join(allowed)}",
            )
        if ce.bid_percentage is not None and ce.type is not ComputeType.SPOT:
            yield Problem((*at, "bid_percentage"), "only SPOT environments take bid_percentage")
        if ce.instance_types is not None and not ce.instance_types:
            yield Problem((*at, "instance_types"), "give at least one type, or leave it out")
    if ce.max_vcpus < ce.min_vcpus:
        yield Problem((*at, "max_vcpus"), f"must be at least min_vcpus ({ce.min_vcpus})")
    if ce.desired_vcpus is not None and not ce.min_vcpus <= ce.desired_vcpus <= ce.max_vcpus:
        yield Problem(
            (*at, "desired_vcpus"),
            f"must be between min_vcpus ({ce.min_vcpus}) and max_vcpus ({ce.max_vcpus})",
        )

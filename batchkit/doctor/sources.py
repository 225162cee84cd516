"""What the doctor reads, as protocols: a provider offers one of these (`AwsProvider.doctor_facts`,
`LocalProvider.doctor_facts`). Every AWS method is one read-only call or a few; a method may raise
`AccessDeniedError` (the runner then reports the check as not made)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from batchkit.clustermodel import Queue
from batchkit.computemodel import (
    ComputeEnvironment,
    InstanceType,
    LocalScene,
    NatGateway,
    SecurityGroup,
    SpotPrice,
    Subnet,
    VpcEndpoint,
)
from batchkit.models import Job


class AwsFacts(Protocol):
    @property
    def region(self) -> str: ...

    def queues(self, names: Sequence[str]) -> list[Queue]:
        """Queues by name or ARN; none: the cluster's."""
        ...

    def compute_environments(self, names: Sequence[str]) -> list[ComputeEnvironment]: ...

    def instance_types(self, names: Sequence[str]) -> list[InstanceType]:
        """As a compute environment names them (sizes, families, `optimal`)."""
        ...

    def subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]: ...

    def nat_gateways(self, vpc_ids: Sequence[str]) -> list[NatGateway]: ...

    def vpc_endpoints(self, vpc_ids: Sequence[str]) -> list[VpcEndpoint]: ...

    def security_groups(self, group_ids: Sequence[str]) -> list[SecurityGroup]: ...

    def container_instance_count(self, ecs_cluster: str) -> int: ...

    def spot_prices(self, instance_types: Sequence[str]) -> list[SpotPrice]: ...

    def image_architectures(self, image: str) -> tuple[str, ...] | None:
        """The architectures an image is built for, when known (None: not known)."""
        ...


class LocalFacts(Protocol):
    def scene(self, job: Job | None) -> LocalScene:
        """The engine's state as the local rules read it (the job's image looked up, if any)."""
        ...

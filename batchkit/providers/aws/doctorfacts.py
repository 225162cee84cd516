"""`AwsDoctorFacts`: what `batchkit doctor` reads about a cluster on AWS
(`doctor.sources.AwsFacts`), through the Batch, EC2 and ECS gateways. Read-only calls only;
AccessDenied surfaces as `AccessDeniedError` (with the missing permission) for the doctor."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchkit.clustermodel import Queue
    from batchkit.computemodel import (
        ComputeEnvironment,
        InstanceType,
        NatGateway,
        SecurityGroup,
        SpotPrice,
        Subnet,
        VpcEndpoint,
    )
    from batchkit.providers.aws.batch import BatchGateway
    from batchkit.providers.aws.ec2 import Ec2Gateway
    from batchkit.providers.aws.ecr import EcrGateway
    from batchkit.providers.aws.ecs import EcsGateway

ECR_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+):(?P<tag>[\w][\w.-]{0,127})$"
)
"""An image in ECR named by tag (ECR user guide, "Private repository concepts")."""


class AwsDoctorFacts:
    def __init__(
        self,
        region: str,
        cluster_queues: Sequence[str],
        *,
        batch: BatchGateway,
        ec2: Ec2Gateway,
        ecs: EcsGateway,
        ecr: EcrGateway,
    ) -> None:
        self._region = region
        self._queues = list(cluster_queues)
        self._batch = batch
        self._ec2 = ec2
        self._ecs = ecs
        self._ecr = ecr

    @property
    def region(self) -> str:
        return self._region

    def queues(self, names: Sequence[str]) -> list[Queue]:
        return self._batch.describe_job_queues(list(names) or self._queues)

    def compute_environments(self, names: Sequence[str]) -> list[ComputeEnvironment]:
        if not names:
            return []
        found = self._batch.describe_compute_environments(names)
        known = {ce.arn: ce for ce in found} | {ce.name: ce for ce in found}
        ordered = [known.get(name) for name in names]  # the queue's order
        return [ce for ce in ordered if ce is not None]

    def instance_types(self, names: Sequence[str]) -> list[InstanceType]:
        return self._ec2.instance_types(names)

    def subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]:
        return self._ec2.subnets(subnet_ids)

    def nat_gateways(self, vpc_ids: Sequence[str]) -> list[NatGateway]:
        return self._ec2.nat_gateways(vpc_ids)

    def vpc_endpoints(self, vpc_ids: Sequence[str]) -> list[VpcEndpoint]:
        return self._ec2.vpc_endpoints(vpc_ids)

    def security_groups(self, group_ids: Sequence[str]) -> list[SecurityGroup]:
        return self._ec2.security_groups(group_ids)

    def container_instance_count(self, ecs_cluster: str) -> int:
        return self._ecs.container_instance_count(ecs_cluster)

    def spot_prices(self, instance_types: Sequence[str]) -> list[SpotPrice]:
        return self._ec2.spot_prices(instance_types)

    def image_architectures(self, image: str) -> tuple[str, ...] | None:
        """For an image in this region's ECR (by tag): the platforms its manifest list names."""
        match = ECR_IMAGE.match(image)
        if match is None or match["region"] != self._region:
            return None
        return self._ecr.image_architectures(match["repository"], match["tag"])

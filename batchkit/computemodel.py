"""The compute side of the Batch data model, as `batchkit doctor` reads it: compute environments,
instance types, subnets and their routes, security groups, Spot prices; and the local engine's
state (`LocalScene`).

Frozen `msgspec.Struct`s, like `batchkit.models`: the AWS gateways turn responses into these, the
doctor's rules read only these. A leaf: it imports only `batchkit.models`.
"""

from __future__ import annotations

from msgspec import Struct

from batchkit.models import Resources


class ComputeEnvironment(Struct, frozen=True):
    """One DescribeComputeEnvironments item, flattened. `compute_type` is EC2, SPOT, FARGATE or
    FARGATE_SPOT (None for an UNMANAGED environment)."""

    name: str
    arn: str
    state: str
    status: str
    status_reason: str | None = None
    type: str = "MANAGED"
    compute_type: str | None = None
    min_vcpus: int = 0
    desired_vcpus: int = 0
    max_vcpus: int = 0
    instance_types: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    ecs_cluster_arn: str | None = None
    service_role: str | None = None
    instance_role: str | None = None
    bid_percentage: int | None = None
    allocation_strategy: str | None = None
    launch_template: str | None = None

    @property
    def is_fargate(self) -> bool:
        return self.compute_type in ("FARGATE", "FARGATE_SPOT")

    @property
    def is_spot(self) -> bool:
        return self.compute_type in ("SPOT", "FARGATE_SPOT")


class InstanceType(Struct, frozen=True):
    """One DescribeInstanceTypes item: what an instance offers. Memory in MiB."""

    name: str
    vcpus: int
    memory: int
    gpus: int = 0
    architectures: tuple[str, ...] = ("x86_64",)


class Route(Struct, frozen=True):
    destination: str
    target: str
    """The target's id: `igw-…`, `nat-…`, `local`, `vpce-…`, `eni-…`, `tgw-…`, `pcx-…`."""

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0")


class Subnet(Struct, frozen=True):
    """A subnet, the routes of its route table (its own, or the VPC's main table) and whether
    instances launched in it get a public IPv4 address."""

    subnet_id: str
    vpc_id: str
    availability_zone: str = ""
    public_ip_on_launch: bool = False
    routes: tuple[Route, ...] = ()

    def default_route(self) -> Route | None:
        return next((route for route in self.routes if route.is_default), None)


class SecurityGroup(Struct, frozen=True):
    group_id: str
    name: str = ""
    egress_rules: int = 0
    """How many outbound rules it has (AWS adds allow-all to a new group; 0 means none)."""


class NatGateway(Struct, frozen=True):
    nat_gateway_id: str
    subnet_id: str
    state: str


class VpcEndpoint(Struct, frozen=True):
    service_name: str
    """e.g. `com.amazonaws.us-east-1.ecr.dkr`."""
    endpoint_type: str
    subnets: tuple[str, ...] = ()
    route_tables: tuple[str, ...] = ()


class SpotPrice(Struct, frozen=True):
    instance_type: str
    availability_zone: str
    price: float


class LocalScene(Struct, frozen=True):
    """What the local engine reports about itself (see `providers.local.facts`)."""

    total: Resources
    free: Resources
    running_jobs: int
    waiting_jobs: int
    worker_pid: int | None
    worker_log_tail: tuple[str, ...] = ()
    docker_reachable: bool = False
    docker_endpoint: str = ""
    docker_error: str | None = None
    image_present: bool | None = None
    """Whether the job's image is in the Docker engine (None: no image, or not known)."""
    executor: str = "auto"
    """The executor the job asked for (`--executor`)."""


FARGATE_MEMORY: dict[float, tuple[int, ...]] = {
    # AWS Batch API Reference, ResourceRequirement (type VCPU / MEMORY on Fargate): each vCPU
    # value and the memory values (MiB) that go with it.
    0.25: (512, 1024, 2048),
    0.5: (1024, 2048, 3072, 4096),
    1: tuple(range(2048, 8192 + 1, 1024)),
    2: tuple(range(4096, 16384 + 1, 1024)),
    4: tuple(range(8192, 30720 + 1, 1024)),
    8: tuple(range(16384, 61440 + 1, 4096)),
    16: tuple(range(32768, 122880 + 1, 8192)),
}
"""What Fargate offers: the doctor explains a job that asked otherwise, `jobs.fargate` refuses it
before it is sent."""

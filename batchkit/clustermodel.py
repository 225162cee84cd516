"""What a cluster offers beside its jobs, as every provider describes it: its job queues, its
compute hosts (ECS container instances on AWS, this machine on the local engine) and who hears
about its jobs (the subscriptions of its job events topic).

Apart from the job model (`batchkit.models`): `queues`, `hosts`, the doctor and `cluster status`
need these, and a submission imports none of it.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class Queue(Struct, frozen=True):
    name: str
    arn: str
    priority: int
    state: str
    status: str
    status_reason: str | None = None
    compute_environments: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobQueueName": self.name,
            "jobQueueArn": self.arn,
            "priority": self.priority,
            "state": self.state,
            "status": self.status,
            "statusReason": self.status_reason,
            "computeEnvironments": list(self.compute_environments),
        }


class Host(Struct, frozen=True):
    """A compute host: an ECS container instance on AWS, this machine on the local engine."""

    instance_id: str
    instance_type: str
    status: str
    private_ip: str | None = None
    public_ip: str | None = None
    private_dns: str | None = None
    public_dns: str | None = None
    container_instance_arn: str | None = None
    running_jobs: int = 0
    pending_jobs: int = 0
    registered_vcpus: float = 0
    registered_memory: int = 0
    available_vcpus: float = 0
    available_memory: int = 0
    registered_gpus: int = 0
    available_gpus: int = 0
    executor: str | None = None
    engine_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ec2InstanceId": self.instance_id,
            "containerInstanceArn": self.container_instance_arn,
            "status": self.status,
            "instanceType": self.instance_type,
            "privateIpAddress": self.private_ip,
            "publicIpAddress": self.public_ip,
            "privateDnsName": self.private_dns,
            "publicDnsName": self.public_dns,
            "runningJobs": self.running_jobs,
            "pendingJobs": self.pending_jobs,
            "registeredCPUs": self.registered_vcpus,
            "registeredMemory": self.registered_memory,
            "availableCPUs": self.available_vcpus,
            "availableMemory": self.available_memory,
            "registeredGPUs": self.registered_gpus,
            "availableGPUs": self.available_gpus,
            "executor": self.executor,
            "engineVersion": self.engine_version,
        }


class Subscription(Struct, frozen=True):
    """Who hears about a cluster's jobs: one subscription of its job events topic."""

    protocol: str
    endpoint: str
    confirmed: bool
    """False while SNS waits for the address to follow its confirmation link."""

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "endpoint": self.endpoint, "confirmed": self.confirmed}

"""ECS + EC2, for `hosts`: the container instances behind a cluster's compute environments.

Batch runs EC2 jobs on ECS container instances; ECS knows their capacity and running tasks, EC2
their addresses. The gateway joins the two into `Host`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchkit.clustermodel import Host
from batchkit.providers.aws.session import Api

DESCRIBE_CHUNK = 100


def _resource(resources: Sequence[Mapping[str, Any]], name: str) -> int:
    for item in resources:
        if item.get("name") == name:
            return int(item.get("integerValue") or 0)
    return 0


def _gpus(resources: Sequence[Mapping[str, Any]]) -> int:
    for item in resources:
        if item.get("name") == "GPU":
            return len(item.get("stringSetValue") or ())
    return 0


def _attribute(instance: Mapping[str, Any], name: str) -> str | None:
    for item in instance.get("attributes") or ():
        if item.get("name") == name:
            value = item.get("value")
            return str(value) if value is not None else None
    return None


def host_from(container_instance: Mapping[str, Any], ec2: Mapping[str, Any]) -> Host:
    registered = container_instance.get("registeredResources") or []
    remaining = container_instance.get("remainingResources") or []
    return Host(
        instance_id=str(container_instance.get("ec2InstanceId", "")),
        instance_type=_attribute(container_instance, "ecs.instance-type")
        or str(ec2.get("InstanceType", "")),
        status=str(container_instance.get("status", "")),
        private_ip=ec2.get("PrivateIpAddress"),
        public_ip=ec2.get("PublicIpAddress"),
        private_dns=ec2.get("PrivateDnsName") or None,
        public_dns=ec2.get("PublicDnsName") or None,
        container_instance_arn=container_instance.get("containerInstanceArn"),
        running_jobs=int(container_instance.get("runningTasksCount", 0)),
        pending_jobs=int(container_instance.get("pendingTasksCount", 0)),
        registered_vcpus=_resource(registered, "CPU") / 1024,
        registered_memory=_resource(registered, "MEMORY"),
        available_vcpus=_resource(remaining, "CPU") / 1024,
        available_memory=_resource(remaining, "MEMORY"),
        registered_gpus=_gpus(registered),
        available_gpus=_gpus(remaining),
    )


class EcsGateway:
    def __init__(self, ecs: Api, ec2: Api) -> None:
        self._ecs = ecs
        self._ec2 = ec2

    def container_instance_count(self, ecs_cluster: str) -> int:
        """How many container instances have joined this ECS cluster (ListContainerInstances,
        100 a page; no more than one page is read: the doctor only asks "none or some")."""
        response = self._ecs.call(
            "list_container_instances", resource=ecs_cluster, cluster=ecs_cluster, maxResults=100
        )
        return len(response.get("containerInstanceArns") or ())

    def hosts(self, ecs_clusters: Sequence[str]) -> list[Host]:
        instances: list[dict[str, Any]] = []
        for cluster in ecs_clusters:
            arns: list[str] = []
            for page in self._ecs.paginate(
                "list_container_instances", resource=cluster, cluster=cluster
            ):
                arns.extend(str(a) for a in page.get("containerInstanceArns") or ())
            for i in range(0, len(arns), DESCRIBE_CHUNK):
                response = self._ecs.call(
                    "describe_container_instances",
                    resource=cluster,
                    cluster=cluster,
                    containerInstances=arns[i : i + DESCRIBE_CHUNK],
                )
                instances.extend(response.get("containerInstances") or ())
        ids = [str(c["ec2InstanceId"]) for c in instances if c.get("ec2InstanceId")]
        described: dict[str, Mapping[str, Any]] = {}
        for i in range(0, len(ids), DESCRIBE_CHUNK):
            for page in self._ec2.paginate(
                "describe_instances",
                cursor_in="NextToken",
                cursor_out="NextToken",
                InstanceIds=ids[i : i + DESCRIBE_CHUNK],
            ):
                for reservation in page.get("Reservations") or ():
                    for item in reservation.get("Instances") or ():
                        described[str(item["InstanceId"])] = item
        return [host_from(c, described.get(str(c.get("ec2InstanceId")), {})) for c in instances]

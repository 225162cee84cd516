"""How `queues` and `hosts` print: awsbqueues' and awsbhosts' tables and details views.

Apart from `batchkit.cli.output` so that the job commands import none of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from batchkit.cli.output import details, table

if TYPE_CHECKING:
    from batchkit.clustermodel import Host, Queue


QUEUE_COLUMNS = ("jobQueueName", "status")


def queue_table(queues: Sequence[Queue]) -> str:
    return table(QUEUE_COLUMNS, [(q.name, q.status) for q in queues])


def queue_details(queues: Sequence[Queue]) -> str:
    return details(
        [
            [
                ("jobQueueArn", q.arn),
                ("jobQueueName", q.name),
                ("priority", q.priority),
                ("status", q.status),
                ("statusReason", q.status_reason),
            ]
            for q in queues
        ]
    )


HOST_COLUMNS = (
    "ec2InstanceId",
    "instanceType",
    "privateIpAddress",
    "publicIpAddress",
    "runningJobs",
)


def host_table(hosts: Sequence[Host]) -> str:
    """awsbhosts' table; the local engine's host adds how its jobs run (executor, engine)."""
    rows: list[tuple[object, ...]] = [
        (h.instance_id, h.instance_type, h.private_ip, h.public_ip, h.running_jobs) for h in hosts
    ]
    if any(h.executor for h in hosts):
        local = [(h.executor, h.engine_version) for h in hosts]
        rows = [(*row, *extra) for row, extra in zip(rows, local, strict=True)]
        return table((*HOST_COLUMNS, "executor", "engine"), rows)
    return table(HOST_COLUMNS, rows)


def host_details(hosts: Sequence[Host]) -> str:
    return details(
        [
            [
                ("ec2InstanceId", h.instance_id),
                ("containerInstanceArn", h.container_instance_arn),
                ("status", h.status),
                ("instanceType", h.instance_type),
                ("privateIpAddress", h.private_ip),
                ("publicIpAddress", h.public_ip),
                ("privateDnsName", h.private_dns),
                ("publicDnsName", h.public_dns),
                ("runningJobs", h.running_jobs),
                ("pendingJobs", h.pending_jobs),
                ("registeredCPUs", str(float(h.registered_vcpus))),
                ("registeredMemory[MB]", h.registered_memory),
                ("availableCPUs", str(float(h.available_vcpus))),
                ("availableMemory[MB]", h.available_memory),
                *(
                    [("executor", h.executor), ("engineVersion", h.engine_version)]
                    if h.executor
                    else []
                ),
            ]
            for h in hosts
        ]
    )

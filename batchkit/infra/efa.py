"""Queues for tightly coupled multi-node jobs: `efa: true` and `placement_group: true`.

AWS Batch User Guide, "Elastic Fabric Adapter": Batch runs jobs that use EFA when the instance
type supports EFA, the AMI has the EFA driver loaded, the security group allows all traffic to
and from itself, and all instances that use an EFA are in the same cluster placement group. So an
EFA queue gets a placement group too, and its instance types are checked against the EC2 User
Guide's "Supported instance types" for EFA (the table below; `aws ec2 describe-instance-types
--filters Name=network-info.efa-supported,Values=true` lists a region's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from batchkit.infra.configbase import Problem
from batchkit.infra.yamlmarks import KeyPath

# EC2 User Guide, "Elastic Fabric Adapter for AI/ML and HPC workloads on Amazon EC2", "Supported
# instance types" (EFA comes with a family's largest sizes and its metal ones).
_EFA_TYPES = """
    c5n.9xlarge c5n.18xlarge c5n.metal c6a.48xlarge c6a.metal c6gn.16xlarge c6i.32xlarge
    c6i.metal c6id.32xlarge c6id.metal c6in.32xlarge c6in.metal c7a.48xlarge c7a.metal-48xl
    c7g.16xlarge c7g.metal c7gd.16xlarge c7gd.metal c7gn.16xlarge c7gn.metal c7i.48xlarge
    c7i.metal-48xl c8g.24xlarge c8g.48xlarge c8g.metal-24xl c8g.metal-48xl m5dn.24xlarge
    m5dn.metal m5n.24xlarge m5n.metal m5zn.12xlarge m5zn.metal m6a.48xlarge m6a.metal
    m6i.32xlarge m6i.metal m6id.32xlarge m6id.metal m6idn.32xlarge m6idn.metal m6in.32xlarge
    m6in.metal m7a.48xlarge m7a.metal-48xl m7g.16xlarge m7g.metal m7gd.16xlarge m7gd.metal
    m7i.48xlarge m7i.metal-48xl m8g.24xlarge m8g.48xlarge r5dn.24xlarge r5dn.metal r5n.24xlarge
    r5n.metal r6a.48xlarge r6a.metal r6i.32xlarge r6i.metal r6id.32xlarge r6id.metal
    r6idn.32xlarge r6idn.metal r6in.32xlarge r6in.metal r7a.48xlarge r7a.metal-48xl r7g.16xlarge
    r7g.metal r7gd.16xlarge r7gd.metal r7i.48xlarge r7i.metal-48xl r7iz.32xlarge r7iz.metal-32xl
    r8g.24xlarge r8g.48xlarge x2idn.32xlarge x2idn.metal x2iedn.32xlarge x2iedn.metal
    x2iezn.12xlarge x2iezn.metal i3en.24xlarge i3en.metal i4g.16xlarge i4i.32xlarge i4i.metal
    im4gn.16xlarge dl1.24xlarge dl2q.24xlarge g4dn.8xlarge g4dn.12xlarge g4dn.16xlarge
    g4dn.metal g5.8xlarge g5.12xlarge g5.16xlarge g5.24xlarge g5.48xlarge g6.8xlarge g6.12xlarge
    g6.16xlarge g6.24xlarge g6.48xlarge g6e.8xlarge g6e.12xlarge g6e.16xlarge g6e.24xlarge
    g6e.48xlarge gr6.8xlarge inf1.24xlarge inf2.48xlarge p3dn.24xlarge p4d.24xlarge
    p4de.24xlarge p5.48xlarge p5e.48xlarge p5en.48xlarge trn1.32xlarge trn1n.32xlarge
    trn2.48xlarge vt1.24xlarge hpc6a.48xlarge hpc6id.32xlarge hpc7a.12xlarge hpc7a.24xlarge
    hpc7a.48xlarge hpc7a.96xlarge hpc7g.4xlarge hpc7g.8xlarge hpc7g.16xlarge
"""
EFA_INSTANCE_TYPES = frozenset(_EFA_TYPES.split())

EFA_TYPES_HINT = (
    "see the EC2 User Guide's EFA 'Supported instance types', or run `aws ec2 "
    "describe-instance-types --filters Name=network-info.efa-supported,Values=true`"
)


class _Queue(Protocol):
    efa: bool
    placement_group: bool

    @property
    def is_fargate(self) -> bool: ...


def supports_efa(instance_type: str) -> bool:
    return instance_type.lower() in EFA_INSTANCE_TYPES


def queue_problems(
    queue: _Queue, instance_types: list[tuple[KeyPath, list[str] | None]], at: KeyPath
) -> Iterator[Problem]:
    """`instance_types`: each environment's key path and its `instance_types` (None: default)."""
    for key in ("efa", "placement_group"):
        if getattr(queue, key) and queue.is_fargate:
            what = "EFA" if key == "efa" else "placement groups"
            yield Problem((*at, key), f"Fargate has no {what}; use EC2 or SPOT environments")
    if not queue.efa or queue.is_fargate:
        return
    for ce_at, types in instance_types:
        if not types:
            yield Problem(
                (*ce_at, "instance_types"),
                "an `efa: true` queue needs instance types that support EFA, each with its size "
                f"(e.g. [c6in.32xlarge, hpc7a.96xlarge]); {EFA_TYPES_HINT}",
            )
            continue
        for ti, instance_type in enumerate(types):
            if not supports_efa(instance_type):
                yield Problem(
                    (*ce_at, "instance_types", ti),
                    f"{instance_type!r} does not support EFA (a family needs its size, e.g. "
                    f"c6in.32xlarge); {EFA_TYPES_HINT}",
                )

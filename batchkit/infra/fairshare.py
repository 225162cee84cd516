"""Fair-share scheduling policies: one per queue that asks for `fair_share:`."""

from __future__ import annotations

from batchkit.infra.cfn import Json
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, pascal
from batchkit.infra.queueconfig import QueueConfig


def policy_id(queue: QueueConfig) -> str:
    return f"SchedulingPolicy{pascal(queue.name)}"


def scheduling_policy(config: ClusterConfig, queue: QueueConfig) -> Json:
    """An `AWS::Batch::SchedulingPolicy` (Batch API Reference, `FairsharePolicy`,
    `ShareAttributes`); its Ref is the policy's ARN, which the queue names."""
    assert queue.fair_share is not None
    share = queue.fair_share
    return {
        "Type": "AWS::Batch::SchedulingPolicy",
        "Properties": {
            "Name": Names.of(config).scheduling_policy(queue),
            "FairsharePolicy": {
                "ComputeReservation": share.compute_reservation,
                "ShareDecaySeconds": share.share_decay_seconds,
                "ShareDistribution": [
                    {"ShareIdentifier": identifier, "WeightFactor": weight}
                    for identifier, weight in share.shares.items()
                ],
            },
            "Tags": {"batchkit:cluster": config.name, **config.tags},
        },
    }


def resources(config: ClusterConfig) -> Json:
    return {
        policy_id(queue): scheduling_policy(config, queue)
        for queue in config.queues
        if queue.fair_share is not None
    }

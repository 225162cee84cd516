"""Where a multi-node parallel job may go, checked before anything is staged or sent.

AWS Batch User Guide, "Multi-node parallel jobs": they run on EC2 compute environments only
(Fargate resources are not supported), and the job ends when its main node ends; a node that
stops, as a reclaimed Spot instance does, takes every rank on it along, so the whole job fails.
"""

from __future__ import annotations

import warnings

from batchkit.errors import UsageError
from batchkit.models import JobSpec

FARGATE = "FARGATE"
SPOT = "SPOT"
EC2 = "EC2"
"""What a queue runs on, as a provider says it: Fargate only, Spot only, or EC2 (on-demand, or
on-demand and Spot)."""


class MultiNodeWarning(UserWarning):
    """A multi-node job that will run, at a risk the user should know about."""


def check_queue(spec: JobSpec, capacity: str | None) -> None:
    """Refuse a multi-node job for a Fargate queue; warn for a Spot-only one. `capacity` None:
    the provider cannot tell (AWS Batch decides)."""
    if spec.nodes <= 1:
        return
    queue = spec.queue or "the default queue"
    if capacity == FARGATE:
        raise UsageError(
            f"-n/--nodes {spec.nodes}: {queue} runs on Fargate, which runs no multi-node jobs",
            hint="send it to a queue with EC2 (or SPOT) compute environments: --queue NAME",
        )
    if capacity == SPOT:
        warnings.warn(
            f"{queue} runs on Spot instances only: one reclaimed instance fails the whole "
            f"{spec.nodes}-node job (an on-demand queue avoids that)",
            MultiNodeWarning,
            stacklevel=3,
        )

"""How long a job may block the head of its queue before Batch cancels it
(`queues[].blocked_job_timeouts:` in batchkit.yaml → the queue's `JobStateTimeLimitActions`).

Batch sets a reason on a RUNNABLE job that blocks its queue and, with these actions, cancels the
job once it has kept that reason for the time given, so the jobs behind it can run (AWS Batch
user guide, "Automatic remediation with jobStateTimeLimitActions"; API reference,
`JobStateTimeLimitAction`: state RUNNABLE, action CANCEL, 600 to 86,400 seconds).

The defaults are what a user would choose: a misconfiguration does not fix itself, so such a job
is cancelled after 10 minutes (the least Batch allows); a shortage of capacity often passes, so
such a job waits 4 hours (the user guide's own example). `null` turns one off.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from batchkit.infra.configbase import Model

Minutes = Annotated[int, Field(ge=10, le=1440)]
"""600 to 86,400 seconds, in minutes."""

REASONS = {
    "insufficient_capacity": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "max_resource": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "resource_requirement": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
}
"""Config key → the status reason Batch sets (and the action's `Reason` must name)."""


class BlockedJobTimeoutsConfig(Model):
    """Minutes a job may block its queue for each of Batch's reasons (null: never cancel)."""

    insufficient_capacity: Minutes | None = 240
    max_resource: Minutes | None = 10
    resource_requirement: Minutes | None = 10

    def actions(self) -> list[dict[str, Any]]:
        """The queue's `JobStateTimeLimitActions` (CloudFormation spelling)."""
        return [
            {
                "Action": "CANCEL",
                "MaxTimeSeconds": minutes * 60,
                "Reason": reason,
                "State": "RUNNABLE",
            }
            for key, reason in REASONS.items()
            if (minutes := getattr(self, key)) is not None
        ]

"""The names a cluster's AWS resources get, in one place.

Batch resources are named `<cluster>_<queue>…`: cluster names cannot contain `_`, so the IAM
patterns `<cluster>_*` never match another cluster (ParallelCluster's `PclusterJobQueue*` did).
"""

from __future__ import annotations

from msgspec import Struct

from batchkit.infra.config import ClusterConfig
from batchkit.infra.queueconfig import ComputeEnvironmentConfig, QueueConfig

# What each of a stack's Lambda functions does, the tail of its name (`Names.lambda_function`).
EMPTY_ECR_FUNCTION = "empty-ecr"
EMPTY_S3_FUNCTION = "empty-s3"
DEFAULT_IMAGE_FUNCTION = "default-image"
LAMBDA_PURPOSES = (EMPTY_ECR_FUNCTION, EMPTY_S3_FUNCTION, DEFAULT_IMAGE_FUNCTION)


def pascal(name: str) -> str:
    """`fargate-spot` → `FargateSpot` (for logical ids)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-") if part)


def bucket_name(cluster: str, account: str, region: str) -> str:
    """The bucket a cluster's stack creates (C4): `batchkit-<cluster>-<account>-<region>`."""
    return f"batchkit-{cluster}-{account}-{region}".lower()[:63].rstrip("-.")


class Names(Struct, frozen=True):
    """Physical and logical names of one cluster's resources."""

    cluster: str

    @classmethod
    def of(cls, config: ClusterConfig) -> Names:
        return cls(config.name)

    @property
    def stack(self) -> str:
        return self.cluster

    @property
    def prefix(self) -> str:
        return f"batchkit-{self.cluster}"

    @property
    def role_path(self) -> str:
        return f"/batchkit/{self.cluster}/"

    @property
    def repository(self) -> str:
        return f"batchkit/{self.cluster}"

    @property
    def launch_template(self) -> str:
        return self.prefix

    def efa_launch_template(self, queue: str) -> str:
        """The launch template of `efa: true` queue `queue` (the cluster's plus an EFA)."""
        return f"{self.prefix}-{queue}-efa"

    @property
    def dashboard(self) -> str:
        return self.prefix

    @property
    def job_log_group(self) -> str:
        return f"/batchkit/{self.cluster}/jobs"

    @property
    def codebuild_log_group(self) -> str:
        return f"/batchkit/{self.cluster}/codebuild"

    @property
    def codebuild_project(self) -> str:
        return f"{self.prefix}-images"

    @property
    def job_state_rule(self) -> str:
        return f"{self.prefix}-job-state"

    @property
    def queue_blocked_rule(self) -> str:
        return f"{self.prefix}-queue-blocked"

    @property
    def job_event_log_rule(self) -> str:
        return f"{self.prefix}-job-events-log"

    @property
    def rules(self) -> tuple[str, ...]:
        """Every EventBridge rule a stack may have, whichever its config turns on."""
        return (self.job_state_rule, self.queue_blocked_rule, self.job_event_log_rule)

    @property
    def job_events_log_group(self) -> str:
        """Beside the job logs, so that `cluster delete`'s leftover check sees it too."""
        return f"/batchkit/{self.cluster}/events"

    def scheduling_policy(self, queue: QueueConfig) -> str:
        return f"{self.cluster}_{queue.name}"

    @property
    def submitter_policy(self) -> str:
        return f"{self.prefix}-submitter"

    @property
    def job_events_log_policy(self) -> str:
        """The CloudWatch Logs resource policy that lets EventBridge write the job-events log."""
        return f"{self.prefix}-job-events"

    @property
    def job_events_topic(self) -> str:
        return f"{self.prefix}-job-events"

    def lambda_function(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    @property
    def lambda_functions(self) -> tuple[str, ...]:
        """Every Lambda function a stack may have (the cleanup functions, the default-image
        build), whichever its config turns on."""
        return tuple(self.lambda_function(purpose) for purpose in LAMBDA_PURPOSES)

    @staticmethod
    def lambda_log_group(function: str) -> str:
        """The log group of Lambda function `function`, which the stack makes ahead of it."""
        return f"/aws/lambda/{function}"

    @property
    def lambda_log_groups(self) -> tuple[str, ...]:
        return tuple(self.lambda_log_group(function) for function in self.lambda_functions)

    def queue(self, queue: QueueConfig) -> str:
        return f"{self.cluster}_{queue.name}"

    def compute_environment(self, queue: QueueConfig, ce: ComputeEnvironmentConfig) -> str:
        return f"{self.cluster}_{queue.name}_{ce.name}"

    def job_definition(self, kind: str) -> str:
        return f"{self.cluster}_{kind}"


def queue_id(queue: QueueConfig) -> str:
    return f"JobQueue{pascal(queue.name)}"


def compute_environment_id(queue: QueueConfig, ce: ComputeEnvironmentConfig) -> str:
    return f"ComputeEnvironment{pascal(queue.name)}{pascal(ce.name)}"

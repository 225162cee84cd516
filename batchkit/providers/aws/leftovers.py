"""What of a deleted cluster still exists: everything its stack made or batchkit registered.

Each kind of resource is looked up by the name the stack gave it (`StackNames`, which
`batchkit.infra.naming.Names` is: `clusters.stacks` hands it in): the
bucket, the ECR repository, the log groups, the IAM roles and the instance profile, the Batch
compute environments, job queues, scheduling policies and job definitions (the stack's and those
batchkit registered for `--image`), the Lambda functions, the EventBridge rules, the SNS topic,
the launch templates (the cluster's and each `efa: true` queue's), the CodeBuild project, the
submitter's managed policy, the job-events Logs resource policy and the CloudWatch dashboard; the
placement groups, which the stack does not name, by their `batchkit:cluster` tag. Where AWS only
lists by prefix (or not even that: ListFunctions), the answer is kept to the exact names, since
cluster names may contain `-`: `batchkit-<cluster>-*` also matches cluster `<cluster>-x`'s. A
lookup that fails (throttling, a network error, a permission these credentials lack) is reported
as "not checked: why", never as gone: only an answer that says "absent" counts as absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Protocol

from msgspec import Struct

from batchkit.errors import BatchkitError
from batchkit.providers.aws.errors import error_code
from batchkit.providers.aws.session import Api
from batchkit.providers.aws.submitjob import CLUSTER_TAG

ApiFactory = Callable[[str], Api]


class StackNames(Protocol):
    """The names a cluster's stack gives what it makes (`batchkit.infra.naming.Names`)."""

    @property
    def role_path(self) -> str: ...

    @property
    def repository(self) -> str: ...

    @property
    def codebuild_project(self) -> str: ...

    @property
    def job_events_topic(self) -> str: ...

    @property
    def job_events_log_policy(self) -> str: ...

    @property
    def launch_template(self) -> str: ...

    def efa_launch_template(self, queue: str) -> str: ...

    @property
    def dashboard(self) -> str: ...

    @property
    def lambda_functions(self) -> tuple[str, ...]: ...

    @property
    def lambda_log_groups(self) -> tuple[str, ...]: ...

    @property
    def rules(self) -> tuple[str, ...]: ...


# The answers that mean "there is no such resource" (HeadBucket answers a bare 404).
ABSENT_CODES = frozenset(
    {"404", "NoSuchBucket", "NotFound", "RepositoryNotFoundException", "NoSuchEntity"}
)


class Leftovers(Struct, frozen=True):
    """Look up what remains of cluster `cluster`, whose stack named its resources `names`;
    `api(service)` gives each service's caller."""

    api: ApiFactory
    cluster: str
    names: StackNames
    bucket: str = ""
    job_role: str | None = None
    queues: tuple[str, ...] = ()
    """The names of the stack's queues (`QueueConfig.name`): those with `efa: true` had a launch
    template of their own."""

    def __call__(self) -> list[str]:
        left: list[str] = []
        for kind, check in self._checks():
            try:
                left += list(check())
            except BatchkitError as err:
                if _absent(err):
                    continue
                left.append(f"{kind} (not checked: {err.message})")
        return left

    def _checks(self) -> list[tuple[str, Callable[[], Iterable[str]]]]:
        names = self.names
        checks: list[tuple[str, Callable[[], Iterable[str]]]] = []
        if self.bucket:
            checks.append((f"S3 bucket {self.bucket}", self._bucket))
        checks += [
            (f"ECR repository {names.repository}", self._repository),
            (
                f"log groups /batchkit/{self.cluster}/*",
                lambda: self._log_groups(f"/batchkit/{self.cluster}/"),
            ),
            (f"log groups {', '.join(names.lambda_log_groups)}", self._lambda_log_groups),
            (f"IAM roles under {names.role_path}", self._roles),
            (f"IAM instance profiles under {names.role_path}", self._instance_profiles),
            (f"Batch job queues {self.cluster}_*", self._queues),
            (f"Batch compute environments {self.cluster}_*", self._compute_environments),
            (f"Batch scheduling policies {self.cluster}_*", self._scheduling_policies),
            ("Batch job definitions of the cluster", self._job_definitions),
            (f"Lambda functions {', '.join(names.lambda_functions)}", self._functions),
            (f"EventBridge rules {', '.join(names.rules)}", self._rules),
            (f"SNS topic {names.job_events_topic}", self._topics),
            (f"EC2 launch templates {', '.join(self._templates())}", self._launch_templates),
            (f"EC2 placement groups tagged {CLUSTER_TAG}={self.cluster}", self._placement_groups),
            (f"CodeBuild project {names.codebuild_project}", self._project),
            (f"IAM managed policies under {names.role_path}", self._managed_policies),
            (f"CloudWatch Logs resource policy {names.job_events_log_policy}", self._logs_policy),
            (f"CloudWatch dashboard {names.dashboard}", self._dashboard),
        ]
        return checks

    def _bucket(self) -> Iterator[str]:
        self.api("s3").call("head_bucket", Bucket=self.bucket)
        yield f"S3 bucket {self.bucket}"

    def _repository(self) -> Iterator[str]:
        name = self.names.repository
        self.api("ecr").call("describe_repositories", repositoryNames=[name])
        yield f"ECR repository {name}"

    def _log_groups(self, prefix: str, only: Collection[str] = ()) -> Iterator[str]:
        """The log groups whose names start with `prefix`; of those, only the names `only`
        holds when it is given."""
        logs = self.api("logs")
        for page in logs.paginate("describe_log_groups", logGroupNamePrefix=prefix):
            for group in page.get("logGroups", []):
                if not only or group["logGroupName"] in only:
                    yield f"log group {group['logGroupName']}"

    def _lambda_log_groups(self) -> Iterator[str]:
        """DescribeLogGroups looks up by prefix only, and `/aws/lambda/batchkit-<cluster>-`
        also matches cluster `<cluster>-x`'s groups: the answer is kept to the exact names."""
        wanted = set(self.names.lambda_log_groups)
        return self._log_groups(common_prefix(wanted), only=wanted)

    def _roles(self) -> Iterator[str]:
        iam = self.api("iam")
        pages = iam.paginate(
            "list_roles", cursor_in="Marker", cursor_out="Marker",
            PathPrefix=self.names.role_path,
        )  # fmt: skip
        for page in pages:
            yield from (f"IAM role {role['RoleName']}" for role in page.get("Roles", []))

    def _instance_profiles(self) -> Iterator[str]:
        path = self.names.role_path
        pages = self.api("iam").paginate(
            "list_instance_profiles", cursor_in="Marker", cursor_out="Marker", PathPrefix=path
        )
        for page in pages:
            for profile in page.get("InstanceProfiles", []):
                # moto answers every profile, whatever the PathPrefix
                if str(profile.get("Path", "")).startswith(path):
                    yield f"IAM instance profile {profile['InstanceProfileName']}"

    def _queues(self) -> Iterator[str]:
        for page in self.api("batch").paginate("describe_job_queues"):
            for queue in page.get("jobQueues", []):
                if self._ours(queue["jobQueueName"]):
                    yield f"Batch job queue {queue['jobQueueName']} ({queue.get('state', '')})"

    def _compute_environments(self) -> Iterator[str]:
        for page in self.api("batch").paginate("describe_compute_environments"):
            for ce in page.get("computeEnvironments", []):
                if self._ours(ce["computeEnvironmentName"]):
                    yield f"Batch compute environment {ce['computeEnvironmentName']}"

    def _scheduling_policies(self) -> Iterator[str]:
        for page in self.api("batch").paginate("list_scheduling_policies"):
            for policy in page.get("schedulingPolicies", []):
                name = str(policy["arn"]).rsplit("/", 1)[-1]
                if self._ours(name):
                    yield f"Batch scheduling policy {name}"

    def _job_definitions(self) -> Iterator[str]:
        batch = self.api("batch")
        for page in batch.paginate("describe_job_definitions", status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                name = str(definition["jobDefinitionName"])
                if self._ours(name) or registered_for(definition, self.cluster, self.job_role):
                    yield f"Batch job definition {name}:{definition.get('revision', '')}"

    def _functions(self) -> Iterator[str]:
        """ListFunctions lists every function of the region: kept to the stack's exact names
        (`batchkit-<cluster>-*` would also match cluster `<cluster>-x`'s)."""
        wanted = set(self.names.lambda_functions)
        pages = self.api("lambda").paginate(
            "list_functions", cursor_in="Marker", cursor_out="NextMarker"
        )
        for page in pages:
            for function in page.get("Functions", []):
                if function["FunctionName"] in wanted:
                    yield f"Lambda function {function['FunctionName']}"

    def _rules(self) -> Iterator[str]:
        """ListRules looks up by prefix only: the answer is kept to the stack's exact names."""
        wanted = set(self.names.rules)
        pages = self.api("events").paginate(
            "list_rules", cursor_in="NextToken", cursor_out="NextToken",
            NamePrefix=common_prefix(wanted),
        )  # fmt: skip
        for page in pages:
            for rule in page.get("Rules", []):
                if rule["Name"] in wanted:
                    yield f"EventBridge rule {rule['Name']}"

    def _topics(self) -> Iterator[str]:
        topic = self.names.job_events_topic
        sns = self.api("sns")
        pages = sns.paginate("list_topics", cursor_in="NextToken", cursor_out="NextToken")
        for page in pages:
            for item in page.get("Topics", []):
                if str(item["TopicArn"]).rsplit(":", 1)[-1] == topic:
                    yield f"SNS topic {topic}"

    def _templates(self) -> list[str]:
        """The cluster's launch template and the names an `efa: true` queue's would have (exact
        names: `batchkit-<cluster>-*-efa` would also match cluster `<cluster>-x`'s)."""
        names = self.names
        return [names.launch_template, *(names.efa_launch_template(q) for q in self.queues)]

    def _launch_templates(self) -> Iterator[str]:
        pages = self.api("ec2").paginate(
            "describe_launch_templates", cursor_in="NextToken", cursor_out="NextToken",
            Filters=[{"Name": "launch-template-name", "Values": self._templates()}],
        )  # fmt: skip
        for page in pages:
            for template in page.get("LaunchTemplates", []):
                yield f"EC2 launch template {template['LaunchTemplateName']}"

    def _placement_groups(self) -> Iterator[str]:
        answer = self.api("ec2").call(
            "describe_placement_groups",
            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [self.cluster]}],
        )
        for group in answer.get("PlacementGroups", []):
            if group.get("State") != "deleted":
                yield f"EC2 placement group {group['GroupName']} ({group.get('State', '')})"

    def _project(self) -> Iterator[str]:
        name = self.names.codebuild_project
        answer = self.api("codebuild").call("batch_get_projects", names=[name])
        if answer.get("projects"):
            yield f"CodeBuild project {name}"

    def _managed_policies(self) -> Iterator[str]:
        pages = self.api("iam").paginate(
            "list_policies", cursor_in="Marker", cursor_out="Marker",
            Scope="Local", PathPrefix=self.names.role_path,
        )  # fmt: skip
        for page in pages:
            yield from (f"IAM policy {item['PolicyName']}" for item in page.get("Policies", []))

    def _logs_policy(self) -> Iterator[str]:
        name = self.names.job_events_log_policy
        for page in self.api("logs").paginate("describe_resource_policies"):
            for item in page.get("resourcePolicies", []):
                if item.get("policyName") == name:
                    yield f"CloudWatch Logs resource policy {name}"

    def _dashboard(self) -> Iterator[str]:
        name = self.names.dashboard
        pages = self.api("cloudwatch").paginate(
            "list_dashboards", cursor_in="NextToken", cursor_out="NextToken",
            DashboardNamePrefix=name,
        )  # fmt: skip
        for page in pages:
            for item in page.get("DashboardEntries", []):
                if item.get("DashboardName") == name:
                    yield f"CloudWatch dashboard {name}"

    def _ours(self, name: str) -> bool:
        """Batch names of this cluster: `<cluster>_…` (cluster names have no `_`, so no other
        cluster's resources match)."""
        return name.startswith(f"{self.cluster}_")


def registered_for(definition: Mapping[str, Any], cluster: str, role: str | None) -> bool:
    """Whether batchkit registered this job definition on demand for `cluster`."""
    if not str(definition.get("jobDefinitionName", "")).startswith("batchkit-"):
        return False
    tagged = (definition.get("tags") or {}).get(CLUSTER_TAG)
    if tagged is not None:
        return bool(tagged == cluster)
    return bool(role) and str(role) in json.dumps(definition)


def common_prefix(names: Collection[str]) -> str:
    """The longest prefix all of `names` share (what a lookup by prefix asks for): that of the
    first and the last in sort order."""
    low, high = min(names), max(names)
    size = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))
    return low[:size]


def _absent(err: BatchkitError) -> bool:
    """The lookup's answer was "no such resource" (the botocore error is the cause)."""
    cause = err.__cause__
    return cause is not None and error_code(cause) in ABSENT_CODES

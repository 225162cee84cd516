"""The leftover check after `cluster delete`, faked at its seam (the per-service `Api`); the
dashboard, instance profile, EFA launch template, Lambda function, EventBridge rule and Lambda log
group lookups also on in-process moto."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from batchkit.errors import AwsError
from batchkit.infra.naming import Names
from batchkit.providers.aws.leftovers import Leftovers
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from batchkit.providers.aws.stackevents import ClusterStatus
from batchkit.providers.aws.stackteardown import StackTeardown
from tests.fixtures.moto_batch import MOTO_AS_AWS
from tests.fixtures.moto_server import REGION


def by_prefix(key: str, field: str, param: str, names: list[str]) -> Callable[..., Any]:
    """An answer that lists, of `names`, those starting with the request's `param` (as the
    lookups by prefix on AWS answer)."""

    def answer(params: dict[str, Any]) -> dict[str, Any]:
        return {key: [{field: n} for n in names if n.startswith(params.get(param, ""))]}

    return answer


EVERYTHING: dict[str, Any] = {
    "s3.head_bucket": {},
    "ecr.describe_repositories": {"repositories": [{"repositoryName": "batchkit/research"}]},
    "logs.describe_log_groups": by_prefix(
        "logGroups",
        "logGroupName",
        "logGroupNamePrefix",
        [
            "/batchkit/research/jobs",
            "/batchkit/research-x/jobs",  # cluster research-x's, as are the other -x names
            "/aws/lambda/batchkit-research-empty-s3",
            "/aws/lambda/batchkit-research-x-empty-s3",
            "/aws/lambda/batchkit-research-x-default-image",
        ],
    ),
    "iam.list_roles": {"Roles": [{"RoleName": "research-JobRole"}]},
    "iam.list_instance_profiles": {
        "InstanceProfiles": [
            {"InstanceProfileName": "research-InstanceProfile-1A2B", "Path": "/batchkit/research/"},
            {"InstanceProfileName": "other", "Path": "/batchkit/research-x/"},  # research-x's
        ]
    },
    "batch.describe_job_queues": {
        "jobQueues": [
            {"jobQueueName": "research_cpu", "state": "DISABLED"},
            {"jobQueueName": "other_cpu", "state": "ENABLED"},
        ]
    },
    "batch.describe_compute_environments": {
        "computeEnvironments": [{"computeEnvironmentName": "research_cpu_spot"}]
    },
    "batch.list_scheduling_policies": {
        "schedulingPolicies": [{"arn": "arn:aws:batch:r:1:scheduling-policy/research_shared"}]
    },
    "batch.describe_job_definitions": {
        "jobDefinitions": [
            {"jobDefinitionName": "research_container", "revision": 1},
            {
                "jobDefinitionName": "batchkit-0123456789ab",
                "revision": 2,
                "tags": {"batchkit:cluster": "research"},
            },
            {
                "jobDefinitionName": "batchkit-abcdefabcdef",
                "revision": 1,
                "tags": {"batchkit:cluster": "another"},
            },
        ]
    },
    "lambda.list_functions": {
        "Functions": [
            {"FunctionName": "batchkit-research-empty-s3"},
            {"FunctionName": "batchkit-research-x-empty-s3"},
            {"FunctionName": "batchkit-research-x-default-image"},
            {"FunctionName": "x"},
        ]
    },
    "events.list_rules": by_prefix(
        "Rules",
        "Name",
        "NamePrefix",
        [
            "batchkit-research-job-state",
            "batchkit-research-x-job-state",
            "batchkit-research-x-job-events-log",
        ],
    ),
    "sns.list_topics": {"Topics": [{"TopicArn": "arn:aws:sns:r:1:batchkit-research-job-events"}]},
    "ec2.describe_launch_templates": {
        "LaunchTemplates": [
            {"LaunchTemplateName": "batchkit-research"},
            {"LaunchTemplateName": "batchkit-research-mpi-efa"},
        ]
    },
    "ec2.describe_placement_groups": {
        "PlacementGroups": [
            {"GroupName": "research-PlacementGroupMpi-1A2B", "State": "available"},
            {"GroupName": "research-PlacementGroupOld-3C4D", "State": "deleted"},
        ]
    },
    "codebuild.batch_get_projects": {"projects": [{"name": "batchkit-research-images"}]},
    "iam.list_policies": {"Policies": [{"PolicyName": "batchkit-research-submitter"}]},
    "logs.describe_resource_policies": {
        "resourcePolicies": [
            {"policyName": "batchkit-research-job-events"},
            {"policyName": "batchkit-other-job-events"},
        ]
    },
    "cloudwatch.list_dashboards": {
        "DashboardEntries": [
            {"DashboardName": "batchkit-research"},
            {"DashboardName": "batchkit-research-x"},  # cluster research-x's
        ]
    },
}
NOTHING: dict[str, Any] = {
    "s3.head_bucket": ClientError({"Error": {"Code": "404"}}, "HeadBucket"),
    "ecr.describe_repositories": ClientError(
        {"Error": {"Code": "RepositoryNotFoundException"}}, "DescribeRepositories"
    ),
    "ec2.describe_launch_templates": {"LaunchTemplates": []},
    "codebuild.batch_get_projects": {"projects": [], "projectsNotFound": ["x"]},
}


class FakeApi:
    """An `Api` that answers from a table: a dict is the response (one page), an exception is
    raised the way `Api.call` raises it (translated, the botocore error as the cause)."""

    def __init__(
        self, service: str, answers: dict[str, Any], calls: list[tuple[str, Any]] | None = None
    ) -> None:
        self.service = service
        self.answers = answers
        self.calls = [] if calls is None else calls

    def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        self.calls.append((f"{self.service}.{operation}", params))
        answer = self.answers.get(f"{self.service}.{operation}", {})
        if callable(answer):
            answer = answer(params)
        if isinstance(answer, BaseException):
            raise AwsError(f"AWS {self.service} {operation} failed: {answer}") from answer
        return dict(answer)

    def paginate(
        self, operation: str, /, cursor_in: str = "", cursor_out: str = "", **params: Any
    ) -> Iterator[dict[str, Any]]:
        yield self.call(operation, **params)


def check(answers: dict[str, Any], calls: list[tuple[str, Any]] | None = None) -> list[str]:
    return Leftovers(
        lambda service: FakeApi(service, answers, calls),  # type: ignore[arg-type,return-value]
        "research",
        Names("research"),
        bucket="batchkit-research-1-r",
        job_role="arn:aws:iam::1:role/batchkit/research/JobRole",
        queues=("cpu", "mpi"),
    )()


def test_every_kind_of_resource_left_behind_is_reported() -> None:
    assert check(EVERYTHING) == [
        "S3 bucket batchkit-research-1-r",
        "ECR repository batchkit/research",
        "log group /batchkit/research/jobs",
        "log group /aws/lambda/batchkit-research-empty-s3",
        "IAM role research-JobRole",
        "IAM instance profile research-InstanceProfile-1A2B",
        "Batch job queue research_cpu (DISABLED)",
        "Batch compute environment research_cpu_spot",
        "Batch scheduling policy research_shared",
        "Batch job definition research_container:1",
        "Batch job definition batchkit-0123456789ab:2",
        "Lambda function batchkit-research-empty-s3",
        "EventBridge rule batchkit-research-job-state",
        "SNS topic batchkit-research-job-events",
        "EC2 launch template batchkit-research",
        "EC2 launch template batchkit-research-mpi-efa",
        "EC2 placement group research-PlacementGroupMpi-1A2B (available)",
        "CodeBuild project batchkit-research-images",
        "IAM policy batchkit-research-submitter",
        "CloudWatch Logs resource policy batchkit-research-job-events",
        "CloudWatch dashboard batchkit-research",
    ]


def test_the_lookups_name_this_clusters_resources_exactly() -> None:
    """Launch templates by their exact names, not `batchkit-research-*-efa`, which would match
    cluster research-x's; placement groups, which CloudFormation names, by the cluster tag."""
    calls: list[tuple[str, Any]] = []
    check(NOTHING, calls)
    asked = dict(calls)
    assert asked["ec2.describe_launch_templates"]["Filters"] == [
        {
            "Name": "launch-template-name",
            "Values": [
                "batchkit-research",
                "batchkit-research-cpu-efa",
                "batchkit-research-mpi-efa",
            ],
        }
    ]
    assert asked["ec2.describe_placement_groups"]["Filters"] == [
        {"Name": "tag:batchkit:cluster", "Values": ["research"]}
    ]
    assert asked["iam.list_instance_profiles"]["PathPrefix"] == "/batchkit/research/"
    assert asked["cloudwatch.list_dashboards"]["DashboardNamePrefix"] == "batchkit-research"
    # by prefix (all AWS offers), the answers then kept to the exact names: see the next test
    assert asked["events.list_rules"]["NamePrefix"] == "batchkit-research-"
    prefixes = [p["logGroupNamePrefix"] for op, p in calls if op == "logs.describe_log_groups"]
    assert prefixes == ["/batchkit/research/", "/aws/lambda/batchkit-research-"]


def test_functions_rules_and_their_log_groups_of_cluster_research_x_are_not_researchs() -> None:
    """`batchkit-research-*` also matches cluster research-x's names: only the names research's
    stack gives are reported, its own still are."""
    left = check(EVERYTHING)
    assert not [line for line in left if "research-x" in line]
    assert [line for line in left if "empty-s3" in line or "job-state" in line] == [
        "log group /aws/lambda/batchkit-research-empty-s3",
        "Lambda function batchkit-research-empty-s3",
        "EventBridge rule batchkit-research-job-state",
    ]


def test_a_cluster_that_is_gone_leaves_nothing() -> None:
    assert check(NOTHING) == []


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("s3.head_bucket", "S3 bucket batchkit-research-1-r"),
        ("batch.describe_compute_environments", "Batch compute environments research_*"),
        (
            "lambda.list_functions",
            "Lambda functions batchkit-research-empty-ecr, batchkit-research-empty-s3, "
            "batchkit-research-default-image",
        ),
        (
            "events.list_rules",
            "EventBridge rules batchkit-research-job-state, batchkit-research-queue-blocked, "
            "batchkit-research-job-events-log",
        ),
        (
            "ec2.describe_launch_templates",
            "EC2 launch templates batchkit-research, batchkit-research-cpu-efa, "
            "batchkit-research-mpi-efa",
        ),
        ("iam.list_policies", "IAM managed policies under /batchkit/research/"),
        ("iam.list_instance_profiles", "IAM instance profiles under /batchkit/research/"),
        ("ec2.describe_placement_groups", "EC2 placement groups tagged batchkit:cluster=research"),
        ("cloudwatch.list_dashboards", "CloudWatch dashboard batchkit-research"),
    ],
)
def test_a_failing_lookup_is_not_checked_never_gone(operation: str, kind: str) -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")
    left = check({**NOTHING, operation: throttled})
    assert len(left) == 1
    assert left[0].startswith(f"{kind} (not checked: AWS ")


def test_dashboard_profile_and_efa_template_are_found_on_moto() -> None:
    """Made on in-process moto and looked up through botocore (its parameter checks and moto's
    answers); cluster research-x's are not reported. moto has no placement groups:
    `moto_has_no_placement_groups` answers for it."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_instance_profile(
            InstanceProfileName="research-Profile", Path="/batchkit/research/"
        )
        iam.create_instance_profile(InstanceProfileName="x-Profile", Path="/batchkit/research-x/")
        ec2 = boto3.client("ec2", region_name=REGION)
        for name in ("batchkit-research-mpi-efa", "batchkit-research-x-mpi-efa"):
            ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={})
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for name in ("batchkit-research", "batchkit-research-x"):
            cloudwatch.put_dashboard(DashboardName=name, DashboardBody="{}")
        session = AwsSession(
            region=REGION, hooks=MOTO_AS_AWS, retry=RetryPolicy(sleep=lambda _: None)
        )
        left = Leftovers(session.api, "research", Names("research"), queues=("cpu", "mpi"))()
    assert left == [
        "IAM instance profile research-Profile",
        "EC2 launch template batchkit-research-mpi-efa",
        "CloudWatch dashboard batchkit-research",
    ]


@pytest.mark.parametrize(
    "outputs",
    [
        {"JobQueues": json.dumps({"cpu": "arn:q/research_cpu", "mpi": "arn:q/research_mpi"})},
        # a stack from before the JobQueues output: the default queue's ARN
        {"BatchJobQueueArn": "arn:aws:batch:us-east-1:1:job-queue/research_mpi"},
    ],
)
def test_teardown_looks_for_each_queues_efa_launch_template(outputs: dict[str, str]) -> None:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        ec2.create_launch_template(
            LaunchTemplateName="batchkit-research-mpi-efa", LaunchTemplateData={}
        )
        session = AwsSession(
            region=REGION, hooks=MOTO_AS_AWS, retry=RetryPolicy(sleep=lambda _: None)
        )
        teardown = StackTeardown(session, None, Names)  # type: ignore[arg-type]
        status = ClusterStatus("research", "DELETE_COMPLETE", "", REGION, outputs=outputs)
        assert teardown.leftovers(status) == ["EC2 launch template batchkit-research-mpi-efa"]


def test_functions_rules_and_lambda_log_groups_of_research_x_are_not_reported_on_moto() -> None:
    """Clusters research and research-x each have a cleanup function, its log group and a rule
    on in-process moto: the delete of research reports research's only."""
    with mock_aws():
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="cleanup", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        functions = boto3.client("lambda", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        logs = boto3.client("logs", region_name=REGION)
        for cluster in ("research", "research-x"):
            names = Names(cluster)
            function = names.lambda_function("empty-s3")
            functions.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": zip_of("def handler(event, context): pass\n")},
            )
            logs.create_log_group(logGroupName=names.lambda_log_group(function))
            events.put_rule(Name=names.job_state_rule, EventPattern='{"source": ["aws.batch"]}')
        session = AwsSession(
            region=REGION, hooks=MOTO_AS_AWS, retry=RetryPolicy(sleep=lambda _: None)
        )
        left = Leftovers(session.api, "research", Names("research"))()
    assert left == [
        "log group /aws/lambda/batchkit-research-empty-s3",
        "Lambda function batchkit-research-empty-s3",
        "EventBridge rule batchkit-research-job-state",
    ]


def zip_of(source: str) -> bytes:
    """A deployment package with `index.py`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", source)
    return buffer.getvalue()

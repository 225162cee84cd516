"""The leftover check after `cluster delete`, faked at its seam (the per-service `Api`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchkit.errors import AwsError
from batchkit.infra.naming import Names
from batchkit.providers.aws.leftovers import Leftovers

EVERYTHING: dict[str, dict[str, Any]] = {
    "s3.head_bucket": {},
    "ecr.describe_repositories": {"repositories": [{"repositoryName": "batchkit/research"}]},
    "logs.describe_log_groups": {"logGroups": [{"logGroupName": "/batchkit/research/jobs"}]},
    "iam.list_roles": {"Roles": [{"RoleName": "research-JobRole"}]},
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
        "Functions": [{"FunctionName": "batchkit-research-empty-s3"}, {"FunctionName": "x"}]
    },
    "events.list_rules": {"Rules": [{"Name": "batchkit-research-job-state"}]},
    "sns.list_topics": {"Topics": [{"TopicArn": "arn:aws:sns:r:1:batchkit-research-job-events"}]},
    "ec2.describe_launch_templates": {"LaunchTemplates": [{"LaunchTemplateName": "x"}]},
    "codebuild.batch_get_projects": {"projects": [{"name": "batchkit-research-images"}]},
    "iam.list_policies": {"Policies": [{"PolicyName": "batchkit-research-submitter"}]},
    "logs.describe_resource_policies": {
        "resourcePolicies": [
            {"policyName": "batchkit-research-job-events"},
            {"policyName": "batchkit-other-job-events"},
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

    def __init__(self, service: str, answers: dict[str, Any]) -> None:
        self.service = service
        self.answers = answers

    def call(self, operation: str, /, **_: Any) -> dict[str, Any]:
        answer = self.answers.get(f"{self.service}.{operation}", {})
        if isinstance(answer, BaseException):
            raise AwsError(f"AWS {self.service} {operation} failed: {answer}") from answer
        return dict(answer)

    def paginate(self, operation: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        yield self.call(operation)


def check(answers: dict[str, Any]) -> list[str]:
    return Leftovers(
        lambda service: FakeApi(service, answers),  # type: ignore[arg-type,return-value]
        "research",
        Names("research"),
        bucket="batchkit-research-1-r",
        job_role="arn:aws:iam::1:role/batchkit/research/JobRole",
    )()


def test_every_kind_of_resource_left_behind_is_reported() -> None:
    assert check(EVERYTHING) == [
        "S3 bucket batchkit-research-1-r",
        "ECR repository batchkit/research",
        "log group /batchkit/research/jobs",
        "log group /batchkit/research/jobs",  # the fake answers both prefixes alike
        "IAM role research-JobRole",
        "Batch job queue research_cpu (DISABLED)",
        "Batch compute environment research_cpu_spot",
        "Batch scheduling policy research_shared",
        "Batch job definition research_container:1",
        "Batch job definition batchkit-0123456789ab:2",
        "Lambda function batchkit-research-empty-s3",
        "EventBridge rule batchkit-research-job-state",
        "SNS topic batchkit-research-job-events",
        "EC2 launch template batchkit-research",
        "CodeBuild project batchkit-research-images",
        "IAM policy batchkit-research-submitter",
        "CloudWatch Logs resource policy batchkit-research-job-events",
    ]


def test_a_cluster_that_is_gone_leaves_nothing() -> None:
    assert check(NOTHING) == []


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("s3.head_bucket", "S3 bucket batchkit-research-1-r"),
        ("batch.describe_compute_environments", "Batch compute environments research_*"),
        ("lambda.list_functions", "Lambda functions batchkit-research-*"),
        ("ec2.describe_launch_templates", "EC2 launch template batchkit-research"),
        ("iam.list_policies", "IAM managed policies under /batchkit/research/"),
    ],
)
def test_a_failing_lookup_is_not_checked_never_gone(operation: str, kind: str) -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")
    left = check({**NOTHING, operation: throttled})
    assert len(left) == 1
    assert left[0].startswith(f"{kind} (not checked: AWS ")

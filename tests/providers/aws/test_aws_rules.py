"""The AWS rules layer: each rule catches what AWS refuses, and the autouse check is wired to
every AwsSession, in this process and in `batchkit` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.aws_rules import RuleChecker


def problems(service: str, operation: str, params: dict[str, object]) -> list[str]:
    return RuleChecker().check(service, operation, params)


def submit(**extra: object) -> dict[str, object]:
    return {"jobName": "ok", "jobQueue": "q", "jobDefinition": "d", **extra}


@pytest.mark.parametrize(
    ("params", "found"),
    [
        (submit(jobName="-bad"), "jobName"),
        (submit(dependsOn=[{"jobId": str(i)} for i in range(21)]), "more than 20"),
        (submit(arrayProperties={"size": 1}), "array size 1"),
        (submit(arrayProperties={"size": 10_001}), "array size 10001"),
        (submit(containerOverrides={"command": ["a", ""]}), "empty string"),
        (submit(containerOverrides={"command": ["x" * 31 * 1024]}), "exceeds 30 KiB"),
        (
            submit(containerOverrides={"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}),
            "AWS_BATCH",
        ),
        (
            submit(containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "0.5"}]}),
            "positive integer on EC2",
        ),
        (submit(timeout={"attemptDurationSeconds": 59}), "under 60"),
        (submit(retryStrategy={"attempts": 11}), "attempts 11"),
        (submit(tags={f"k{i}": "v" for i in range(51)}), "51 tags"),
        (submit(tags={"aws:x": "v"}), "aws: prefix"),
        (submit(shareIdentifier="team-a"), "shareIdentifier"),
        (submit(schedulingPriorityOverride=10_000), "schedulingPriorityOverride"),
    ],
)
def test_submit_job_rules(params: dict[str, object], found: str) -> None:
    assert any(found in p for p in problems("batch", "SubmitJob", params))


def test_a_valid_submission_passes() -> None:
    overrides = {
        "command": ["/bin/sh", "-c", "true"],
        "resourceRequirements": [
            {"type": "VCPU", "value": "2"},
            {"type": "MEMORY", "value": "512"},
        ],
    }
    assert problems("batch", "SubmitJob", submit(containerOverrides=overrides)) == []


def fargate(cpus: str, memory: str, **extra: object) -> dict[str, object]:
    container = {
        "image": "x",
        "executionRoleArn": "arn:aws:iam::1:role/r",
        "resourceRequirements": [
            {"type": "VCPU", "value": cpus},
            {"type": "MEMORY", "value": memory},
        ],
    }
    return {
        "jobDefinitionName": "fg",
        "type": "container",
        "platformCapabilities": ["FARGATE"],
        "containerProperties": {**container, **extra},
    }


def test_fargate_definitions_take_the_documented_combinations_only() -> None:
    assert problems("batch", "RegisterJobDefinition", fargate("1", "2048")) == []
    assert problems("batch", "RegisterJobDefinition", fargate("16", "122880")) == []
    [wrong] = problems("batch", "RegisterJobDefinition", fargate("1", "1024"))
    assert "1024 MiB is not valid with 1 Fargate vCPUs" in wrong
    assert problems("batch", "RegisterJobDefinition", fargate("3", "4096"))
    assert problems("batch", "RegisterJobDefinition", fargate("1", "2048", vcpus=1))
    no_role = fargate("1", "2048")
    del no_role["containerProperties"]["executionRoleArn"]  # type: ignore[attr-defined]
    assert any("executionRoleArn" in p for p in problems("batch", "RegisterJobDefinition", no_role))


def test_no_multi_node_job_on_a_fargate_definition() -> None:
    checker = RuleChecker()
    checker.check("batch", "RegisterJobDefinition", fargate("1", "2048"))
    found = checker.check(
        "batch",
        "SubmitJob",
        submit(
            jobDefinition="arn:aws:batch:r:1:job-definition/fg:1", nodeOverrides={"numNodes": 2}
        ),
    )
    assert any("not supported on Fargate" in p for p in found)


def test_cloudformation_and_codebuild_rules() -> None:
    assert problems("cloudformation", "CreateStack", {"StackName": "1bad"})
    assert problems(
        "cloudformation", "CreateStack", {"StackName": "ok", "TemplateBody": "x" * 51_201}
    )
    assert problems(
        "cloudformation", "CreateStack", {"StackName": "ok", "ClientRequestToken": "-x"}
    )
    assert problems(
        "cloudformation", "CreateStack", {"StackName": "ok", "Tags": [{"Key": "k", "Value": ""}]}
    )
    assert problems("codebuild", "StartBuild", {"projectName": "p", "timeoutInMinutesOverride": 4})
    assert problems("batch", "DescribeJobs", {"jobs": [str(i) for i in range(101)]})
    assert problems("ecs", "DescribeContainerInstances", {"containerInstances": ["i"] * 101})


def test_the_autouse_check_sees_batchkits_requests(
    make_session: object, aws_rules: RuleChecker
) -> None:
    session = make_session()  # type: ignore[operator]
    session.api("batch").call("describe_jobs", jobs=[str(i) for i in range(101)])
    assert aws_rules.violations == ["batch.DescribeJobs: 101 jobs, more than 100"]
    aws_rules.violations.clear()  # this test's violation is the point, not a failure


def test_the_check_reaches_batchkit_subprocesses(moto_endpoint: str) -> None:
    code = (
        "from batchkit.providers.aws.session import AwsSession\n"
        "AwsSession(region='us-east-1').api('batch').call("
        "'describe_jobs', jobs=[str(i) for i in range(101)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    log = Path(os.environ["BATCHKIT_TEST_AWS_RULES_LOG"])
    assert log.read_text() == "subprocess batch.DescribeJobs: 101 jobs, more than 100\n"
    log.unlink()  # this test's violation is the point, not a failure

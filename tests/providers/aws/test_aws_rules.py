"""The AWS rules layer: each rule catches what AWS refuses, and the autouse check is wired to
every AwsSession, in this process and in `batchkit` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
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


def ec2_definition(**extra: object) -> dict[str, object]:
    container = {
        "image": "x",
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "512"},
        ],
    }
    return {
        "jobDefinitionName": "ec2",
        "type": "container",
        "containerProperties": container,
        **extra,
    }


def requirements(*pairs: tuple[str, object]) -> dict[str, object]:
    return {"resourceRequirements": [{"type": kind, "value": value} for kind, value in pairs]}


def stack(**extra: object) -> dict[str, object]:
    return {"StackName": "research", "TemplateURL": "https://b.s3.amazonaws.com/t.json", **extra}


def tags(count: int) -> list[dict[str, str]]:
    return [{"Key": f"k{i}", "Value": "v"} for i in range(count)]


ARN = "arn:aws:cloudformation:us-east-1:123456789012:stack/research/0b2c4d6e-1111"


# One case a rule: (service, operation, a request that breaks the rule, a valid one, what the
# report says). The valid request differs from the invalid one only where the rule looks.
RULE_CASES = [
    pytest.param(
        "batch",
        "SubmitJob",
        submit(retryStrategy={"attempts": 2, "evaluateOnExit": [{"action": "RETRY"}] * 6}),
        submit(retryStrategy={"attempts": 2, "evaluateOnExit": [{"action": "RETRY"}] * 5}),
        "more than 5 evaluateOnExit",
        id="evaluate-on-exit-at-most-5",
    ),
    pytest.param(
        "batch",
        "SubmitJob",
        submit(containerOverrides=requirements(("VCPU", "1"), ("MEMORY", "3"))),
        submit(containerOverrides=requirements(("VCPU", "1"), ("MEMORY", "4"))),
        "at least 4 MiB",
        id="memory-at-least-4-mib",
    ),
    pytest.param(
        "batch",
        "SubmitJob",
        submit(containerOverrides={"vcpus": 2, "memory": 512}),
        submit(containerOverrides=requirements(("VCPU", "2"), ("MEMORY", "512"))),
        "vcpus is deprecated",
        id="no-legacy-vcpus-memory-overrides",
    ),
    pytest.param(
        "batch",
        "SubmitJob",
        submit(containerOverrides=requirements(("CPU", "1"))),
        submit(containerOverrides=requirements(("VCPU", "1"))),
        "resourceRequirements type 'CPU'",
        id="resource-type",
    ),
    pytest.param(
        "batch",
        "SubmitJob",
        submit(containerOverrides=requirements(("VCPU", 1))),
        submit(containerOverrides=requirements(("VCPU", "1"))),
        "value must be a string",
        id="resource-value-is-a-string",
    ),
    pytest.param(
        "batch",
        "SubmitJob",
        submit(containerOverrides=requirements(("VCPU", "1"), ("VCPU", "2"))),
        submit(containerOverrides=requirements(("VCPU", "2"))),
        "VCPU twice",
        id="resource-once-each",
    ),
    pytest.param(
        "batch",
        "RegisterJobDefinition",
        fargate("2", "4096", **requirements(("VCPU", "2"), ("MEMORY", "4096"), ("GPU", "1"))),
        fargate("2", "4096"),
        "GPUs are not available on Fargate",
        id="no-gpu-on-fargate",
    ),
    pytest.param(
        "batch",
        "RegisterJobDefinition",
        ec2_definition(jobDefinitionName="research job"),
        ec2_definition(jobDefinitionName="research_job-1"),
        "jobDefinitionName must match",
        id="definition-name",
    ),
    pytest.param(
        "batch",
        "RegisterJobDefinition",
        ec2_definition(parameters={"blob": "x" * 24 * 1024}),
        ec2_definition(parameters={"blob": "x" * 23 * 1024}),
        "exceeds 24 KiB",
        id="definition-24-kib",
    ),
    pytest.param(
        "batch",
        "RegisterJobDefinition",
        {**fargate("1", "2048"), "type": "multinode"},
        fargate("1", "2048"),
        "container jobs only",
        id="fargate-type-container",
    ),
    pytest.param(
        "batch",
        "ListJobs",
        {"jobQueue": "q", "maxResults": 0},
        {"jobQueue": "q", "maxResults": 1000},
        "maxResults 0",
        id="list-jobs-max-results",
    ),
    pytest.param(
        "batch",
        "DescribeJobQueues",
        {"jobQueues": ["q"] * 101},
        {"jobQueues": ["q"] * 100},
        "101 jobQueues",
        id="describe-queues-100",
    ),
    pytest.param(
        "batch",
        "DescribeComputeEnvironments",
        {"computeEnvironments": ["c"] * 101},
        {"computeEnvironments": ["c"] * 100},
        "101 computeEnvironments",
        id="describe-ces-100",
    ),
    pytest.param(
        "batch",
        "DescribeJobDefinitions",
        {"jobDefinitions": ["d:1"] * 101},
        {"jobDefinitions": ["d:1"] * 100},
        "101 jobDefinitions",
        id="describe-definitions-100",
    ),
    pytest.param(
        "cloudformation",
        "CreateChangeSet",
        {**stack(), "ChangeSetName": "1-update"},
        {**stack(), "ChangeSetName": "batchkit-update-1"},
        "ChangeSetName",
        id="change-set-name",
    ),
    pytest.param(
        "cloudformation",
        "CreateStack",
        stack(Tags=tags(51)),
        stack(Tags=tags(50)),
        "51 tags",
        id="stack-tags-at-most-50",
    ),
    pytest.param(
        "cloudformation",
        "UpdateStack",
        stack(ClientRequestToken="-x"),
        stack(StackName=ARN, ClientRequestToken="0b2c4d6e1111"),
        "ClientRequestToken",
        id="update-stack-token",
    ),
    pytest.param(
        "cloudformation",
        "UpdateStack",
        stack(Tags=tags(51)),
        stack(Tags=tags(50)),
        "51 tags",
        id="update-stack-tags",
    ),
    pytest.param(
        "cloudformation",
        "UpdateStack",
        stack(TemplateBody="x" * 51_201, TemplateURL=None),
        stack(TemplateBody="x" * 51_200, TemplateURL=None),
        "exceeds 51,200",
        id="update-stack-template-body",
    ),
    pytest.param(
        "cloudformation",
        "UpdateStack",
        stack(StackName="research_1"),
        stack(StackName="research-1"),
        "neither a stack name nor a stack id",
        id="update-stack-name",
    ),
    pytest.param(
        "codebuild",
        "StartBuild",
        {"projectName": "p", "queuedTimeoutInMinutesOverride": 481},
        {"projectName": "p", "queuedTimeoutInMinutesOverride": 480},
        "queuedTimeoutInMinutesOverride 481",
        id="build-queued-timeout",
    ),
    pytest.param(
        "codebuild",
        "StartBuild",
        {"projectName": "p", "environmentVariablesOverride": [{"name": "", "value": "v"}]},
        {"projectName": "p", "environmentVariablesOverride": [{"name": "A", "value": "v"}]},
        "empty name",
        id="build-variable-name",
    ),
]


@pytest.mark.parametrize(("service", "operation", "bad", "good", "found"), RULE_CASES)
def test_each_rule_reports_what_breaks_it_and_passes_what_keeps_it(
    service: str, operation: str, bad: dict[str, object], good: dict[str, object], found: str
) -> None:
    bad = {k: v for k, v in bad.items() if v is not None}
    good = {k: v for k, v in good.items() if v is not None}
    assert any(found in p for p in problems(service, operation, bad)), problems(
        service, operation, bad
    )
    assert problems(service, operation, good) == []


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


def fargate_stack(definition: str) -> dict[str, object]:
    """A DescribeStacks answer with the stack's FargateJobDefinitions output."""
    output = {"OutputKey": "FargateJobDefinitions", "OutputValue": json.dumps({"f": definition})}
    return {"Stacks": [{"StackName": "research", "Outputs": [output]}]}


STACK_DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/research_fargate:1"


def test_a_stack_made_fargate_definition_is_learnt_from_the_stacks_outputs() -> None:
    """Jobs to the definition the stack made are held to Fargate's rules, not EC2's: 0.5 vCPU
    is a Fargate value, 1 vCPU with 1024 MiB is not."""
    checker = RuleChecker()
    half = submit(
        jobDefinition=STACK_DEFINITION,
        containerOverrides=requirements(("VCPU", "0.5"), ("MEMORY", "1024")),
    )
    assert any("positive integer on EC2" in p for p in checker.check("batch", "SubmitJob", half))
    checker.violations.clear()
    checker.learn("cloudformation", "DescribeStacks", fargate_stack(STACK_DEFINITION))
    assert checker.check("batch", "SubmitJob", half) == []
    small = submit(
        jobDefinition=STACK_DEFINITION,
        containerOverrides=requirements(("VCPU", "1"), ("MEMORY", "1024")),
    )
    [wrong] = checker.check("batch", "SubmitJob", small)
    assert "1024 MiB is not valid with 1 Fargate vCPUs" in wrong


def test_fargate_definitions_are_learnt_from_describe_job_definitions() -> None:
    """From platformCapabilities, or from Fargate-only container fields (moto describes a
    definition its CloudFormation made without platformCapabilities; a copy keeps those)."""
    checker = RuleChecker()
    described = {
        "jobDefinitions": [
            {"jobDefinitionName": "a", "platformCapabilities": ["FARGATE"]},
            {
                "jobDefinitionName": "b",
                "containerProperties": {"fargatePlatformConfiguration": {"platformVersion": "1"}},
            },
            {"jobDefinitionName": "c", "containerProperties": {"image": "x"}},
        ]
    }
    checker.learn("batch", "DescribeJobDefinitions", described)
    assert [checker.is_fargate(f"{name}:1") for name in "abc"] == [True, True, False]
    gpu = submit(jobDefinition="b:1", containerOverrides=requirements(("GPU", "1")))
    assert any("not available on Fargate" in p for p in checker.check("batch", "SubmitJob", gpu))


def test_the_autouse_check_learns_from_answers(
    make_session: object, aws_rules: RuleChecker
) -> None:
    """The after-call hooks reach `learn`: a Fargate definition registered behind batchkit's
    back is known once batchkit has described it."""
    batch = boto3.client("batch", region_name="us-east-1")
    batch.register_job_definition(**fargate("1", "2048"))
    assert not aws_rules.is_fargate("fg")
    session = make_session()  # type: ignore[operator]
    session.api("batch").call("describe_job_definitions", jobDefinitionName="fg")
    assert aws_rules.is_fargate("arn:aws:batch:us-east-1:123456789012:job-definition/fg:1")
    assert aws_rules.violations == []

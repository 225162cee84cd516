"""The rendered stack deployed on moto: CREATE_COMPLETE, C4 outputs, clean teardown."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from tests.infra.moto_cluster import (
    MOCK_CONFIG,
    REGION,
    example_config_text,
    fill,
    moto_network,
    offline_parameters,
    remaining,
)

from batchkit import __version__
from batchkit.errors import ClusterNotFoundError, ConflictError
from batchkit.infra.config import ClusterConfig, parse_cluster_config
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.aws.stacks import ClusterStacks, Progress

BUCKET = "batchkit-research-123456789012-us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config=MOCK_CONFIG):
        yield


@pytest.fixture
def config(aws: None) -> ClusterConfig:
    return parse_cluster_config(example_config_text(moto_network()))


@pytest.fixture
def stacks(aws: None) -> ClusterStacks:
    sleeps: list[float] = []
    return ClusterStacks(AwsSession(region=REGION), sleep=sleeps.append)


def test_stack_is_created_and_its_outputs_satisfy_c4(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    progress: list[Progress] = []
    outcome = stacks.create(config, offline_parameters(), on_progress=progress.append)
    assert outcome.status == "CREATE_COMPLETE"
    assert any(p.event and p.event.status == "CREATE_COMPLETE" for p in progress)

    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="research"
    )["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["batchkit:cluster"] == "research"
    assert tags["project"] == "research"
    # What awsbatch-cli 1.6.0 reads.
    assert parameters["Scheduler"] == "awsbatch"
    assert parameters["ResourcesS3Bucket"] == BUCKET
    assert parameters["ArtifactS3RootDirectory"] == "batchkit/research"
    assert parameters["ProxyServer"] == "NONE"
    assert outputs["HeadNodePrivateIP"] == "NONE"
    assert outputs["BatchCliRequirements"] == "aws-parallelcluster-awsbatch-cli<2.0.0"
    assert "BatchJobDefinitionMnpArn" not in outputs  # multinode switched off
    # What batchkit reads.
    assert outputs["BatchkitVersion"] == __version__
    assert outputs["BucketName"] == BUCKET
    assert outputs["EcrRepositoryName"] == "batchkit/research"
    assert outputs["EcrRepositoryUri"].endswith("/batchkit/research")
    assert outputs["CodeBuildProjectName"] == "NONE"
    assert outputs["JobLogGroup"] == "/batchkit/research/jobs"
    assert ":role/batchkit/research/" in outputs["JobRoleArn"]

    batch = boto3.client("batch", region_name=REGION)
    queues = json.loads(outputs["JobQueues"])
    assert list(queues) == ["cpu", "gpu", "fargate"]
    assert queues["cpu"] == outputs["BatchJobQueueArn"]
    described = batch.describe_job_queues(jobQueues=list(queues.values()))["jobQueues"]
    assert {q["jobQueueName"] for q in described} == {
        "research_cpu",
        "research_gpu",
        "research_fargate",
    }
    environments = json.loads(outputs["ComputeEnvironments"])
    assert outputs["BatchComputeEnvironmentArn"] == environments["research_cpu_spot"]
    assert len(environments) == 5
    definition = batch.describe_job_definitions(jobDefinitions=[outputs["BatchJobDefinitionArn"]])
    container = definition["jobDefinitions"][0]["containerProperties"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/batchkit/research/jobs"

    # A job can be submitted to the created queue with the created definition.
    job = batch.submit_job(
        jobName="hello", jobQueue=queues["cpu"], jobDefinition=outputs["BatchJobDefinitionArn"]
    )
    assert job["jobId"]


def test_teardown_leaves_nothing_of_the_cluster(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    stacks.create(config, offline_parameters())
    fill(BUCKET, "batchkit/research/", "batchkit/research")
    before = remaining("research", BUCKET)
    assert before["objects"] == 7
    assert before["images"] == 3
    assert before["roles"] >= 3
    assert before["log_groups"] == 1

    progress: list[str] = []
    outcome = stacks.delete("research", on_progress=lambda p: progress.append(p.text))
    assert outcome.status == "DELETE_COMPLETE"
    assert outcome.leftovers == []
    assert remaining("research", BUCKET) == {
        "buckets": 0,
        "objects": 0,
        "repositories": 0,
        "images": 0,
        "roles": 0,
        "log_groups": 0,
    }
    assert "emptied s3://batchkit-research-123456789012-us-east-1/batchkit/research/ " in (
        "\n".join(progress)
    )
    assert any("emptied ECR repository batchkit/research (3 images)" in p for p in progress)


def test_create_refuses_an_existing_cluster(config: ClusterConfig, stacks: ClusterStacks) -> None:
    parameters = offline_parameters()
    stacks.create(config, parameters)
    with pytest.raises(ConflictError, match="already exists"):
        stacks.create(config, parameters)


def test_unknown_parameter_overrides_are_refused(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    with pytest.raises(ConflictError, match="EnableGpus"):
        stacks.create(config, {"EnableGpus": "true"})


def test_deleting_a_cluster_that_does_not_exist(stacks: ClusterStacks) -> None:
    with pytest.raises(ClusterNotFoundError):
        stacks.delete("nothing-here")


def test_list_shows_only_batchkit_stacks(config: ClusterConfig, stacks: ClusterStacks) -> None:
    stacks.create(config, offline_parameters())
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="other",
        TemplateBody=json.dumps(
            {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
        ),
    )
    assert [c.name for c in stacks.list()] == ["research"]
    status = stacks.status("research")
    assert status.status == "CREATE_COMPLETE"
    assert status.version == __version__
    assert list(status.queues) == ["cpu", "gpu", "fargate"]

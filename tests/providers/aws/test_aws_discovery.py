from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from batchkit.config import ClusterSettings
from batchkit.errors import ClusterNotFoundError, ConfigError, ConflictError, UsageError
from batchkit.models import SubmitRequest
from batchkit.providers.aws import open_provider
from batchkit.providers.aws.cloudformation import Stack
from batchkit.providers.aws.discovery import (
    cluster_from_stack,
    discover,
    resolve_target,
)
from batchkit.providers.aws.errors import StackStateError
from batchkit.providers.aws.session import AwsSession
from tests.fixtures.moto_server import Cluster, create_cluster

PC_OUTPUTS = {
    "BatchComputeEnvironmentArn": "arn:aws:batch:eu-west-1:1:compute-environment/ce",
    "BatchJobQueueArn": "arn:aws:batch:eu-west-1:1:job-queue/q",
    "BatchJobDefinitionArn": "arn:aws:batch:eu-west-1:1:job-definition/jd:1",
    "BatchJobDefinitionMnpArn": "arn:aws:batch:eu-west-1:1:job-definition/mnp:1",
}
PC_PARAMETERS = {
    "Scheduler": "awsbatch",
    "ResourcesS3Bucket": "bucket",
    "ArtifactS3RootDirectory": "parallelcluster/3.15.1/clusters/c-x",
}


def stack(status: str = "CREATE_COMPLETE", **changes: object) -> Stack:
    fields: dict[str, object] = {
        "name": "c",
        "stack_id": "arn:aws:cloudformation:eu-west-1:1:stack/c/uuid",
        "status": status,
        "outputs": PC_OUTPUTS,
        "parameters": PC_PARAMETERS,
    }
    fields.update(changes)
    return Stack(**fields)  # type: ignore[arg-type]


def test_a_parallelcluster_stack() -> None:
    info = cluster_from_stack("c", stack())
    assert info.source == "parallelcluster"
    assert info.region == "eu-west-1"
    assert info.bucket == "bucket"
    assert info.artifact_root == "parallelcluster/3.15.1/clusters/c-x"
    assert info.job_queue.endswith("job-queue/q") and info.queues == {"q": info.job_queue}
    assert info.job_definition_mnp and info.job_definition_mnp.endswith("mnp:1")
    assert info.log_group == "/aws/batch/job"


def test_a_batchkit_stack_brings_its_queues_and_log_group() -> None:
    outputs = {
        **PC_OUTPUTS,
        "BatchkitVersion": "0.1.0",
        "JobLogGroup": "/batchkit/c/jobs",
        "JobQueues": json.dumps({"spot": "arn:aws:batch:eu-west-1:1:job-queue/spot"}),
        "ComputeEnvironments": json.dumps(
            {"gpu": "arn:aws:batch:eu-west-1:1:compute-environment/g"}
        ),
    }
    info = cluster_from_stack("c", stack(outputs=outputs))
    assert info.source == "batchkit" and info.version == "0.1.0"
    assert info.log_group == "/batchkit/c/jobs"
    assert list(info.queues) == ["q", "spot"]
    assert set(info.compute_environments) == {"ce", "gpu"}
    assert info.queue_capacity is None  # an older batchkit stack does not say


def test_a_batchkit_stack_says_what_each_queue_runs_on() -> None:
    outputs = {
        **PC_OUTPUTS,
        "BatchkitVersion": "0.2.0",
        "JobQueues": json.dumps({"spot": "arn:aws:batch:eu-west-1:1:job-queue/spot"}),
        "QueueCapacity": json.dumps({"spot": "SPOT", "q": "EC2"}),
    }
    info = cluster_from_stack("c", stack(outputs=outputs))
    assert info.queue_capacity == {"spot": "SPOT", "q": "EC2"}


def test_rolled_back_updates_are_usable() -> None:
    assert cluster_from_stack("c", stack("UPDATE_ROLLBACK_COMPLETE")).job_queue


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "CREATE_IN_PROGRESS", "DELETE_FAILED"])
def test_stacks_in_other_states_are_refused_with_the_reason(status: str) -> None:
    with pytest.raises(StackStateError) as info:
        cluster_from_stack("c", stack(status, status_reason="The following resource(s) failed"))
    assert status in info.value.message and "failed" in info.value.message
    assert info.value.hint


def test_other_schedulers_and_foreign_stacks() -> None:
    with pytest.raises(ConflictError, match="slurm"):
        cluster_from_stack("c", stack(parameters={**PC_PARAMETERS, "Scheduler": "slurm"}))
    with pytest.raises(ClusterNotFoundError) as info:
        cluster_from_stack("c", stack(parameters={}, outputs={}))
    assert info.value.hint and "neither" in info.value.hint


def test_incomplete_stacks_name_the_missing_key() -> None:
    outputs = {k: v for k, v in PC_OUTPUTS.items() if k != "BatchJobDefinitionArn"}
    with pytest.raises(ConfigError, match="BatchJobDefinitionArn"):
        cluster_from_stack("c", stack(outputs=outputs))


CFG = """\
[main]
cluster_name = legacy
region = eu-central-1

[cluster legacy]
region = eu-west-2
s3_bucket = legacy-bucket
artifact_directory = parallelcluster/clusters/legacy-x
batch_cli_requirements = aws-parallelcluster-awsbatch-cli<2.0.0
compute_environment = arn:aws:batch:eu-west-2:1:compute-environment/ce
job_queue = arn:aws:batch:eu-west-2:1:job-queue/q
job_definition = arn:aws:batch:eu-west-2:1:job-definition/custom:7
head_node_ip = 10.0.0.1
proxy = NONE
"""


def test_the_awsbatch_cli_section_names_every_resource(tmp_path: Path) -> None:
    path = tmp_path / "awsbatch-cli.cfg"
    path.write_text(CFG)
    target = resolve_target("legacy", cli_config=path)
    assert target.region == "eu-west-2" and target.section is not None
    seen: list[tuple[str | None, str | None]] = []

    def factory(profile: str | None, region: str | None, name: str) -> AwsSession:
        seen.append((profile, region))
        return AwsSession(profile=profile, region=region)

    _session, info = discover(
        "legacy", session_factory=factory, settings=ClusterSettings(), cli_config=path
    )
    assert seen == [(None, "eu-west-2")]
    assert info.source == "awsbatch-cli.cfg"
    assert info.job_definition.endswith("custom:7") and info.job_definition_mnp is None
    assert info.bucket == "legacy-bucket"


def test_other_clusters_take_the_main_region(tmp_path: Path) -> None:
    path = tmp_path / "awsbatch-cli.cfg"
    path.write_text(CFG)
    target = resolve_target("other", cli_config=path)
    assert target.section is None and target.region == "eu-central-1"
    assert resolve_target("other", region="ap-south-1", cli_config=path).region == "ap-south-1"


def test_an_incomplete_section_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "awsbatch-cli.cfg"
    path.write_text(CFG.replace("job_queue = arn:aws:batch:eu-west-2:1:job-queue/q\n", ""))
    with pytest.raises(ConfigError, match="job_queue"):
        resolve_target("legacy", cli_config=path)


def test_user_config_gives_profile_region_and_stack(tmp_path: Path) -> None:
    settings = ClusterSettings(region="us-west-2", profile="lab", stack="research-stack")
    target = resolve_target("research", settings=settings, cli_config=tmp_path / "none")
    assert (target.profile, target.region, target.stack) == ("lab", "us-west-2", "research-stack")
    flags = resolve_target(
        "research", profile="me", region="eu-west-1", settings=settings, cli_config=tmp_path / "x"
    )
    assert (flags.profile, flags.region) == ("me", "eu-west-1")


def test_open_provider_reads_the_stack(aws: None, cluster: Cluster) -> None:
    provider = open_provider("pc-test")
    assert provider.cluster_name == "pc-test" and provider.kind == "aws"
    assert provider.cluster.source == "parallelcluster"
    assert provider.cluster.job_queue == cluster.job_queue


def test_open_provider_follows_the_user_config(aws: None, batchkit_home: Path) -> None:
    create_cluster("real-stack", region="eu-west-1", batchkit=True, log_group="/bk/jobs")
    batchkit_home.mkdir(parents=True, exist_ok=True)
    (batchkit_home / "config.yaml").write_text(
        "clusters:\n  nick: {region: eu-west-1, stack: real-stack}\n"
    )
    provider = open_provider("nick")
    assert provider.cluster.source == "batchkit"
    assert provider.cluster.region == "eu-west-1"
    assert provider.cluster.log_group == "/bk/jobs"
    # a definition registered for --image is tagged with the stack's name, which is what
    # `cluster delete real-stack` looks for, not with the alias
    job = provider.submit(SubmitRequest(name="img", command=("true",), image="busybox:1.36"))
    batch = boto3.client("batch", region_name="eu-west-1")
    [definition] = batch.describe_job_definitions(jobDefinitions=[job.job_definition])[
        "jobDefinitions"
    ]
    assert definition["tags"] == {"batchkit:cluster": "real-stack"}


def test_an_unknown_cluster(aws: None) -> None:
    with pytest.raises(ClusterNotFoundError) as info:
        open_provider("nope")
    assert info.value.cluster == "nope"
    assert info.value.hint and "us-east-1" in info.value.hint


def test_an_unknown_name_without_a_region_is_not_found_and_says_where_batchkit_looked(
    batchkit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ClusterNotFoundError) as info:
        open_provider("nosuchcluster")  # no moto: a call to AWS would fail differently
    assert info.value.exit_code == 3
    assert str(info.value) == "no cluster named 'nosuchcluster'"
    hint = info.value.hint or ""
    assert f"{batchkit_home / 'config.yaml'} (no `clusters: nosuchcluster:`)" in hint
    assert "awsbatch-cli.cfg (no [cluster nosuchcluster])" in hint
    assert "CloudFormation stack 'nosuchcluster' (not looked up: no AWS region is set)" in hint


@pytest.mark.parametrize("name", ["no_such", "1abc", "a" * 129, "ünï", "a b", ""])
def test_names_no_stack_can_have_are_refused_before_any_call(
    batchkit_home: Path, name: str
) -> None:
    def no_session(*_: object) -> AwsSession:
        raise AssertionError("no session, no call")

    with pytest.raises(UsageError, match="is not a valid cluster name"):
        discover(name, session_factory=no_session)


def test_a_failed_stack_in_moto(aws: None) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="broken",
        TemplateBody=json.dumps(
            {"Resources": {"G": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}}
        ),
    )
    with pytest.raises(ClusterNotFoundError) as info:
        open_provider("broken")
    assert info.value.hint and "neither" in info.value.hint


@pytest.fixture
def batchkit_home(isolated_environment: Path) -> Path:
    return isolated_environment


_: Callable[..., object] = open_provider


def test_the_default_queue_is_not_listed_twice_when_job_queues_names_it() -> None:
    """`cluster create` names every queue in JobQueues, the default first (contract C4)."""
    default = PC_OUTPUTS["BatchJobQueueArn"]
    outputs = {
        **PC_OUTPUTS,
        "BatchkitVersion": "0.1.0",
        "EcrRepositoryUri": "1.dkr.ecr.eu-west-1.amazonaws.com/batchkit-c",
        "JobQueues": json.dumps({"cpu": default, "spot": default + "-spot"}),
    }
    info = cluster_from_stack("c", stack(outputs=outputs))
    assert list(info.queues) == ["cpu", "spot"]
    assert info.repository_uri == "1.dkr.ecr.eu-west-1.amazonaws.com/batchkit-c"
    assert cluster_from_stack("c", stack(outputs=PC_OUTPUTS)).repository_uri is None

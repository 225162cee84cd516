"""The submitter policy against what the commands really call.

A batchkit cluster (examples/platform.yaml, with a Spot environment of low bid added to `shared`
and one subnet routed through a NAT gateway, so that doctor reads what those need) is created on
moto. Then `sub` (plain, array, a script with an input file and a dependency, --image, fair
share), `stat`, `out`, `kill` (of a running job), `queues`, `hosts` (of a registered container
instance), `doctor` (the cluster, a finished job, a RUNNABLE job on an image of the cluster's
repository) and `image build` (one that finishes, one stopped at its --timeout) run through the
real CLI app; a botocore hook on every client records each call with its parameters and response.
Where moto falls short of AWS the test fills in what AWS does: jobs put back to RUNNING/RUNNABLE
(moto without Docker ends them at once), the image in DescribeJobs, the log group and stream of
a CodeBuild build, Batch's names for the environments' ECS clusters.

Each call becomes the IAM requests AWS evaluates for it (`policy_check.needs`: action, resource
ARN, condition keys), and a statement of the policy the stack exports, with its ARNs resolved
for this stack, must allow each one. Every action and every resource pattern of the policy must
be used by some call (NOT_EXERCISED would list any that cannot be, with the reason).

The end-to-end suite (tests/e2e_aws/) runs the installed `batchkit` as subprocesses against a
moto server, where a client hook cannot reach; it runs the same commands through the same
gateways, so the in-process run here stands for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.batch.models import Job, batch_backends
from moto.batch.utils import JobStatus
from moto.codebuild.models import CodeBuildProjectMetadata
from moto.core import DEFAULT_ACCOUNT_ID
from typer.testing import CliRunner

from batchkit.api import Cluster
from batchkit.cli.app import app
from batchkit.cli.context import CliEnv
from batchkit.cli.image import ImageCliEnv
from batchkit.clusters.stacks import ClusterStacks
from batchkit.images.pipeline import CloudRequest, open_cloud_builder
from batchkit.infra import access
from batchkit.infra.config import ClusterConfig, load_cluster_config, parse_cluster_config
from batchkit.infra.naming import Names
from batchkit.infra.template import render_template
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.session import AwsSession
from tests.images.moto_cluster import create_project, push_tag
from tests.infra.moto_cluster import MOCK_CONFIG, REGION, moto_network, offline_parameters
from tests.infra.policy_check import ANY, Call, Evaluator, Need, Where, needs

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "examples" / "platform.yaml"
SPOT = """        max_vcpus: 512
      - name: spot
        type: SPOT
        instance_types: [c6i]
        bid_percentage: 30
        max_vcpus: 256
"""

NOT_EXERCISED: dict[str, str] = {
    # an action or "Sid resource-pattern": why no call of this run reaches it (none today)
}
CLUSTER_MARKS = (
    "platform",  # the cluster's name in queue, definition, ECS cluster and log group ARNs
    "${Bucket}",
    "${Repository}",
    "${JobRole.Arn}",
    "${ExecutionRole.Arn}",
    "${AWS::StackName}",
    # Not named after the cluster: definitions batchkit registers for --image (each tagged
    # batchkit:cluster), and jobs, which Batch authorises per job id only.
    "job-definition/batchkit-*",
    ":job/*",
)


class Recorder:
    """botocore hooks: the call's parameters before they are serialised, then its response."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = Call(model.service_model.signing_name, model.name, dict(params))
        context["recorded"] = call
        self.calls.append(call)

    def after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("recorded")
        if call is not None:
            call.response = parsed

    def session(self, cluster: str) -> AwsSession:
        hooks = [("before-parameter-build", self.before), ("after-call", self.after)]
        return AwsSession(region=REGION, cluster=cluster, hooks=hooks, workers=1)


@dataclass
class Platform:
    config: ClusterConfig
    outputs: dict[str, str]
    parameters: dict[str, str]


def nat_route(subnet: str, nat_subnet: str) -> None:
    """Route `subnet` to the internet through a NAT gateway (doctor then checks the NAT)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=nat_subnet, AllocationId=eip)["NatGateway"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
    )
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)


@pytest.fixture
def platform() -> Iterator[Platform]:
    with mock_aws(config=MOCK_CONFIG):
        net = moto_network()
        nat_route(net.subnets[0], net.subnets[1])
        text = (
            PLATFORM.read_text()
            .replace("        max_vcpus: 512\n", SPOT, 1)
            .replace("subnet-0123456789abcdef0", net.subnets[0])
            .replace("subnet-0fedcba9876543210", net.subnets[1])
            .replace("sg-0123456789abcdef0", net.security_group)
        )
        config = parse_cluster_config(text)
        stacks = ClusterStacks(AwsSession(region=REGION), sleep=lambda _: None)
        assert stacks.create(config, offline_parameters()).status == "CREATE_COMPLETE"
        stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(
            StackName=config.name
        )["Stacks"][0]
        yield Platform(
            config,
            {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]},
            {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]},
        )


@pytest.fixture(autouse=True)
def job_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch's DescribeJobs names the container's image (doctor reads its manifest); moto's
    leaves it out."""
    details = Job._container_details

    def with_image(job: Job) -> dict[str, Any]:
        return {"image": job._get_container_property("image", None), **details(job)}

    monkeypatch.setattr(Job, "_container_details", with_image)


@pytest.fixture(autouse=True)
def build_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """CodeBuild says where a build logs (the group of the project's LogsConfig, a stream named
    after the build), and `image build` follows it; moto's builds name no group or stream."""
    group = Names.of(load_cluster_config(PLATFORM)).codebuild_log_group
    init = CodeBuildProjectMetadata.__init__

    def with_logs(build: CodeBuildProjectMetadata, *args: Any, **kwargs: Any) -> None:
        init(build, *args, **kwargs)
        stream = build.build_metadata["id"].split(":", 1)[1]
        build.build_metadata["logs"].update(groupName=group, streamName=stream)

    monkeypatch.setattr(CodeBuildProjectMetadata, "__init__", with_logs)


def set_status(job_id: str, status: JobStatus) -> None:
    """moto's Batch without Docker ends a job as it is submitted: put it back in `status`."""
    job = batch_backends[DEFAULT_ACCOUNT_ID][REGION]._jobs[job_id]
    job.status = status
    job.job_stopped = False


def ecs_clusters() -> dict[str, str]:
    """moto names a managed environment's ECS cluster `OnDemand_Batch_<uuid>`; Batch names it
    `<environment>_Batch_<uuid>` (AWS CLI reference, describe-compute-environments example:
    `P2OnDemand_Batch_2c06f29d-…` for environment P2OnDemand). The ARNs use Batch's names."""
    batch = boto3.client("batch", region_name=REGION)
    names = {}
    for ce in batch.describe_compute_environments()["computeEnvironments"]:
        moto_name = ce.get("ecsClusterArn", "").rsplit("/", 1)[-1]
        if moto_name:
            names[moto_name] = f"{ce['computeEnvironmentName']}_Batch_{moto_name.split('_')[-1]}"
    return names


def register_host() -> None:
    """An EC2 instance joined to the ECS cluster of `shared`'s on-demand environment."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    batch = boto3.client("batch", region_name=REGION)
    ce = batch.describe_compute_environments(computeEnvironments=["platform_shared_ondemand"])
    boto3.client("ecs", region_name=REGION).register_container_instance(
        cluster=ce["computeEnvironments"][0]["ecsClusterArn"],
        instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}),
    )


def run_commands(recorder: Recorder, tmp_path: Path, project: str) -> list[str]:
    def connect(name: str | None, *, profile: str | None = None, region: str | None = None) -> Any:
        session, info = discover(
            name or "platform", session_factory=lambda p, r, c: recorder.session(c)
        )
        return Cluster(AwsProvider(session, info), sleep=lambda _: None)

    env = CliEnv(
        connect=connect,
        environ={},
        stdin_kind=lambda: "none",
        read_stdin=lambda: b"",
        stdin_has_data=lambda: False,
    )

    def run(*args: str, codes: tuple[int, ...] = (0,), obj: Any = env) -> str:
        result = CliRunner().invoke(app, [*args], obj=obj)
        assert result.exit_code in codes, (args, result.output)
        return result.stdout

    def submit(*args: str) -> str:
        out = run("sub", "-c", "platform", "--queue", "shared", "--share", "genomics", *args)
        found = re.search(r"Job ([0-9a-f-]{36})", out)
        assert found, out
        return found[1]

    def builder(clock: list[float]) -> ImageCliEnv:
        def cloud(request: CloudRequest) -> Any:
            def tick() -> float:
                clock[0] += clock[1]
                return clock[0]

            return open_cloud_builder(
                request,
                clock=tick,
                sleep=lambda _: None,
                session_factory=lambda p, r, c: recorder.session(c),
            )

        return ImageCliEnv(cloud=cloud)

    context = tmp_path / "demo"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox:1.36\n")
    build = ("image", "build", str(context), "-c", "platform", "--project", project)
    # A build that outlives --timeout is stopped (each look at the clock is an hour later).
    run(*build, codes=(1,), obj=builder([0.0, 3600.0]))
    run(*build, obj=builder([0.0, 0.0]))
    push_tag("demo", repository="batchkit/platform")

    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\ncat data.csv\n")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    first = submit("--", "echo", "hi")
    killed = submit("--", "sleep", "600")
    set_status(killed, JobStatus.RUNNING)
    run("kill", "-c", "platform", killed)
    array = submit("--priority", "7", "-a", "2", "--", "true")
    scripted = submit("-if", str(data), "-d", f"jobId={first}", "-cf", str(script))
    imaged = submit("--image", "demo", "--", "true")
    run("stat", "-c", "platform")
    run("stat", "-c", "platform", "-s", "ALL", "-e")
    run("stat", "-c", "platform", "-d", scripted)
    run("out", "-c", "platform", first)
    run("queues", "-c", "platform")
    register_host()
    run("hosts", "-c", "platform")
    # doctor exits 1 when it finds something (on moto: no endpoints, a low Spot bid, …).
    run("doctor", "-c", "platform", codes=(0, 1))
    run("doctor", "-c", "platform", first, codes=(0, 1))
    set_status(imaged, JobStatus.RUNNABLE)  # waiting: doctor reads instance types, the image
    run("doctor", "-c", "platform", imaged, codes=(0, 1))
    # A function job's result: read from the job folder (missing here: moto runs nothing).
    cluster = connect("platform")
    job = cluster.submit(len, "abc", queue="shared", share="genomics")
    with pytest.raises(Exception) as missing:
        job.result()
    assert "result" in str(missing.value).lower()
    return [first, killed, array, scripted, imaged]


def evaluator(platform: Platform) -> Evaluator:
    out, stack = platform.outputs, platform.config.name
    return Evaluator(
        access.statements(platform.config),
        {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": DEFAULT_ACCOUNT_ID,
            "AWS::StackName": stack,
            "Bucket": out["BucketName"],
            "Repository": out["EcrRepositoryName"],
            "JobRole.Arn": out["JobRoleArn"],
            "ExecutionRole.Arn": out["ExecutionRoleArn"],
            "ArtifactS3RootDirectory": platform.parameters["ArtifactS3RootDirectory"],
        },
    )


def test_every_call_is_allowed_and_every_grant_is_used(platform: Platform, tmp_path: Path) -> None:
    recorder = Recorder()
    project = Names.of(platform.config).codebuild_project
    create_project(project)  # moto cannot create it from the template (EnableImageBuilds=false)
    run_commands(recorder, tmp_path, project)

    policy = evaluator(platform)
    where = Where(DEFAULT_ACCOUNT_ID, REGION, ecs_clusters())
    denied: list[str] = []
    used: set[str] = set()
    for call in recorder.calls:
        for need in needs(call, where):
            grant = policy.grants(need)
            if grant is None:
                denied.append(f"{call.name} needs {need.action} on {need.resource} {need.context}")
            else:
                used |= {need.action, " ".join(grant)}
    assert denied == [], "calls the submitter policy does not allow:\n" + "\n".join(denied)

    granted = {a for s in policy.resolved() for a in s["Action"]}
    granted |= {f"{s['Sid']} {r}" for s in policy.resolved() for r in s["Resource"]}
    assert granted - used - set(NOT_EXERCISED) == set(), "grants no call used"
    assert set(NOT_EXERCISED) <= granted, "an exemption names nothing the policy grants"
    assert set(NOT_EXERCISED) & used == set(), "now exercised: drop it from NOT_EXERCISED"

    operations = {call.operation for call in recorder.calls}
    assert {"TerminateJob", "StopBuild", "DescribeContainerInstances", "BatchGetImage"} <= (
        operations
    )
    groups = {c.params["logGroupName"] for c in recorder.calls if c.operation == "GetLogEvents"}
    assert groups == {"/batchkit/platform/jobs", "/batchkit/platform/codebuild"}
    submitted = [c.params for c in recorder.calls if c.operation == "SubmitJob"]
    assert all(p["shareIdentifier"] == "genomics" for p in submitted)
    assert [p.get("schedulingPriorityOverride") for p in submitted] == [
        None, None, 7, None, None, None
    ]  # fmt: skip


def test_the_check_denies_what_lies_outside_the_cluster(platform: Platform) -> None:
    policy = evaluator(platform)
    where = Where(DEFAULT_ACCOUNT_ID, REGION)
    other = Call("batch", "SubmitJob", {"jobQueue": "other_q", "jobDefinition": "platform_x:1"})
    queue, definition = needs(other, where)
    assert policy.grants(queue) is None
    assert policy.grants(definition) == (
        "SubmitToThisCluster",
        "arn:aws:batch:us-east-1:123456789012:job-definition/platform_*",
    )
    bucket = platform.outputs["BucketName"]
    outside = Call("s3", "PutObject", {"Bucket": bucket, "Key": "elsewhere/x"})
    assert policy.grants(needs(outside, where)[0]) is None
    role = Need("iam:PassRole", platform.outputs["JobRoleArn"], (("iam:PassedToService", "x"),))
    assert policy.grants(role) is None
    assert policy.grants(Need("batch:DescribeJobs", ANY)) is not None
    with pytest.raises(KeyError, match="not in the table"):
        needs(Call("batch", "CreateJobQueue", {}), where)


def test_policy_is_exported_and_scoped_to_the_cluster() -> None:
    template = render_template(load_cluster_config(PLATFORM))
    output = template["Outputs"]["SubmitterPolicyArn"]
    assert output["Value"] == {"Ref": "SubmitterPolicy"}
    assert output["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-SubmitterPolicyArn"}}
    resource = template["Resources"]["SubmitterPolicy"]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    assert resource["Properties"]["Path"] == "/batchkit/platform/"
    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"]
        assert all("*" not in action for action in actions), statement["Sid"]
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if "*" in resources:
            assert set(actions) <= set(access.READ_ONLY_ON_ANY), statement["Sid"]
            assert all(":Describe" in a or ":List" in a for a in actions)
        else:
            for arn in resources:
                text = arn["Fn::Sub"]
                assert any(mark in text for mark in CLUSTER_MARKS), (statement["Sid"], text)

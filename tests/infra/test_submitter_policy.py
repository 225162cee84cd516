"""The submitter policy against what the commands really call.

A batchkit cluster (examples/platform.yaml) is created on moto; then `sub` (plain, array, a script
with an input file and a dependency, --image, fair share), `stat`, `out`, `kill`, `queues`,
`hosts` and `doctor` (the cluster, and a job) run through the real CLI app with a botocore hook on
every client that records each call. Every call must be allowed by the policy the stack exports,
and every action of the policy must be used, except the few this run cannot reach (listed with
the reason).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from batchkit.api import Cluster
from batchkit.cli.app import app
from batchkit.cli.context import CliEnv
from batchkit.clusters.stacks import ClusterStacks
from batchkit.infra import access
from batchkit.infra.config import ClusterConfig, load_cluster_config, parse_cluster_config
from batchkit.infra.template import render_template
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.session import AwsSession
from tests.infra.moto_cluster import MOCK_CONFIG, REGION, moto_network, offline_parameters

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "examples" / "platform.yaml"

DOCTOR_REACHED = {
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
}
NOT_EXERCISED = {
    # image build: moto cannot run CodeBuild builds (docs/images.md lists these calls).
    "codebuild:StartBuild",
    "codebuild:BatchGetBuilds",
    "codebuild:StopBuild",
    # doctor's reads that its checks of this cluster on moto do not come to (which checks run
    # depends on what it finds: a RUNNABLE job, a SPOT environment, a failed attempt's log…).
    *(read for read in access.DOCTOR_READS if read not in DOCTOR_REACHED),
    # kill: moto's Batch without Docker finishes a job as it is submitted, and kill leaves
    # finished jobs alone (tests/e2e_aws/test_e2e_docker.py kills a running one).
    "batch:TerminateJob",
    # hosts on moto: its Batch environments start no ECS container instances to describe, and
    # no EC2 instances behind them.
    "ecs:DescribeContainerInstances",
    "ec2:DescribeInstances",
}
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}
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


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one call needs (Service Authorization Reference)."""
    if service == "s3":
        # A HeadObject of a missing key answers 404 only to a caller with ListBucket.
        return {
            "PutObject": {"s3:PutObject"},
            "GetObject": {"s3:GetObject", "s3:ListBucket"},
            "HeadObject": {"s3:GetObject", "s3:ListBucket"},
            "ListObjectsV2": {"s3:ListBucket"},
        }[operation]
    actions = {f"{service}:{operation}"}
    if service == "batch" and operation in ("SubmitJob", "RegisterJobDefinition"):
        if params.get("tags"):
            actions.add("batch:TagResource")  # tags on create
        container = params.get("containerProperties") or {}
        if container.get("jobRoleArn") or container.get("executionRoleArn"):
            actions.add("iam:PassRole")
    return actions - NO_PERMISSION_NEEDED


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """A `before-parameter-build` hook: the call's own parameters, before serialising."""
        self.calls.append((model.service_model.signing_name, model.name, dict(params)))

    def actions(self) -> set[str]:
        return {a for s, op, params in self.calls for a in iam_actions(s, op, params)}


def policy_actions(config: ClusterConfig) -> set[str]:
    return {a for s in access.statements(config) for a in s["Action"]}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ClusterConfig]:
    with mock_aws(config=MOCK_CONFIG):
        net = moto_network()
        text = (
            PLATFORM.read_text()
            .replace("subnet-0123456789abcdef0", net.subnets[0])
            .replace("subnet-0fedcba9876543210", net.subnets[1])
            .replace("sg-0123456789abcdef0", net.security_group)
        )
        config = parse_cluster_config(text)
        stacks = ClusterStacks(AwsSession(region=REGION), sleep=lambda _: None)
        assert stacks.create(config, offline_parameters()).status == "CREATE_COMPLETE"
        yield config


def run_commands(recorder: Recorder, tmp_path: Path) -> list[str]:
    def connect(name: str | None, *, profile: str | None = None, region: str | None = None) -> Any:
        session, info = discover(
            name or "platform",
            session_factory=lambda p, r, c: AwsSession(
                region=REGION, cluster=c, hooks=[("before-parameter-build", recorder)]
            ),
        )
        return Cluster(AwsProvider(session, info), sleep=lambda _: None)

    env = CliEnv(
        connect=connect,
        environ={},
        stdin_kind=lambda: "none",
        read_stdin=lambda: b"",
        stdin_has_data=lambda: False,
    )

    def run(*args: str, codes: tuple[int, ...] = (0,)) -> str:
        result = CliRunner().invoke(app, [*args], obj=env)
        assert result.exit_code in codes, (args, result.output)
        return result.stdout

    def submit(*args: str) -> str:
        out = run("sub", "-c", "platform", "--queue", "shared", "--share", "genomics", *args)
        found = re.search(r"Job ([0-9a-f-]{36})", out)
        assert found, out
        return found[1]

    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\ncat data.csv\n")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    first = submit("--", "echo", "hi")
    killed = submit("--", "sleep", "600")
    run("kill", "-c", "platform", killed)
    array = submit("--priority", "7", "-a", "2", "--", "true")
    scripted = submit("-if", str(data), "-d", f"jobId={first}", "-cf", str(script))
    imaged = submit("--image", "busybox:1.36", "--", "true")
    run("stat", "-c", "platform")
    run("stat", "-c", "platform", "-s", "ALL", "-e")
    run("stat", "-c", "platform", "-d", scripted)
    run("out", "-c", "platform", first)
    run("queues", "-c", "platform")
    run("hosts", "-c", "platform")
    # doctor exits 1 when it finds something (on moto: no NAT, no endpoints, …).
    run("doctor", "-c", "platform", codes=(0, 1))
    run("doctor", "-c", "platform", first, codes=(0, 1))
    # A function job's result: read from the job folder (missing here: moto runs nothing).
    cluster = connect("platform")
    job = cluster.submit(len, "abc", queue="shared", share="genomics")
    with pytest.raises(Exception) as missing:
        job.result()
    assert "result" in str(missing.value).lower()
    return [first, killed, array, scripted, imaged]


def test_every_call_is_allowed_and_every_action_is_used(
    platform: ClusterConfig, tmp_path: Path
) -> None:
    recorder = Recorder()
    run_commands(recorder, tmp_path)
    used = recorder.actions()
    allowed = policy_actions(platform)
    assert used - allowed == set(), "calls the submitter policy does not allow"
    assert allowed - used - NOT_EXERCISED == set(), "actions no command used"
    assert allowed >= NOT_EXERCISED
    assert NOT_EXERCISED & used == set(), "now exercised: drop it from NOT_EXERCISED"
    operations = {op for _, op, _ in recorder.calls}
    assert {"SubmitJob", "RegisterJobDefinition", "GetLogEvents", "GetObject"} <= operations
    submitted = [params for _, op, params in recorder.calls if op == "SubmitJob"]
    assert all(p["shareIdentifier"] == "genomics" for p in submitted)
    assert [p.get("schedulingPriorityOverride") for p in submitted] == [
        None, None, 7, None, None, None
    ]  # fmt: skip


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

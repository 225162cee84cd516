"""A platform team's cluster on a moto server, through the installed `batchkit` command: every
volume kind (ONTAP, OpenZFS, EBS), notifications, fair share and the submitter policy; created,
inspected, used and deleted cleanly (the delete runs in-process, see below)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
from moto.events.models import EventPattern
from typer.testing import CliRunner

from batchkit.cli.app import app
from batchkit.cli.cluster import ClusterEnv
from batchkit.providers.aws.session import AwsSession
from tests.e2e_aws.conftest import Run
from tests.fixtures.moto_batch import MOTO_AS_AWS
from tests.infra.moto_cluster import MOTO_IMAGE

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def event(queue: str, status: str, kind: str = "Batch Job State Change") -> dict[str, Any]:
    return {
        "id": "1",
        "source": "aws.batch",
        "detail-type": kind,
        "account": "123456789012",
        "time": "2026-12-04T18:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {"jobQueue": queue, "status": status, "jobId": "j", "jobName": "n"},
    }


def test_platform_cluster_lifecycle(
    batchkit: Run, moto_endpoint_with_managed_policies: str, tmp_path: Path
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = sorted(
        {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}.values()
    )
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    # With an `image:` the template goes inline: moto registers a stack's exports only at
    # CreateStack, so the two-step create of a larger template could not be deleted there.
    text = (
        ((ROOT / "examples" / "platform.yaml").read_text() + f"\nimage: {MOTO_IMAGE}\n")
        .replace("subnet-0123456789abcdef0", subnets[0])
        .replace("subnet-0fedcba9876543210", subnets[1])
        .replace("sg-0123456789abcdef0", group)
    )
    config = tmp_path / "platform.yaml"
    config.write_text(text)
    role = boto3.client("iam", region_name=REGION).create_service_linked_role(
        AWSServiceName="batch.amazonaws.com"
    )["Role"]["Arn"]
    params = [
        *("--param", "EnableImageBuilds=false", "--param", "EnableMultiNode=false"),
        *("--param", "CleanupOnDelete=false", "--param", f"BatchServiceRole={role}"),
    ]

    created = batchkit("cluster", "create", "-f", str(config), *params, "--json")
    assert created.code == 0, created.err
    outputs = json.loads(created.out)["outputs"]
    assert outputs["SubmitterPolicyArn"].endswith(
        ":policy/batchkit/platform/batchkit-platform-submitter"
    )
    assert json.loads(outputs["SchedulingPolicies"]).keys() == {"shared"}

    # The launch template carries the EBS volume and the boot script that mounts all three.
    template = ec2.describe_launch_template_versions(LaunchTemplateName="batchkit-platform")[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    devices = {m["DeviceName"]: m["Ebs"] for m in template["BlockDeviceMappings"]}
    assert devices["/dev/xvdb"]["VolumeSize"] == 500
    assert devices["/dev/xvdb"]["DeleteOnTermination"] is True
    script = base64.b64decode(template["UserData"]).decode()
    assert "svm-0123456789abcdef0.fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com:/home" in script
    assert "fs-0fedcba9876543210.fsx.us-east-1.amazonaws.com:/fsx/reference" in script
    assert "mkfs -t xfs /dev/xvdb" in script
    batch = boto3.client("batch", region_name=REGION)
    definition = batch.describe_job_definitions(jobDefinitions=["platform_container"])[
        "jobDefinitions"
    ][0]["containerProperties"]
    assert {m["containerPath"] for m in definition["mountPoints"]} == {
        "/home/shared",
        "/reference",
        "/scratch",
    }

    # An update is reviewed before anything changes. New tags would replace the named compute
    # environments, which CloudFormation cannot do: refused, and no change set is left.
    config.write_text(text.replace("tags:\n", "tags:\n  owner: genomics\n", 1))
    refused = batchkit("cluster", "update", "-f", str(config), "--yes")
    assert refused.code == 2, refused.err
    assert "refused before changing anything" in refused.err
    cfn = boto3.client("cloudformation", region_name=REGION)
    assert cfn.list_change_sets(StackName="platform")["Summaries"] == []
    # A larger scratch volume changes the launch template: an infrastructure update of the EC2
    # compute environment (new instances; running jobs get time to finish), none for Fargate.
    config.write_text(text.replace("size_gib: 500", "size_gib: 600", 1))
    planned = batchkit("cluster", "update", "-f", str(config), "--dry-run", "--json")
    assert planned.code == 0, planned.err
    assert [(e["logical_id"], e["properties"]) for e in json.loads(planned.out)["effects"]] == [
        ("ComputeEnvironmentSharedOndemand", ["ComputeResources/LaunchTemplate"])
    ]
    updated = batchkit("cluster", "update", "-f", str(config), "--yes", "--json")
    assert updated.code == 0, updated.err
    assert json.loads(updated.out)["status"] == "UPDATE_COMPLETE"
    latest = ec2.describe_launch_template_versions(
        LaunchTemplateName="batchkit-platform", Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    sizes = {m["DeviceName"]: m["Ebs"].get("VolumeSize") for m in latest["BlockDeviceMappings"]}
    assert sizes["/dev/xvdb"] == 600

    # The notification rule matches this cluster's failures and blocked queues, nothing else.
    # (moto has no TestEventPattern; its own matcher, which reads `$or`, stands in for it.)
    events = boto3.client("events", region_name=REGION)

    def rule(name: str) -> EventPattern:
        return EventPattern.load(events.describe_rule(Name=name)["EventPattern"])

    changes, blocked = rule("batchkit-platform-job-state"), rule("batchkit-platform-queue-blocked")
    queues = json.loads(outputs["JobQueues"])
    shared = queues["shared"]
    other = shared.replace("platform_shared", "someone_shared")
    assert changes.matches_event(event(shared, "FAILED"))
    assert changes.matches_event(event(queues["quick"], "FAILED"))
    assert not changes.matches_event(event(shared, "SUCCEEDED"))
    assert not changes.matches_event(event(other, "FAILED"))
    assert not changes.matches_event(event(shared, "RUNNABLE", "Batch Job Queue Blocked"))
    assert blocked.matches_event(event(shared, "RUNNABLE", "Batch Job Queue Blocked"))
    assert not blocked.matches_event(event(other, "RUNNABLE", "Batch Job Queue Blocked"))
    assert not blocked.matches_event(event(shared, "FAILED"))

    # Every event of this cluster's queues lands in the events log the dashboard reads
    # (a SUCCEEDED one: the notification rule, whose SNS target moto cannot deliver to, ignores it).
    for queue in (shared, other):
        sample = event(queue, "SUCCEEDED")
        events.put_events(
            Entries=[
                {
                    "Source": sample["source"],
                    "DetailType": sample["detail-type"],
                    "Detail": json.dumps(sample["detail"]),
                }
            ]
        )
    logs = boto3.client("logs", region_name=REGION)
    logged = logs.filter_log_events(logGroupName="/batchkit/platform/events")["events"]
    assert [json.loads(e["message"])["detail"]["jobQueue"] for e in logged] == [shared]

    # Who hears about it: moto's CloudFormation skips AWS::SNS::Subscription, so subscribe as
    # the stack does and read it back through `cluster status`.
    sns = boto3.client("sns", region_name=REGION)
    sns.subscribe(
        TopicArn=outputs["JobEventsTopicArn"], Protocol="email", Endpoint="oncall@example.com"
    )
    status = batchkit("cluster", "status", "platform")
    assert status.code == 0, status.err
    assert "notify:   oncall@example.com (email) confirmed" in status.out

    # Fair share: refused without a share, before anything is sent; submitted with one.
    refused = batchkit("sub", "-c", "platform", "-q", "shared", "--", "true")
    assert refused.code == 2
    assert "shared schedules by fair share" in refused.err
    assert batch.list_jobs(jobQueue=shared, jobStatus="SUCCEEDED")["jobSummaryList"] == []
    sent = batchkit("sub", "-c", "platform", "-q", "shared", "--share", "genomics", "--", "true")
    assert sent.code == 0, sent.err
    job_id = re.search(r"Job ([0-9a-f-]{36})", sent.out)
    assert job_id, sent.out
    stat = batchkit("stat", "-c", "platform", "-s", "ALL")
    assert stat.code == 0 and job_id[1] in stat.out

    # Deleted through the same command in this process, where the session can carry the hook
    # that deletes the stack's Batch resources with it, as AWS does and moto does not.
    env = ClusterEnv(
        session=lambda profile, region, cluster: AwsSession(
            profile=profile,
            region=region or REGION,
            cluster=cluster,
            hooks=MOTO_AS_AWS,
        ),
        sleep=lambda _: None,
        confirm=lambda _: True,
        environ=dict(os.environ),
    )
    deleted = CliRunner().invoke(app, ["cluster", "delete", "platform", "-y"], obj=env)
    assert deleted.exit_code == 0, deleted.output
    assert (
        boto3.client("cloudformation", region_name=REGION).list_stacks(
            StackStatusFilter=["CREATE_COMPLETE"]
        )["StackSummaries"]
        == []
    )
    assert logs.describe_log_groups(logGroupNamePrefix="/batchkit/platform/")["logGroups"] == []
    assert events.list_rules(NamePrefix="batchkit-platform")["Rules"] == []
    iam = boto3.client("iam", region_name=REGION)
    assert iam.list_roles(PathPrefix="/batchkit/platform/")["Roles"] == []
    # The submitter policy goes with the stack on AWS; moto's CloudFormation cannot delete an
    # AWS::IAM::ManagedPolicy, so it is not checked here.

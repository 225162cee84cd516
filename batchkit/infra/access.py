"""The submitter policy: what the people who use a cluster need, and nothing else.

`AWS::IAM::ManagedPolicy`, exported by the stack (`SubmitterPolicyArn`), for administrators to
attach to the users, groups or roles that run `sub`, `stat`, `out`, `kill`, `queues`, `hosts`,
`doctor` and `image build` on this cluster (ParallelCluster's BatchUserRole, as a policy).

Each statement names what it is for. Actions that AWS does not authorise per resource (Batch's
Describe/List calls, EC2's Describe calls, ECS's DescribeContainerInstances without a cluster
condition…) are allowed on `*`, and only those, listed in `READ_ONLY_ON_ANY` (the Service
Authorization Reference lists no resource type for them). `tests/e2e_aws/test_submitter_policy`
records every call the commands make against a cluster and checks that this policy allows each
one and that no action here goes unused.
"""

from __future__ import annotations

from batchkit.infra.cfn import Json, allow, policy, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.iam import BUCKET_ARN, LOG_GROUP_ARN, REPOSITORY_ARN, ROOT_OBJECTS
from batchkit.infra.naming import Names

BATCH_ARN = "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}"

DOCTOR_READS = (
    # doctor: instance types, networking (subnets, routes, NAT, endpoints, groups), Spot prices.
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNatGateways",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "logs:DescribeLogGroups",
)
READ_ONLY_ON_ANY = (
    # Batch: queues, environments, definitions and jobs are described and listed account-wide.
    "batch:DescribeComputeEnvironments",
    "batch:DescribeJobDefinitions",
    "batch:DescribeJobQueues",
    "batch:DescribeJobs",
    "batch:ListJobs",
    # hosts: the instances behind the environments' ECS clusters.
    "ec2:DescribeInstances",
    *DOCTOR_READS,
)


def statements(config: ClusterConfig) -> list[Json]:
    names = Names.of(config)
    cluster = names.cluster
    log_streams = [
        sub(f"{LOG_GROUP_ARN}{group}:log-stream:*")
        for group in (names.job_log_group, names.codebuild_log_group)
    ]
    return [
        {"Sid": "ReadBatchAndNetwork", **allow(list(READ_ONLY_ON_ANY), "*")},
        {
            # sub: this cluster's queues, its definitions and those batchkit registers for --image.
            "Sid": "SubmitToThisCluster",
            **allow(
                ["batch:SubmitJob"],
                [
                    sub(f"{BATCH_ARN}:job-queue/{cluster}_*"),
                    sub(f"{BATCH_ARN}:job-definition/{cluster}_*"),
                    sub(f"{BATCH_ARN}:job-definition/batchkit-*"),
                ],
            ),
        },
        {
            # sub --image: a definition of the cluster's own, tagged with it, with its roles.
            "Sid": "RegisterImageDefinitions",
            **allow(
                ["batch:RegisterJobDefinition"],
                sub(f"{BATCH_ARN}:job-definition/batchkit-*"),
            ),
        },
        {
            # Tags on create: SubmitJob and RegisterJobDefinition carry batchkit's tags.
            "Sid": "TagOnCreate",
            **allow(
                ["batch:TagResource"],
                [sub(f"{BATCH_ARN}:job/*"), sub(f"{BATCH_ARN}:job-definition/batchkit-*")],
            ),
        },
        {
            "Sid": "PassJobRolesToBatch",
            **allow(
                ["iam:PassRole"],
                [sub("${JobRole.Arn}"), sub("${ExecutionRole.Arn}")],
                Condition={"StringEquals": {"iam:PassedToService": "batch.amazonaws.com"}},
            ),
        },
        # kill: Batch authorises TerminateJob per job, whatever its queue.
        {"Sid": "KillJobs", **allow(["batch:TerminateJob"], sub(f"{BATCH_ARN}:job/*"))},
        {
            # hosts: the container instances of the environments' ECS clusters.
            "Sid": "ListHosts",
            **allow(
                ["ecs:ListContainerInstances", "ecs:DescribeContainerInstances"],
                sub(
                    "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:"
                    f"cluster/{cluster}_*"
                ),
            ),
        },
        {
            # sub stages job folders; out and function results read them; image build uploads
            # build contexts.
            "Sid": "JobFoldersAndBuildContexts",
            **allow(
                ["s3:GetObject", "s3:PutObject"],
                [sub(f"{ROOT_OBJECTS}/batch/*"), sub(f"{ROOT_OBJECTS}/images/*")],
            ),
        },
        {
            # HeadObject of a missing key answers 404 only with ListBucket (403 without it).
            "Sid": "ListJobFolders",
            **allow(
                ["s3:ListBucket"],
                sub(BUCKET_ARN),
                Condition={
                    "StringLike": {
                        "s3:prefix": [
                            sub("${ArtifactS3RootDirectory}/batch/*"),
                            sub("${ArtifactS3RootDirectory}/images/*"),
                        ]
                    }
                },
            ),
        },
        {"Sid": "ReadJobAndBuildLogs", **allow(["logs:GetLogEvents"], log_streams)},
        {
            "Sid": "FindThisCluster",
            **allow(
                ["cloudformation:DescribeStacks"],
                sub(
                    "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:"
                    "stack/${AWS::StackName}/*"
                ),
            ),
        },
        {
            # image build: is the tag there already, build it, follow it, stop it on Ctrl-C.
            "Sid": "BuildImages",
            **allow(
                ["ecr:DescribeImages"],
                sub(REPOSITORY_ARN),
            ),
        },
        {
            "Sid": "RunImageBuilds",
            **allow(
                ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"],
                sub(
                    "arn:${AWS::Partition}:codebuild:${AWS::Region}:${AWS::AccountId}:"
                    f"project/{names.codebuild_project}"
                ),
            ),
        },
    ]


def submitter_policy(config: ClusterConfig) -> Json:
    names = Names.of(config)
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "ManagedPolicyName": names.submitter_policy,
            "Path": names.role_path,
            "Description": f"Submit, follow and kill jobs and build images on batchkit cluster "
            f"{names.cluster}",
            "PolicyDocument": policy(*statements(config)),
        },
    }


def resources(config: ClusterConfig) -> Json:
    return {"SubmitterPolicy": submitter_policy(config)}


def outputs() -> Json:
    return {
        "SubmitterPolicyArn": {
            "Value": {"Ref": "SubmitterPolicy"},
            "Export": {"Name": sub("${AWS::StackName}-SubmitterPolicyArn")},
        }
    }

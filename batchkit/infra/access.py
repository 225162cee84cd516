"""The submitter policy: what the people who use a cluster need, and nothing else.

`AWS::IAM::ManagedPolicy`, exported by the stack (`SubmitterPolicyArn`), for administrators to
attach to the users, groups or roles that run `sub`, `stat`, `out`, `kill`, `queues`, `hosts`,
`doctor` and `image build` on this cluster (ParallelCluster's BatchUserRole, as a policy).

Each statement names what it is for. Actions that AWS does not authorise per resource (Batch's
Describe/List calls, EC2's Describe calls) are allowed on `*`, and only those, listed in
`READ_ONLY_ON_ANY` (the Service Authorization Reference lists no resource type for them).
`tests/infra/test_submitter_policy.py` records every call the commands make against a cluster
(on moto) and checks that a statement of this policy allows each one, action, resource ARN and
condition, and that no action or resource here goes unused.
"""

from __future__ import annotations

from batchkit.infra.cfn import Json, allow, policy, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.iam import BUCKET_ARN, LOG_GROUP_ARN, REPOSITORY_ARN, ROOT_OBJECTS
from batchkit.infra.naming import Names

BATCH_ARN = "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}"
ECS_ARN = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"

DOCTOR_READS = (
    # doctor: instance types, networking (subnets, routes, NAT, endpoints, groups), Spot prices.
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNatGateways",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
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
            # hosts (and doctor: have instances joined?): the container instances of the
            # environments' ECS clusters, which Batch names `<environment>_Batch_<uuid>`.
            # ListContainerInstances is authorised on the cluster, DescribeContainerInstances
            # on each container instance (Service Authorization Reference, Amazon ECS).
            "Sid": "ListHosts",
            **allow(["ecs:ListContainerInstances"], sub(f"{ECS_ARN}:cluster/{cluster}_*")),
        },
        {
            "Sid": "DescribeHosts",
            **allow(
                ["ecs:DescribeContainerInstances"],
                sub(f"{ECS_ARN}:container-instance/{cluster}_*/*"),
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
            # GetObject or HeadObject of a missing key (a function job's result not written)
            # answers 404 only to a caller with ListBucket, else 403. That check carries no
            # s3:prefix (the key exists in list requests only), so a prefix condition would
            # leave it denied: the submitter may list the bucket's keys.
            "Sid": "ListBucketFor404",
            **allow(["s3:ListBucket"], sub(BUCKET_ARN)),
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
            # image build and sub --image: is the tag there already; doctor: the platforms
            # the manifest of a job's image names.
            "Sid": "ReadClusterImages",
            **allow(["ecr:DescribeImages", "ecr:BatchGetImage"], sub(REPOSITORY_ARN)),
        },
        {
            # image build: start it, follow it, stop it when --timeout runs out.
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

"""IAM roles of a cluster, each scoped to this cluster's own resources.

Every role lives under the path `/batchkit/<cluster>/` and carries the configured permissions
boundary. Actions are listed one by one; `*` appears as a resource only for actions that have no
resource-level permissions (`ecr:GetAuthorizationToken`), which `tests/infra` checks against an
explicit allow-list.
"""

from __future__ import annotations

from typing import Any

from batchkit.infra.cfn import NO_VALUE, Json, allow, get_att, policy, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names
from batchkit.infra.volumeconfig import EfsVolumeConfig

# Actions that have no resource-level permissions: the only ones allowed on "*".
STAR_RESOURCE_ACTIONS = frozenset({"ecr:GetAuthorizationToken"})

REPOSITORY_ARN = (
    "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${Repository}"
)
BUCKET_ARN = "arn:${AWS::Partition}:s3:::${Bucket}"
ROOT_OBJECTS = "arn:${AWS::Partition}:s3:::${Bucket}/${ArtifactS3RootDirectory}"
LOG_GROUP_ARN = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"

ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
ECR_PUSH = [
    *ECR_PULL,
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
    "ecr:DescribeImages",
]
LOG_WRITE = ["logs:CreateLogStream", "logs:PutLogEvents"]


def managed(name: str) -> Json:
    return sub(f"arn:${{AWS::Partition}}:iam::aws:policy/{name}")


def log_streams(group_ref: str) -> Json:
    """The streams of a log group the stack creates (`group_ref`: its logical id)."""
    return sub(f"{LOG_GROUP_ARN}${{{group_ref}}}:log-stream:*")


def role(
    config: ClusterConfig,
    service: str,
    description: str,
    *,
    statements: list[Json] | None = None,
    managed_policies: list[Json] | None = None,
    condition: str | None = None,
) -> Json:
    properties: dict[str, Any] = {
        "Path": Names.of(config).role_path,
        "Description": description,
        "AssumeRolePolicyDocument": policy(
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ),
        "PermissionsBoundary": config.permissions_boundary or NO_VALUE,
    }
    if managed_policies:
        properties["ManagedPolicyArns"] = managed_policies
    if statements:
        properties["Policies"] = [{"PolicyName": "batchkit", "PolicyDocument": policy(*statements)}]
    resource: Json = {"Type": "AWS::IAM::Role"}
    if condition:
        resource["Condition"] = condition
    resource["Properties"] = properties
    return resource


def job_statements(config: ClusterConfig) -> list[Json]:
    """A job reads and writes its own folder; EFS volumes mount with IAM authorisation."""
    statements = [
        allow(["s3:GetObject", "s3:PutObject"], sub(f"{ROOT_OBJECTS}/batch/*")),
        allow(
            ["s3:ListBucket"],
            sub(BUCKET_ARN),
            Condition={"StringLike": {"s3:prefix": sub("${ArtifactS3RootDirectory}/batch/*")}},
        ),
    ]
    filesystems = [v.file_system_id for v in config.volumes if isinstance(v, EfsVolumeConfig)]
    if filesystems:
        arns = [
            sub(
                "arn:${AWS::Partition}:elasticfilesystem:${AWS::Region}:${AWS::AccountId}:"
                f"file-system/{fs}"
            )
            for fs in filesystems
        ]
        statements.append(
            allow(["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"], arns)
        )
    return statements


def uses_spot_fleet_role(config: ClusterConfig) -> bool:
    """Batch needs a Spot Fleet role only for SPOT environments with a BEST_FIT strategy."""
    return any(ce.needs_spot_fleet_role for q in config.queues for ce in q.compute_environments)


def resources(config: ClusterConfig, *, cleanup: bool) -> Json:
    """The roles (and the instance profile); `cleanup`: include the cleanup Lambdas' role."""
    names = Names.of(config)
    result: Json = {
        "InstanceRole": role(
            config,
            "ec2.amazonaws.com",
            f"ECS container instances of batchkit cluster {names.cluster}",
            managed_policies=[managed("service-role/AmazonEC2ContainerServiceforEC2Role")],
        ),
        "InstanceProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Path": names.role_path, "Roles": [ref("InstanceRole")]},
        },
        "JobRole": role(
            config,
            "ecs-tasks.amazonaws.com",
            f"Jobs of batchkit cluster {names.cluster}: their own S3 job folders",
            statements=job_statements(config),
        ),
        "ExecutionRole": role(
            config,
            "ecs-tasks.amazonaws.com",
            f"Pulls images and writes logs for jobs of batchkit cluster {names.cluster}",
            statements=[
                allow(["ecr:GetAuthorizationToken"], "*"),
                allow(ECR_PULL, sub(REPOSITORY_ARN)),
                allow(LOG_WRITE, log_streams("JobLogGroup")),
            ],
        ),
        "CodeBuildRole": role(
            config,
            "codebuild.amazonaws.com",
            f"Builds images into the ECR repository of batchkit cluster {names.cluster}",
            condition="ImageBuildsEnabled",
            statements=[
                allow(["ecr:GetAuthorizationToken"], "*"),
                allow(ECR_PUSH, sub(REPOSITORY_ARN)),
                allow(LOG_WRITE, log_streams("CodeBuildLogGroup")),
                # Build contexts: `batchkit image build` uploads them under <root>/images/.
                allow(["s3:GetObject", "s3:GetObjectVersion"], sub(f"{ROOT_OBJECTS}/images/*")),
                allow(["s3:GetBucketAcl", "s3:GetBucketLocation"], sub(BUCKET_ARN)),
            ],
        ),
    }
    if uses_spot_fleet_role(config):
        result["SpotFleetRole"] = role(
            config,
            "spotfleet.amazonaws.com",
            f"Spot Fleet requests of batchkit cluster {names.cluster}",
            managed_policies=[managed("service-role/AmazonEC2SpotFleetTaggingRole")],
        )
    if cleanup:
        result["CleanupRole"] = role(
            config,
            "lambda.amazonaws.com",
            f"Empties the bucket prefix and ECR repository of batchkit cluster {names.cluster}",
            condition="CleanupOnDeleteEnabled",
            statements=[
                allow(
                    ["ecr:BatchDeleteImage", "ecr:DescribeImages", "ecr:ListImages"],
                    sub(REPOSITORY_ARN),
                ),
                allow(
                    ["s3:ListBucket", "s3:ListBucketVersions"],
                    sub(BUCKET_ARN),
                    Condition={"StringLike": {"s3:prefix": sub("${ArtifactS3RootDirectory}/*")}},
                ),
                allow(["s3:DeleteObject", "s3:DeleteObjectVersion"], sub(f"{ROOT_OBJECTS}/*")),
                # To tell a stack deletion from an update that removed the custom resource.
                allow(
                    ["cloudformation:DescribeStacks"],
                    sub(
                        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:"
                        "stack/${AWS::StackName}/*"
                    ),
                ),
                allow(LOG_WRITE, [log_streams("EmptyEcrLogGroup"), log_streams("EmptyS3LogGroup")]),
            ],
        )
    return result


def instance_profile_arn() -> Json:
    return get_att("InstanceProfile", "Arn")

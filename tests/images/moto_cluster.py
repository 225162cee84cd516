"""An image pipeline in moto: a stack with batchkit's image outputs, its repository, bucket and
CodeBuild project (moto cannot create AWS::CodeBuild::Project from a template, so by API)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import yaml

PROJECT = "demo-images"
REPOSITORY = "batchkit-demo"
BUCKET = "bk-bucket"


def create_image_cluster(name: str = "demo", endpoint_url: str | None = None) -> str:
    """Create everything; returns the repository URI."""

    def client(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint_url)

    uri = str(
        client("ecr").create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    )
    client("s3").create_bucket(Bucket=BUCKET)
    template = {
        "Parameters": {
            "Scheduler": {"Type": "String", "Default": "awsbatch"},
            "ArtifactS3RootDirectory": {"Type": "String", "Default": f"batchkit/{name}"},
        },
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/{name}"}}
        },
        "Outputs": {
            "BatchkitVersion": {"Value": "0.1.0"},
            "EcrRepositoryName": {"Value": REPOSITORY},
            "EcrRepositoryUri": {"Value": uri},
            "CodeBuildProjectName": {"Value": PROJECT},
            "BucketName": {"Value": BUCKET},
        },
    }
    client("cloudformation").create_stack(StackName=name, TemplateBody=yaml.safe_dump(template))
    create_project(PROJECT, endpoint_url)
    return uri


def create_project(name: str, endpoint_url: str | None = None) -> None:
    """A CodeBuild project as a cluster stack has (moto cannot create AWS::CodeBuild::Project
    from a template); moto wants a source location, which every batchkit build overrides."""
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint_url)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("codebuild", region_name="us-east-1", endpoint_url=endpoint_url).create_project(
        name=name,
        source={"type": "S3", "location": f"{BUCKET}/x.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=role,
    )


def push_tag(tag: str, endpoint_url: str | None = None, *, repository: str = REPOSITORY) -> None:
    """What a finished CodeBuild build leaves behind: the tag in ECR."""
    boto3.client("ecr", region_name="us-east-1", endpoint_url=endpoint_url).put_image(
        repositoryName=repository,
        imageManifest=json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "layers": [],
            }
        ),
        imageTag=tag,
    )

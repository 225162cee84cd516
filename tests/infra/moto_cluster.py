"""Deploying a cluster config on in-process moto (shared by tests/infra and tests/cli).

moto cannot run CodeBuild projects, multinode job definitions or Lambda-backed custom resources,
and it insists on a Batch service role: the offline parameters switch the first three off (as a
user could) and pass a service-linked role that the test creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

MOCK_CONFIG: dict[str, Any] = {
    "batch": {"use_docker": False},
    "lambda": {"use_docker": False},
    "iam": {"load_aws_managed_policies": True},
}
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "batchkit.yaml"


@dataclass(frozen=True)
class Network:
    subnets: list[str]
    security_group: str


def moto_network() -> Network:
    """Two subnets of moto's default VPC (different AZs) and its default security group."""
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = ec2.describe_subnets()["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    return Network(sorted(by_zone.values())[:2], group)


MOTO_IMAGE = "batchkit-base/busybox:latest"


def example_config_text(
    network: Network, *, name: str = "research", image: str | None = MOTO_IMAGE
) -> str:
    """examples/batchkit.yaml pointed at moto's network. With an `image:` (by default: moto
    builds no default image), the template is small enough to go inline: moto registers a
    stack's exports only at CreateStack, so a two-step create (`stacktemplate`) cannot be
    deleted there; `image=None` keeps the example's own (no `image:`)."""
    text = EXAMPLE.read_text()
    if image is not None:
        text += f"\nimage: {image}\n"
    text = text.replace("subnet-0123456789abcdef0", network.subnets[0])
    text = text.replace("subnet-0fedcba9876543210", network.subnets[1])
    text = text.replace("sg-0123456789abcdef0", network.security_group)
    return text.replace("name: research", f"name: {name}", 1)


def offline_parameters() -> dict[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_service_linked_role(AWSServiceName="batch.amazonaws.com")["Role"]["Arn"]
    return {
        "EnableImageBuilds": "false",
        "EnableMultiNode": "false",
        "CleanupOnDelete": "false",
        "BatchServiceRole": role,
    }


def fill(bucket: str, prefix: str, repository: str, *, objects: int = 7, images: int = 3) -> None:
    """Job folders in the bucket and images in the repository, as a used cluster has."""
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(objects):
        s3.put_object(Bucket=bucket, Key=f"{prefix}batch/job-x-{i}/x.sh", Body=b"echo hi")
    ecr = boto3.client("ecr", region_name=REGION)
    for i in range(images):
        manifest = (
            '{"schemaVersion": 2, "mediaType": '
            '"application/vnd.docker.distribution.manifest.v2+json", '
            f'"config": {{"digest": "sha256:{i:064x}", "size": {i}}}, "layers": []}}'
        )
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=f"v{i}")


def remaining(cluster: str, bucket: str) -> dict[str, int]:
    """How many of the cluster's objects, images, roles and log groups still exist."""
    s3 = boto3.client("s3", region_name=REGION)
    try:
        objects = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        buckets = 1
    except s3.exceptions.NoSuchBucket:
        objects, buckets = 0, 0
    ecr = boto3.client("ecr", region_name=REGION)
    try:
        images = len(ecr.list_images(repositoryName=f"batchkit/{cluster}")["imageIds"])
        repositories = 1
    except ecr.exceptions.RepositoryNotFoundException:
        images, repositories = 0, 0
    iam = boto3.client("iam", region_name=REGION)
    roles = len(iam.list_roles(PathPrefix=f"/batchkit/{cluster}/")["Roles"])
    logs = boto3.client("logs", region_name=REGION)
    groups = len(logs.describe_log_groups(logGroupNamePrefix=f"/batchkit/{cluster}/")["logGroups"])
    return {
        "buckets": buckets,
        "objects": objects,
        "repositories": repositories,
        "images": images,
        "roles": roles,
        "log_groups": groups,
    }

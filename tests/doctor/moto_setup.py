"""Deliberately broken (and healthy) AWS setups for the doctor's tests, made with plain boto3
calls under moto, and the gateway seam for what moto cannot produce.

moto's simple Batch marks every job SUCCEEDED at submission and reports the job definition's
vCPU/memory instead of the overrides: `SeenBatch` is a real `BatchGateway` (over moto) handed to
`AwsProvider(batch=...)` that reports chosen jobs as real Batch would (RUNNABLE with a status
reason and the resources asked for, FAILED with a reason) and chosen compute environments and
queues as INVALID with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import msgspec.structs

from batchkit.clustermodel import Queue
from batchkit.computemodel import ComputeEnvironment
from batchkit.models import Job, JobStatus
from batchkit.providers.aws.batch import BatchGateway, LogTarget
from batchkit.providers.aws.session import AwsSession


class SeenBatch(BatchGateway):
    """A BatchGateway over moto whose answers about some jobs, environments and queues are
    replaced by what real Batch would say (fields given per job id / environment or queue
    name)."""

    def __init__(
        self,
        session: AwsSession,
        log_group: str = "/aws/batch/job",
        *,
        jobs: Mapping[str, Mapping[str, Any]] | None = None,
        environments: Mapping[str, Mapping[str, Any]] | None = None,
        queues: Mapping[str, Mapping[str, Any]] | None = None,
        every: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            session.api("batch"),
            LogTarget(log_group, session.region, session.console_domain),
            workers=1,
        )
        self.jobs: dict[str, Mapping[str, Any]] = dict(jobs or {})
        self.environments: dict[str, Mapping[str, Any]] = dict(environments or {})
        self.queues: dict[str, Mapping[str, Any]] = dict(queues or {})
        self.every: dict[str, Any] = dict(every or {})
        """Fields replaced in every job not named in `jobs` (e.g. a status)."""

    def _seen(self, job: Job) -> Job:
        return msgspec.structs.replace(job, **self.jobs.get(job.job_id, self.every))

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        return [self._seen(job) for job in super().describe_jobs(job_ids)]

    def list_jobs(self, queue: str, status: JobStatus) -> list[Job]:
        seen: dict[str, Job] = {}
        for listed in {status, JobStatus.SUCCEEDED}:
            for job in super().list_jobs(queue, listed):
                seen[job.job_id] = self._seen(job)
        return [job for job in seen.values() if job.status is status]

    def describe_job_queues(self, names: Sequence[str]) -> list[Queue]:
        return [
            msgspec.structs.replace(q, **self.queues.get(q.name, {}))
            for q in super().describe_job_queues(names)
        ]

    def describe_compute_environments(self, names: Sequence[str]) -> list[ComputeEnvironment]:
        return [
            msgspec.structs.replace(ce, **self.environments.get(ce.name, {}))
            for ce in super().describe_compute_environments(names)
        ]


def public_route(region: str = "us-east-1") -> None:
    """Give the default VPC's main route table a default route to an internet gateway (moto's
    default VPC has none) and its subnets public IPs, as a real default VPC has."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    main = next(t for t in tables["RouteTables"] if any(a.get("Main") for a in t["Associations"]))
    ec2.create_route(
        RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    )
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ]:
        ec2.modify_subnet_attribute(
            SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}
        )


def environment(
    name: str,
    *,
    instance_types: Sequence[str] = ("optimal",),
    compute_type: str = "EC2",
    max_vcpus: int = 16,
    state: str = "ENABLED",
    bid_percentage: int | None = None,
    subnets: Sequence[str] | None = None,
    security_groups: Sequence[str] | None = None,
    region: str = "us-east-1",
) -> str:
    """A MANAGED compute environment on the default VPC (role and instance profile made here)."""
    iam = boto3.client("iam", region_name=region)
    ec2 = boto3.client("ec2", region_name=region)
    batch = boto3.client("batch", region_name=region)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.create_instance_profile(InstanceProfileName=f"{name}-profile")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{name}-profile", RoleName=f"{name}-role")
    profile = f"arn:aws:iam::123456789012:instance-profile/{name}-profile"
    if security_groups is None:
        security_groups = [
            ec2.create_security_group(GroupName=f"{name}-sg", Description="x")["GroupId"]
        ]
    if subnets is None:
        subnets = [ec2.describe_subnets()["Subnets"][0]["SubnetId"]]
    resources: dict[str, Any] = {
        "type": compute_type,
        "maxvCpus": max_vcpus,
        "subnets": list(subnets),
        "securityGroupIds": list(security_groups),
    }
    if compute_type in ("EC2", "SPOT"):
        resources.update(minvCpus=0, instanceTypes=list(instance_types), instanceRole=profile)
    if bid_percentage is not None:
        resources.update(bidPercentage=bid_percentage, allocationStrategy="BEST_FIT")
    arn: str = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        state=state,
        computeResources=resources,
        serviceRole=role,
    )["computeEnvironmentArn"]
    return arn


def queue(name: str, environments: Sequence[str], *, state: str = "ENABLED") -> str:
    batch = boto3.client("batch", region_name="us-east-1")
    arn: str = batch.create_job_queue(
        jobQueueName=name,
        state=state,
        priority=1,
        computeEnvironmentOrder=[
            {"order": i + 1, "computeEnvironment": ce} for i, ce in enumerate(environments)
        ],
    )["jobQueueArn"]
    return arn


def submit(queue_arn: str, definition: str, name: str = "stuck") -> str:
    batch = boto3.client("batch", region_name="us-east-1")
    job_id: str = batch.submit_job(jobName=name, jobQueue=queue_arn, jobDefinition=definition)[
        "jobId"
    ]
    return job_id

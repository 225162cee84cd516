"""The doctor against moto, each rule with a deliberately broken setup; what moto cannot produce
(a RUNNABLE job, a status reason, an INVALID environment, Batch reporting the overrides) comes
through the gateway seam (`SeenBatch`, handed to `AwsProvider(batch=...)`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import msgspec.structs
import pytest
from moto import mock_aws

from batchkit.api import Cluster
from batchkit.doctor.findings import Finding, Report, Verdict
from batchkit.doctor.gather import MAX_ENVIRONMENTS
from batchkit.doctor.runner import MAX_JOBS
from batchkit.models import Attempt, JobStatus, Resources
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.ratelimit import RateLimiter
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from tests.doctor.moto_setup import SeenBatch, environment, public_route, queue, submit
from tests.fixtures.moto_server import SIMPLE_CONFIG, create_cluster, put_log_lines
from tests.providers.aws.faults import _answer

NOW = time.time()
AN_HOUR_AGO_MS = int((NOW - 3600) * 1000)


class World:
    """A moto account with the `pc-test` cluster, and a way to diagnose through a SeenBatch."""

    def __init__(self, tmp_path: Path, hooks: list[tuple[str, Any]]) -> None:
        self.tmp_path = tmp_path
        self.cluster = create_cluster("pc-test")
        self.batch = boto3.client("batch", region_name="us-east-1")
        self.session = AwsSession(
            limiter=RateLimiter(sleep=lambda s: None),
            retry=RetryPolicy(sleep=lambda s: None, rng=random.Random(1)),
            workers=1,
            cluster="pc-test",
            hooks=hooks,
        )
        self.jobs: dict[str, Mapping[str, Any]] = {}
        self.environments: dict[str, Mapping[str, Any]] = {}
        self.queues: dict[str, Mapping[str, Any]] = {}

    def definition(self, name: str = "jd", **container: Any) -> str:
        props: dict[str, Any] = {"image": "busybox", "command": ["true"], "vcpus": 1, "memory": 512}
        props.update(container)
        arn: str = self.batch.register_job_definition(
            jobDefinitionName=name, type="container", containerProperties=props
        )["jobDefinitionArn"]
        return arn

    def runnable(self, job_id: str, **fields: Any) -> str:
        self.jobs[job_id] = {
            "status": JobStatus.RUNNABLE,
            "created_at": AN_HOUR_AGO_MS,
            **fields,
        }
        return job_id

    def api(self, queues: Mapping[str, str] | None = None) -> Cluster:
        """The cluster's API; `queues` (name -> ARN) join the cluster's own, as a batchkit
        stack with several queues names them."""
        _, info = discover(
            "pc-test",
            session_factory=lambda *a: self.session,
            cli_config=self.tmp_path / "absent.cfg",
        )
        if queues:
            info = msgspec.structs.replace(info, queues={**info.queues, **queues})
        batch = SeenBatch(
            self.session, jobs=self.jobs, environments=self.environments, queues=self.queues
        )
        return Cluster(AwsProvider(self.session, info, batch=batch), clock=lambda: NOW)

    def doctor(self, job_id: str | None = None) -> Report:
        return self.api().doctor(job_id)


@pytest.fixture
def hooks() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def world(tmp_path: Path, hooks: list[tuple[str, Any]]) -> Iterator[World]:
    with mock_aws(config=SIMPLE_CONFIG):
        yield World(tmp_path, hooks)


def rule(report: Report, name: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == name]


def stuck_in(world: World, queue_arn: str, definition: str | None = None, **fields: Any) -> str:
    job_id = submit(queue_arn, definition or world.definition())
    return world.runnable(job_id, **fields)


# -- why RUNNABLE ---------------------------------------------------------------------------------


def test_a_healthy_setup_has_no_problem(world: World) -> None:
    public_route()
    job_id = stuck_in(world, world.cluster.job_queue)
    report = world.doctor(job_id)
    assert not report.has_problem, report
    assert {f.rule for f in report.findings} >= {
        "queue-state",
        "environment-state",
        "max-vcpus",
        "instance-fit",
        "network",
        "egress",
    }


def test_a_disabled_queue_leads(world: World) -> None:
    public_route()
    ce = environment("ce-ok")
    q = queue("q-off", [ce], state="DISABLED")
    report = world.doctor(stuck_in(world, q))
    lead = report.leading
    assert lead is not None and lead.rule == "queue-state" and lead.verdict is Verdict.PROBLEM
    assert "DISABLED" in lead.seen and "update-job-queue" in (lead.fix or "")


def test_an_invalid_queue_leads_with_its_reason(world: World) -> None:
    public_route()
    q = queue("q-invalid-queue", [environment("ce-behind")])
    reason = "CLIENT_ERROR - computeEnvironmentOrder names a compute environment that is gone"
    world.queues["q-invalid-queue"] = {"status": "INVALID", "status_reason": reason}
    lead = world.doctor(stuck_in(world, q)).leading
    assert lead is not None and lead.rule == "queue-state" and lead.verdict is Verdict.PROBLEM
    assert lead.seen == f"the queue is INVALID: {reason}"
    assert "batchkit cluster update" in (lead.fix or "")


def test_an_invalid_queue_without_a_reason_says_so(world: World) -> None:
    public_route()
    q = queue("q-invalid-bare", [environment("ce-bare")])
    world.queues["q-invalid-bare"] = {"status": "INVALID", "status_reason": None}
    [found] = rule(world.doctor(stuck_in(world, q)), "queue-state")
    assert found.verdict is Verdict.PROBLEM
    assert found.seen == "the queue is INVALID: no reason given"


def test_instance_types_too_small_for_the_ask(world: World) -> None:
    public_route()
    q = queue("q-small", [environment("ce-small", instance_types=["m5.large"])])
    job_id = stuck_in(world, q, world.definition("big", vcpus=4, memory=16000))
    report = world.doctor(job_id)
    [fit] = rule(report, "instance-fit")
    assert fit.verdict is Verdict.PROBLEM
    assert "m5.large (2 vCPUs)" in fit.seen and "8192 MiB installed" in fit.seen
    assert "instance_types" in (fit.fix or "")


def test_an_ask_of_all_of_an_instances_memory_never_fits(world: World) -> None:
    public_route()
    q = queue("q-exact", [environment("ce-exact", instance_types=["m5.large"])])
    job_id = stuck_in(world, q, world.definition("exact", vcpus=2, memory=8192))
    [fit] = rule(world.doctor(job_id), "instance-fit")
    assert fit.verdict is Verdict.PROBLEM and "about 7955 MiB for jobs" in fit.seen


def test_families_and_optimal_are_expanded(world: World) -> None:
    public_route()
    q = queue("q-family", [environment("ce-family", instance_types=["m5"])])
    job_id = stuck_in(world, q, world.definition("mid", vcpus=8, memory=32000))
    [fit] = rule(world.doctor(job_id), "instance-fit")
    assert fit.verdict is Verdict.OK and "m5.4xlarge" in fit.seen


def test_max_vcpus_smaller_than_the_job(world: World) -> None:
    public_route()
    q = queue("q-max", [environment("ce-max", max_vcpus=4)])
    job_id = stuck_in(world, q, resources=Resources(vcpus=8, memory=1024))
    [found] = rule(world.doctor(job_id), "max-vcpus")
    assert found.verdict is Verdict.PROBLEM
    assert "needs 8 vCPUs at once; maxvCpus is 4" in found.seen


def test_max_vcpus_reached_by_running_jobs(world: World) -> None:
    public_route()
    q = queue("q-full", [environment("ce-full", max_vcpus=4)])
    world.environments["ce-full"] = {"desired_vcpus": 4}
    job_id = stuck_in(world, q, resources=Resources(vcpus=2, memory=1024))
    [found] = rule(world.doctor(job_id), "max-vcpus")
    assert found.verdict is Verdict.WARNING and "4 are already in use" in found.seen


def test_a_private_subnet_without_nat_or_endpoints(world: World) -> None:
    q = queue("q-private", [environment("ce-private")])
    report = world.doctor(stuck_in(world, q))
    [net] = [f for f in rule(report, "network") if "ce-private" in f.check]
    assert net.verdict is Verdict.PROBLEM
    assert "no VPC endpoint for ecr.api, ecr.dkr, s3, logs, ecs" in net.seen
    assert "NAT gateway" in (net.fix or "")
    assert report.has_problem


def test_vpc_endpoints_for_every_service_make_a_private_subnet_fine(world: World) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    subnet = ec2.describe_subnets()["Subnets"][0]
    for service in ("ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry", "s3"):
        ec2.create_vpc_endpoint(
            VpcId=subnet["VpcId"],
            ServiceName=f"com.amazonaws.us-east-1.{service}",
            VpcEndpointType="Gateway" if service == "s3" else "Interface",
        )
    q = queue("q-endpoints", [environment("ce-endpoints")])
    [net] = [f for f in rule(world.doctor(stuck_in(world, q)), "network") if "endpoints" in f.check]
    assert net.verdict is Verdict.OK and "VPC endpoints for every service" in net.seen


def test_a_security_group_without_egress(world: World) -> None:
    public_route()
    ec2 = boto3.client("ec2", region_name="us-east-1")
    group = ec2.create_security_group(GroupName="closed", Description="x")["GroupId"]
    ec2.revoke_security_group_egress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    q = queue("q-closed", [environment("ce-closed", security_groups=[group])])
    [found] = rule(world.doctor(stuck_in(world, q)), "egress")
    assert found.verdict is Verdict.PROBLEM and group in found.seen


def test_a_gpu_ask_on_a_cpu_environment(world: World) -> None:
    public_route()
    q = queue("q-cpu", [environment("ce-cpu", instance_types=["m5", "c5"])])
    # moto drops resourceRequirements from DescribeJobs: Batch's answer comes through the seam
    report = world.doctor(stuck_in(world, q, resources=Resources(vcpus=1, memory=512, gpus=1)))
    [found] = rule(report, "gpus")
    assert found.verdict is Verdict.PROBLEM and "no compute environment" in found.seen
    assert "gpu: true" in (found.fix or "")


def test_a_gpu_ask_on_a_gpu_environment_is_fine(world: World) -> None:
    public_route()
    q = queue("q-gpu", [environment("ce-gpu", instance_types=["g4dn"])])
    job_id = stuck_in(world, q, resources=Resources(vcpus=1, memory=512, gpus=1))
    [found] = rule(world.doctor(job_id), "gpus")
    assert found.verdict is Verdict.OK


def test_a_gpu_ask_on_a_fargate_queue(world: World) -> None:
    public_route()
    q = queue("q-fargate-gpu", [environment("ce-fargate-gpu", compute_type="FARGATE")])
    job_id = stuck_in(world, q, resources=Resources(vcpus=1, memory=2048, gpus=1))
    report = world.doctor(job_id)
    [found] = rule(report, "gpus")
    assert found.verdict is Verdict.PROBLEM
    assert "asks for 1 GPUs" in found.seen and "ce-fargate-gpu (Fargate)" in found.seen
    assert "gpu: true" in (found.fix or "")
    # the Fargate rule says it too, though 1 vCPU with 2048 MiB is a Fargate combination
    [fargate] = rule(report, "fargate")
    assert fargate.verdict is Verdict.PROBLEM and "Fargate has none" in fargate.seen
    assert "drop --gpus" in (fargate.fix or "")


def test_a_fargate_combination_aws_rejects(world: World) -> None:
    public_route()
    q = queue("q-fargate", [environment("ce-fargate", compute_type="FARGATE")])
    job_id = stuck_in(world, q, resources=Resources(vcpus=1, memory=1024))
    [found] = rule(world.doctor(job_id), "fargate")
    assert found.verdict is Verdict.PROBLEM
    assert "2048-8192 MiB" in found.seen and "-m 2048" in (found.fix or "")


def test_an_invalid_environment_is_explained(world: World) -> None:
    public_route()
    q = queue("q-invalid", [environment("ce-invalid")])
    world.environments["ce-invalid"] = {
        "status": "INVALID",
        "status_reason": "CLIENT_ERROR - Value (arn:aws:iam::1:instance-profile/x) for parameter "
        "iamInstanceProfile.arn is invalid",
    }
    lead = world.doctor(stuck_in(world, q)).leading
    assert lead is not None and lead.rule == "environment-state"
    assert "INVALID" in lead.seen and "instance role" in (lead.fix or "")


def test_what_batch_says_comes_first_with_its_fix(world: World) -> None:
    public_route()
    job_id = stuck_in(
        world,
        world.cluster.job_queue,
        status_reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement "
        "(vCPU/memory/GPU) is higher than that can be met by the CE(s) attached to the job queue.",
    )
    [found] = rule(world.doctor(job_id), "batch-reason")
    assert found.verdict is Verdict.PROBLEM and "instance type" in found.seen


def test_instances_that_never_join(world: World) -> None:
    public_route()
    q = queue("q-join", [environment("ce-join")])
    world.environments["ce-join"] = {"desired_vcpus": 4}
    [found] = rule(world.doctor(stuck_in(world, q)), "instances-joining")
    assert found.verdict is Verdict.PROBLEM and "no instance has joined" in found.seen


def test_desired_vcpus_stuck_at_zero(world: World) -> None:
    public_route()
    q = queue("q-idle", [environment("ce-idle")])
    [found] = rule(world.doctor(stuck_in(world, q)), "scaling")
    assert found.check == "compute environment ce-idle: desiredvCpus"
    assert found.verdict is Verdict.WARNING
    assert found.seen == "desiredvCpus is still 0 after 60 min with the job RUNNABLE"
    assert "head of the queue" in (found.fix or "")


def test_desired_vcpus_are_not_stuck_when_young_scaled_or_disabled(world: World) -> None:
    public_route()
    young_queue = queue("q-young", [environment("ce-young")])
    young = stuck_in(world, young_queue, created_at=int((NOW - 540) * 1000))
    assert rule(world.doctor(young), "scaling") == []
    scaled_queue = queue("q-scaled", [environment("ce-scaled")])
    world.environments["ce-scaled"] = {"desired_vcpus": 2}
    assert rule(world.doctor(stuck_in(world, scaled_queue)), "scaling") == []
    off_queue = queue("q-ce-off", [environment("ce-off", state="DISABLED")])
    assert rule(world.doctor(stuck_in(world, off_queue)), "scaling") == []


def test_a_low_spot_bid(world: World) -> None:
    public_route()
    q = queue("q-spot", [environment("ce-spot", compute_type="SPOT", bid_percentage=20,
                                      instance_types=["m5.large"])])  # fmt: skip
    [found] = rule(world.doctor(stuck_in(world, q)), "spot-bid")
    assert found.verdict is Verdict.WARNING and "20 %" in found.seen and "m5.large $" in found.seen


def test_a_pending_job_waits_for_its_dependencies(world: World) -> None:
    public_route()
    first = submit(world.cluster.job_queue, world.cluster.job_definition, "first")
    second = world.batch.submit_job(
        jobName="second",
        jobQueue=world.cluster.job_queue,
        jobDefinition=world.cluster.job_definition,
        dependsOn=[{"jobId": first}],
    )["jobId"]
    world.jobs[first] = {"status": JobStatus.RUNNING}
    world.jobs[second] = {"status": JobStatus.PENDING}
    [found] = rule(world.doctor(second), "dependencies")
    assert found.verdict is Verdict.WARNING and f"{first} (first) RUNNING" in found.seen
    world.jobs[first] = {"status": JobStatus.FAILED, "status_reason": "Essential container exited"}
    [found] = rule(world.doctor(second), "dependencies")
    assert found.verdict is Verdict.PROBLEM and first in found.seen


@pytest.mark.parametrize(
    "hooks",
    [
        [
            (
                "before-call.ec2.DescribeRouteTables",
                lambda **kw: _answer(403, "UnauthorizedOperation", "You are not authorized"),
            )
        ]
    ],
)
def test_access_denied_on_route_tables(world: World) -> None:
    q = queue("q-denied", [environment("ce-denied")])
    report = world.doctor(stuck_in(world, q))
    skipped = [f for f in report.findings if f.verdict is Verdict.NOT_CHECKED]
    assert [f.seen for f in skipped] == ["not checked: needs ec2:DescribeRouteTables"]
    # no verdict made up without the routes
    assert [f.verdict for f in rule(report, "network")] == [Verdict.NOT_CHECKED]


def test_the_whole_cluster(world: World) -> None:
    ce = environment("ce-two", state="DISABLED")
    queue("q-two", [ce])
    stuck = stuck_in(world, world.cluster.job_queue)
    fresh = submit(world.cluster.job_queue, world.cluster.job_definition, "fresh")
    world.jobs[fresh] = {"status": JobStatus.RUNNABLE, "created_at": int(NOW * 1000)}
    report = world.doctor()
    assert report.subject == "cluster pc-test" and report.has_problem
    [summary] = rule(report, "stuck-jobs")
    assert summary.seen.startswith("1 jobs") and stuck in summary.seen and fresh not in summary.seen
    assert any(f.subject == stuck and f.rule == "instance-fit" for f in report.findings)
    # the cluster's own queue: its private subnet is the problem
    assert any(f.rule == "network" and f.verdict is Verdict.PROBLEM for f in report.findings)


# -- why FAILED -----------------------------------------------------------------------------------

FAILURES: list[tuple[dict[str, Any], str, str]] = [
    (
        {"reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
         "failed to resolve ref docker.io/library/nope:latest: not found"},
        "does not exist",
        "batchkit image build",
    ),
    (
        {"reason": "CannotPullContainerError: ref pull has been retried 5 time(s): dial tcp "
         "52.1.2.3:443: i/o timeout"},
        "could not reach the registry",
        "NAT",
    ),
    (
        {"reason": "CannotPullContainerError: no matching manifest for linux/arm64/v8 in the "
         "manifest list entries"},
        "architecture",
        "linux/amd64 or linux/arm64",
    ),
    (
        {"reason": "CannotPullContainerError: pull access denied, repository does not exist or "
         "may require authorization: 403 Forbidden"},
        "refused",
        "ecr:BatchGetImage",
    ),
    (
        {"reason": "ResourceInitializationError: unable to pull secrets or registry auth: "
         "execution resource retrieval failed: unable to retrieve secret from asm"},
        "ResourceInitializationError",
        "Secrets Manager",
    ),
    ({"reason": "OutOfMemoryError: Container killed due to memory usage", "exit_code": 137},
     "asked for 512 MiB", "-m 1024"),
    ({"exit_code": 137, "reason": None}, "killed for memory", "-m 1024"),
    (
        {"status_reason": "Host EC2 (instance i-0123456789abcdef0) terminated.", "exit_code": 137},
        "EC2 reclaimed it",
        "--spot-retry",
    ),
    ({"exit_code": 127, "reason": None}, "command is not found", "command -v"),
    ({"exit_code": 126, "reason": None}, "not executable", "command -v"),
    (
        {"status_reason": "Job attempt duration exceeded timeout", "timeout": 60},
        "timeout (-t 60, 60 s) after running 60 s",
        "-t 120",
    ),
    (
        {"reason": "CannotStartContainerError: Error response from daemon: failed to initialize "
         "logging driver: failed to create Cloudwatch log stream: RequestError"},
        "could not start",
        "CloudWatch Logs",
    ),
    ({"reason": "DockerTimeoutError: Could not transition to created; timed out after waiting "
      "4m0s"}, "DockerTimeoutError", "root_volume_gib"),
    ({"status_reason": "Dependent Job failed"}, "depends on failed", "dependency"),
    ({"exit_code": 3, "reason": "Essential container in task exited"}, "exited with 3", "output"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "seen", "fix"), FAILURES)
def test_a_failed_job_is_explained(
    world: World, fields: dict[str, Any], seen: str, fix: str
) -> None:
    job_id = submit(world.cluster.job_queue, world.cluster.job_definition, "failing")
    stream = f"{world.cluster.job_definition_name}/default/{job_id}"
    put_log_lines("/aws/batch/job", stream, 30, text="output {i}")
    attempt = Attempt(
        started_at=AN_HOUR_AGO_MS,
        stopped_at=AN_HOUR_AGO_MS + 60_000,
        exit_code=fields.get("exit_code"),
        reason=fields.get("reason"),
        log_stream=stream,
        status_reason=fields.get("status_reason"),
    )
    world.jobs[job_id] = {"status": JobStatus.FAILED, "attempts": [attempt], **fields}
    report = world.doctor(job_id)
    lead = report.leading
    assert lead is not None and lead.rule == "failure" and lead.verdict is Verdict.PROBLEM
    assert seen in lead.seen and fix in (lead.fix or "")
    assert lead.details == tuple(f"output {i}" for i in range(20, 30))


def test_a_failed_dependency_is_named(world: World) -> None:
    fine = submit(world.cluster.job_queue, world.cluster.job_definition, "fine-dep")
    broken = submit(world.cluster.job_queue, world.cluster.job_definition, "broken-dep")
    job_id = world.batch.submit_job(
        jobName="after",
        jobQueue=world.cluster.job_queue,
        jobDefinition=world.cluster.job_definition,
        dependsOn=[{"jobId": fine}, {"jobId": broken}],
    )["jobId"]
    world.jobs[broken] = {"status": JobStatus.FAILED, "exit_code": 127}
    world.jobs[job_id] = {"status": JobStatus.FAILED, "status_reason": "Dependent Job failed"}
    report = world.doctor(job_id)
    lead = report.leading
    assert lead is not None and lead.rule == "dependencies" and lead.verdict is Verdict.PROBLEM
    assert f"{broken} (broken-dep)" in lead.seen and fine not in lead.seen
    assert f"batchkit doctor {broken}" in (lead.fix or "")
    [failed] = rule(report, "failure")
    assert failed.verdict is Verdict.PROBLEM and "depends on failed" in failed.seen
    assert "named under 'dependencies'" in (failed.fix or "")


def test_a_failed_array_is_explained_by_its_first_failed_child(world: World) -> None:
    job_id = world.batch.submit_job(
        jobName="array",
        jobQueue=world.cluster.job_queue,
        jobDefinition=world.cluster.job_definition,
        arrayProperties={"size": 3},
    )["jobId"]
    world.jobs[job_id] = {"status": JobStatus.FAILED, "status_reason": "Array Child Job failed"}
    world.jobs[f"{job_id}:1"] = {"status": JobStatus.FAILED, "exit_code": 127}
    lead = world.doctor(job_id).leading
    assert lead is not None and "command is not found" in lead.seen


def test_a_succeeded_job_has_nothing_wrong(world: World) -> None:
    job_id = submit(world.cluster.job_queue, world.cluster.job_definition, "fine")
    report = world.doctor(job_id)
    assert not report.has_problem and report.status == "SUCCEEDED"


def test_why_is_cheap_and_says_the_leading_cause(world: World) -> None:
    calls: list[str] = []

    def count(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)

    world.session.add_hook("before-call", count)
    ce = environment("ce-why", state="DISABLED")
    q = queue("q-why", [ce])
    job_id = stuck_in(world, q)
    api = world.api()
    job = api.describe(job_id)
    calls.clear()
    finding = api.why(job)
    assert finding is not None and "DISABLED" in finding.seen
    assert calls == ["DescribeJobQueues", "DescribeComputeEnvironments"]


def test_an_image_built_for_another_architecture(world: World) -> None:
    public_route()
    ecr = boto3.client("ecr", region_name="us-east-1")
    uri = ecr.create_repository(repositoryName="tools")["repository"]["repositoryUri"]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "a" * 64,
                "size": 100,
                "platform": {"architecture": "arm64", "os": "linux"},
            }
        ],
    }
    ecr.put_image(
        repositoryName="tools",
        imageManifest=json.dumps(index),
        imageManifestMediaType="application/vnd.oci.image.index.v1+json",
        imageTag="v1",
    )
    q = queue("q-x86", [environment("ce-x86", instance_types=["m5.large"])])
    report = world.doctor(stuck_in(world, q, image=f"{uri}:v1"))  # moto drops the image
    [found] = rule(report, "architecture")
    assert found.verdict is Verdict.PROBLEM
    assert "built for arm64" in found.seen and "x86_64" in found.seen


# -- within its means -----------------------------------------------------------------------------

READS = ("Describe", "List", "Get", "BatchGet")
"""What the doctor may call: reads only (ECR BatchGetImage reads a manifest, GetLogEvents a log)."""


class Calls:
    """Every AWS call the session's clients make: its name from a before-call hook, its
    parameters from before-parameter-build (before-call sees only the serialized request)."""

    def __init__(self, session: AwsSession) -> None:
        self.names: list[str] = []
        self.params: list[tuple[str, Mapping[str, Any]]] = []
        session.add_hook("before-call", self._call)
        session.add_hook("before-parameter-build", self._params)

    def _call(self, **kwargs: Any) -> None:
        self.names.append(kwargs["model"].name)

    def _params(self, **kwargs: Any) -> None:
        self.params.append((kwargs["model"].name, kwargs["params"]))

    def clear(self) -> None:
        self.names.clear()
        self.params.clear()

    def asked(self, operation: str, key: str) -> set[str]:
        """Every value the calls of `operation` named under `key`."""
        return {v for op, params in self.params if op == operation for v in params.get(key, ())}

    def seams(self) -> int:
        """The ListJobs calls of SUCCEEDED jobs: the test's seam makes them (moto marks every
        job SUCCEEDED; SeenBatch lists those too to report them RUNNABLE), the doctor does not."""
        return sum(
            1 for op, p in self.params if op == "ListJobs" and p.get("jobStatus") == "SUCCEEDED"
        )


JOB_CALLS = 2 + 2 + 3 * 8 + 1
"""docs/doctor.md, "Within its means": a job costs at most DescribeJobs twice (the job, its
dependencies), DescribeJobQueues and DescribeComputeEnvironments once, 8 calls for each of the
queue's 3 compute environments at most, and ECR BatchGetImage once (every list on one page)."""


def cluster_calls(queues: int) -> int:
    """docs/doctor.md: the whole cluster costs at most 1 + 2 x queues + 6 x (1 + 8) + 10 x 3."""
    return 1 + 2 * queues + MAX_ENVIRONMENTS * (1 + 8) + MAX_JOBS * 3


def test_doctor_only_reads_and_stays_within_its_bounds(world: World) -> None:
    calls = Calls(world.session)
    public_route()
    queues = {
        f"q{q}": queue(f"q-{q}", [environment(f"ce-{q}-{e}") for e in range(2)]) for q in range(4)
    }
    stuck = [
        stuck_in(world, arn, created_at=AN_HOUR_AGO_MS + 1000 * len(world.jobs))
        for arn in queues.values()
        for _ in range(3)
    ]  # 12 stuck jobs > MAX_JOBS, oldest first; 1 + 4 x 2 = 9 environments > MAX_ENVIRONMENTS
    assert len(stuck) > MAX_JOBS and 1 + 2 * len(queues) > MAX_ENVIRONMENTS
    api = world.api(queues)
    calls.clear()

    one = api.doctor(stuck[0])
    assert all(name.startswith(READS) for name in calls.names), calls.names
    assert len(calls.names) <= JOB_CALLS, calls.names
    assert one.findings and not any(f.verdict is Verdict.NOT_CHECKED for f in one.findings)
    calls.clear()

    report = api.doctor()
    assert all(name.startswith(READS) for name in calls.names), calls.names
    assert len(calls.names) - calls.seams() <= cluster_calls(1 + len(queues)), calls.names
    # MAX_JOBS: only the oldest 10 described and diagnosed, the summary counts all 12
    assert calls.asked("DescribeJobs", "jobs") == set(stuck[:MAX_JOBS])
    diagnosed = {f.subject for f in report.findings if f.subject}
    assert set(stuck[:6]) <= diagnosed <= set(stuck[:MAX_JOBS])  # q-0's and q-1's have findings
    [summary] = rule(report, "stuck-jobs")
    assert summary.seen.startswith(f"12 jobs (the oldest {MAX_JOBS} are diagnosed)")
    # MAX_ENVIRONMENTS: the default queue's and q-0's and q-1's read; q-2's and q-3's left out
    read = calls.asked("DescribeComputeEnvironments", "computeEnvironments")
    assert len(read) == 5 <= MAX_ENVIRONMENTS
    assert not any("ce-2-" in ce or "ce-3-" in ce for ce in read)
    left_out = [f for f in report.findings if f.verdict is Verdict.NOT_CHECKED]
    assert {f.check for f in left_out} == {
        "queue q-2: compute environments",
        "queue q-3: compute environments",
    }
    assert all(f"at most {MAX_ENVIRONMENTS} compute environments" in f.seen for f in left_out)
    assert "left out: ce-2-0, ce-2-1" in left_out[0].seen + left_out[1].seen
    # the queues left out are still checked themselves, and nothing is made up about them
    assert {f.check for f in rule(report, "queue-state")} >= {"queue q-2", "queue q-3"}
    assert not report.has_problem, [f for f in report.findings if f.verdict is Verdict.PROBLEM]


@pytest.mark.parametrize(
    "hooks",
    [
        [
            (
                "before-call.batch.DescribeComputeEnvironments",
                lambda **kw: _answer(403, "AccessDeniedException", "not authorized"),
            )
        ]
    ],
)
def test_environments_refused_are_not_checked_rather_than_missing(world: World) -> None:
    report = world.doctor(stuck_in(world, world.cluster.job_queue))
    assert not report.has_problem, report.findings
    [skipped] = [f for f in report.findings if f.verdict is Verdict.NOT_CHECKED]
    assert skipped.seen == "not checked: needs batch:DescribeComputeEnvironments"

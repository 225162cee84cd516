from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import msgspec.structs
import pytest
from botocore.awsrequest import AWSResponse

from batchkit.errors import ConflictError, UsageError
from batchkit.models import (
    Dependency,
    JobKind,
    JobStatus,
    Resources,
    SubmitRequest,
)
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.aws.submitonce import LOOKUP_WAITS
from batchkit.providers.base import Provider
from tests.fixtures.moto_server import Cluster
from tests.providers.aws.conftest import Sleeper
from tests.providers.aws.faults import Faults

MakeSession = Callable[..., AwsSession]


def request(name: str = "hello", **kwargs: object) -> SubmitRequest:
    return SubmitRequest(
        name=name,
        command=("/bin/sh", "-c", 'echo "$1"', "batchkit-job", "it's $(x)"),
        environment={"PCLUSTER_JOB_S3_URL": f"s3://bucket/root/batch/job-{name}-1/"},
        **kwargs,  # type: ignore[arg-type]
    )


def counted_provider(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path, faults: Faults | None = None
) -> tuple[AwsProvider, Faults]:
    faults = faults or Faults()
    session = make_session(hooks=faults.hooks("batch"), cluster=cluster.name)
    _, info = discover(
        cluster.name, session_factory=lambda *a: session, cli_config=tmp_path / "absent"
    )
    return AwsProvider(session, info), faults


def test_it_is_a_provider(provider: AwsProvider) -> None:
    typed: Provider = provider
    assert typed.kind == "aws"


def test_submit_a_single_job(provider: AwsProvider, cluster: Cluster) -> None:
    job = provider.submit(request(resources=Resources(vcpus=2, memory=1024), timeout=120))
    assert job.status is JobStatus.SUBMITTED and job.name == "hello"
    [seen] = provider.describe_jobs([job.job_id])
    assert seen.name == "hello" and seen.status is JobStatus.SUCCEEDED
    assert seen.command == ["/bin/sh", "-c", 'echo "$1"', "batchkit-job", "it's $(x)"]
    assert seen.s3_folder_url == "s3://bucket/root/batch/job-hello-1/"
    assert seen.job_definition == cluster.job_definition
    assert seen.log_stream == f"{cluster.job_definition_name}/default/{job.job_id}"
    assert seen.console_url == (
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        f"#logEventViewer:group=/aws/batch/job;stream={seen.log_stream}"
    )


def test_tags_and_dependencies_reach_batch(provider: AwsProvider) -> None:
    first = provider.submit(request("first"))
    second = provider.submit(
        request("second", depends_on=(Dependency(first.job_id),), client_token="tok-2")
    )
    detail = boto3.client("batch").describe_jobs(jobs=[second.job_id])["jobs"][0]
    assert detail["dependsOn"] == [{"jobId": first.job_id}]
    assert detail["tags"]["batchkit:client-token"] == "tok-2"


def test_the_region_travels_in_the_job_environment_so_no_job_needs_imds(
    provider: AwsProvider,
) -> None:
    job = provider.submit(request("regional"))
    detail = boto3.client("batch").describe_jobs(jobs=[job.job_id])["jobs"][0]
    environment = {e["name"]: e["value"] for e in detail["container"]["environment"]}
    assert environment["AWS_DEFAULT_REGION"] == boto3.session.Session().region_name
    own = provider.submit(
        msgspec.structs.replace(
            request("own"),
            environment={"AWS_REGION": "eu-west-1", "PCLUSTER_JOB_S3_URL": "s3://b/"},
        )
    )
    detail = boto3.client("batch").describe_jobs(jobs=[own.job_id])["jobs"][0]
    names = {e["name"] for e in detail["container"]["environment"]}
    assert "AWS_DEFAULT_REGION" not in names


def test_more_than_twenty_dependencies_are_refused_before_any_call(
    provider: AwsProvider,
) -> None:
    deps = tuple(Dependency(f"j{i}") for i in range(21))
    with pytest.raises(UsageError):
        provider.submit(request(depends_on=deps))


def test_array_children_are_complete(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path
) -> None:
    provider, faults = counted_provider(make_session, cluster, tmp_path)
    job = provider.submit(request("arr", array_size=250))
    [parent] = provider.describe_jobs([job.job_id])
    assert parent.kind is JobKind.ARRAY_PARENT and parent.display_id == f"{job.job_id} [250]"
    children = provider.list_children(parent)
    assert [c.job_id for c in children] == [f"{job.job_id}:{i}" for i in range(250)]
    assert all(c.status is JobStatus.SUCCEEDED for c in children)
    # what `out` of the parent and `stat -d` need: each child's own log stream, its S3 folder
    assert children[7].log_stream == f"{cluster.job_definition_name}/default/{job.job_id}:7"
    assert children[7].s3_folder_url == "s3://bucket/root/batch/job-arr-1/"
    assert faults.total("DescribeJobs") == 1 + 3  # the parent, then 100 children a call


@pytest.mark.parametrize(
    ("size", "list_calls", "describe_calls"),
    [
        # all children SUCCEEDED: only SUCCEEDED and FAILED are listed, 1,000 a page, where
        # describing them would take 3 calls
        (250, 2, 0),
        # one DescribeJobs covers 100 children: fewer calls than listing two statuses, complete
        (100, 0, 1),
    ],
)
def test_array_children_for_a_table_take_the_fewest_calls(
    make_session: MakeSession,
    cluster: Cluster,
    tmp_path: Path,
    size: int,
    list_calls: int,
    describe_calls: int,
) -> None:
    provider, faults = counted_provider(make_session, cluster, tmp_path)
    job = provider.submit(request("arr", array_size=size))
    [parent] = provider.describe_jobs([job.job_id])
    children = provider.list_child_summaries(parent)
    assert [c.job_id for c in children] == [f"{job.job_id}:{i}" for i in range(size)]
    assert all(c.status is JobStatus.SUCCEEDED for c in children)
    assert faults.total("ListJobs") == list_calls
    assert faults.total("DescribeJobs") == 1 + describe_calls


def test_children_of_many_small_parents_share_describe_calls(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path
) -> None:
    """awsbstat -e describes every child 100 ids a call whatever its parent: so does batchkit."""
    provider, faults = counted_provider(make_session, cluster, tmp_path)
    arrays = [provider.submit(request(f"a{i}", array_size=10)) for i in range(12)]
    single = provider.submit(request("one"))
    parents = provider.describe_jobs([a.job_id for a in arrays] + [single.job_id])
    before = faults.total("DescribeJobs")
    children = provider.list_child_summaries_of(parents)
    assert faults.total("DescribeJobs") - before == 2  # 120 children
    assert faults.total("ListJobs") == 0
    assert children[single.job_id] == []
    for array in arrays:
        assert [c.job_id for c in children[array.job_id]] == [
            f"{array.job_id}:{i}" for i in range(10)
        ]


def test_mnp_nodes_are_described_not_listed_per_status(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path
) -> None:
    """Seven ListJobs(multiNodeJobId) calls for a 4-node job would be more than awsbstat makes."""
    provider, faults = counted_provider(make_session, cluster, tmp_path)
    job = provider.submit(request("mpi", nodes=4))
    provider.list_child_summaries(job)
    assert faults.total("ListJobs") == 0
    assert faults.total("DescribeJobs") == 1


def test_children_of_a_parent_known_only_from_a_summary(provider: AwsProvider) -> None:
    job = provider.submit(request("arr", array_size=3))
    [listed] = [j for j in provider.list_jobs(list(JobStatus)) if j.job_id == job.job_id]
    assert listed.kind is JobKind.ARRAY_PARENT  # moto's summaries say nothing: it was described
    assert len(provider.list_children(listed)) == 3


def test_list_jobs_shows_top_level_jobs_only(provider: AwsProvider) -> None:
    single = provider.submit(request("one"))
    array = provider.submit(request("arr", array_size=4))
    listed = provider.list_jobs([JobStatus.SUCCEEDED])
    assert sorted(j.job_id for j in listed) == sorted([single.job_id, array.job_id])
    assert provider.list_jobs([JobStatus.RUNNING]) == []


def test_describe_jobs_takes_any_number_of_ids_100_a_call(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path
) -> None:
    provider, faults = counted_provider(make_session, cluster, tmp_path)
    job = provider.submit(request("arr", array_size=250))
    ids = [f"{job.job_id}:{i}" for i in range(250)] + ["no-such-job"]
    found = provider.describe_jobs(ids)
    assert sorted(j.job_id for j in found) == sorted(ids[:-1])
    assert faults.total("DescribeJobs") == 3


def test_multi_node_jobs(provider: AwsProvider, cluster: Cluster) -> None:
    job = provider.submit(request("mpi", nodes=4, resources=Resources(vcpus=2, memory=2048)))
    detail = boto3.client("batch").describe_jobs(jobs=[job.job_id])["jobs"][0]
    assert detail["jobDefinition"] == cluster.job_definition_mnp
    # moto records no per-node jobs: both ListJobs(multiNodeJobId) and DescribeJobs(id#n) are
    # empty, so there is nothing to show (AWS has them once the job has started)
    assert provider.list_children(job) == []
    assert provider.list_child_summaries(job) == []


def test_an_image_gets_a_reused_content_named_definition(provider: AwsProvider) -> None:
    batch = boto3.client("batch")
    one = provider.submit(request("a", image="123.dkr.ecr.us-east-1.amazonaws.com/r:abc"))
    assert one.job_definition.split("/")[-1].startswith("batchkit-")
    fresh = AwsProvider(provider.session, provider.cluster)  # no in-memory cache
    two = fresh.submit(request("b", image="123.dkr.ecr.us-east-1.amazonaws.com/r:abc"))
    assert two.job_definition == one.job_definition
    three = fresh.submit(request("c", image="123.dkr.ecr.us-east-1.amazonaws.com/r:def"))
    assert three.job_definition != one.job_definition
    names = {
        d["jobDefinitionName"]
        for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    }
    assert len([n for n in names if n.startswith("batchkit-")]) == 2
    [definition] = batch.describe_job_definitions(jobDefinitions=[two.job_definition])[
        "jobDefinitions"
    ]
    assert definition["containerProperties"]["image"] == "123.dkr.ecr.us-east-1.amazonaws.com/r:abc"
    assert definition["containerProperties"]["environment"] == [
        {"name": "PCLUSTER_STACK_NAME", "value": "pc-test"}
    ]
    assert definition["tags"] == {"batchkit:cluster": "pc-test"}


def test_multi_node_jobs_to_an_efa_queue_get_its_definition(provider: AwsProvider) -> None:
    from msgspec.structs import replace

    batch = boto3.client("batch")
    efa = batch.register_job_definition(
        jobDefinitionName="pc-test_multinode-efa",
        type="multinode",
        nodeProperties={
            "mainNode": 0,
            "numNodes": 1,
            "nodeRangeProperties": [
                {"targetNodes": "0:", "container": {"image": "busybox", "vcpus": 1, "memory": 512}}
            ],
        },
    )["jobDefinitionArn"]
    [name] = [n for n, arn in provider.cluster.queues.items() if arn == provider.cluster.job_queue]
    with_efa = AwsProvider(
        provider.session, replace(provider.cluster, efa_job_definitions={name: efa})
    )
    job = with_efa.submit(request("mpi", nodes=2))
    assert batch.describe_jobs(jobs=[job.job_id])["jobs"][0]["jobDefinition"] == efa
    single = with_efa.submit(request("one"))
    detail = batch.describe_jobs(jobs=[single.job_id])["jobs"][0]
    assert detail["jobDefinition"] == provider.cluster.job_definition


def test_a_cluster_without_mnp_definition(provider: AwsProvider) -> None:
    from msgspec.structs import replace

    plain = AwsProvider(provider.session, replace(provider.cluster, job_definition_mnp=None))
    with pytest.raises(ConflictError, match="multi-node"):
        plain.submit(request(nodes=2))


@pytest.mark.parametrize("fault", ["lost", "acted_error"])
def test_a_lost_answer_or_a_5xx_after_the_work_does_not_duplicate_the_job(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path, fault: str
) -> None:
    # the service created the job, then the answer was lost or was a 500: the token lookup
    # finds the job instead of submitting a second one
    faults = Faults(**{fault: 1.0}, operation="SubmitJob")  # type: ignore[arg-type]
    provider, _ = counted_provider(make_session, cluster, tmp_path, faults)
    job = provider.submit(request("once", client_token=f"tok-{fault}"))
    jobs = boto3.client("batch").list_jobs(jobQueue=cluster.job_queue, jobStatus="SUCCEEDED")
    assert [j["jobId"] for j in jobs["jobSummaryList"]] == [job.job_id]
    assert faults.injected[fault] == 1


class ListedLate:
    """ListJobs as its eventual consistency allows: the first `hidden` answers list no job."""

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden
        self.calls = 0

    def __call__(self, **_: object) -> tuple[AWSResponse, dict[str, object]] | None:
        self.calls += 1
        if self.calls > self.hidden:
            return None
        return AWSResponse("https://injected", 200, {}, None), {"jobSummaryList": []}


@pytest.mark.parametrize("hidden", [1, 2])
def test_the_token_lookup_waits_for_a_job_listjobs_shows_late(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path, sleeper: Sleeper, hidden: int
) -> None:
    # SubmitJob made the job and answered 500; ListJobs lists it only on the 2nd or 3rd lookup
    faults = Faults(acted_error=1.0, operation="SubmitJob", limit=1)
    listed = ListedLate(hidden)
    hooks = [*faults.hooks("batch"), ("before-call.batch.ListJobs", listed)]
    session = make_session(hooks=hooks, cluster=cluster.name)
    _, info = discover(cluster.name, session_factory=lambda *a: session, cli_config=tmp_path / "x")
    job = AwsProvider(session, info).submit(request("late", client_token="tok-late"))
    jobs = boto3.client("batch").list_jobs(jobQueue=cluster.job_queue, jobStatus="SUCCEEDED")
    assert [j["jobId"] for j in jobs["jobSummaryList"]] == [job.job_id]
    assert faults.sent["SubmitJob"] == 1 and listed.calls == hidden + 1
    assert sleeper.calls == list(LOOKUP_WAITS[: hidden + 1])  # the injected sleep, not for real


def test_a_job_that_never_shows_is_resent_after_5_seconds_of_lookups(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path, sleeper: Sleeper
) -> None:
    faults = Faults(server_error=1.0, operation="SubmitJob", limit=1)  # before Batch acted
    provider, _ = counted_provider(make_session, cluster, tmp_path, faults)
    job = provider.submit(request("never", client_token="tok-never"))
    jobs = boto3.client("batch").list_jobs(jobQueue=cluster.job_queue, jobStatus="SUCCEEDED")
    assert [j["jobId"] for j in jobs["jobSummaryList"]] == [job.job_id]
    assert faults.total("ListJobs") == len(LOOKUP_WAITS) and faults.total("SubmitJob") == 2
    assert sleeper.calls == list(LOOKUP_WAITS) and sum(sleeper.calls) == 5.0


def test_a_lost_register_answer_adds_no_second_revision(
    make_session: MakeSession, cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(acted_error=1.0, operation="RegisterJobDefinition")
    provider, _ = counted_provider(make_session, cluster, tmp_path, faults)
    job = provider.submit(request("img", image="example.com/r:1"))
    name = job.job_definition.split("/")[-1].split(":")[0]
    revisions = boto3.client("batch").describe_job_definitions(jobDefinitionName=name)
    assert [d["revision"] for d in revisions["jobDefinitions"]] == [1]
    assert faults.injected["acted_error"] == 1


def test_list_jobs_covers_every_queue_unless_one_is_asked(
    provider: AwsProvider, cluster: Cluster
) -> None:
    from msgspec.structs import replace

    other = boto3.client("batch").create_job_queue(
        jobQueueName="pc-test-other",
        state="ENABLED",
        priority=2,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": cluster.compute_environment}],
    )["jobQueueArn"]
    queues = {"main": cluster.job_queue, "other": other}
    multi = AwsProvider(provider.session, replace(provider.cluster, queues=queues))
    multi.submit(request("a"))
    multi.submit(request("b", queue="other"))

    everything = multi.list_jobs([JobStatus.SUCCEEDED])
    assert sorted((j.name, j.queue) for j in everything) == [
        ("a", "pc-test-queue"),
        ("b", "pc-test-other"),
    ]
    assert [j.name for j in multi.list_jobs([JobStatus.SUCCEEDED], "other")] == ["b"]
    assert [j.name for j in multi.list_jobs([JobStatus.SUCCEEDED], "main")] == ["a"]


def test_terminate(provider: AwsProvider) -> None:
    job = provider.submit(request())
    provider.terminate_job(job.job_id, "Terminated by the user")  # moto: a no-op on a done job


def test_queues(provider: AwsProvider, cluster: Cluster) -> None:
    [queue] = provider.queues()
    assert queue.name == "pc-test-queue" and queue.arn == cluster.job_queue
    assert queue.state == "ENABLED" and queue.priority == 1
    assert queue.compute_environments == (cluster.compute_environment,)
    assert [q.name for q in provider.queues(["pc-test-queue"])] == ["pc-test-queue"]


def test_hosts_join_ecs_and_ec2(provider: AwsProvider, cluster: Cluster) -> None:
    assert provider.hosts() == []
    ce = boto3.client("batch").describe_compute_environments(
        computeEnvironments=[cluster.compute_environment]
    )["computeEnvironments"][0]
    ec2 = boto3.client("ec2")
    [instance] = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="c5.xlarge"
    )["Instances"]
    document = {"instanceId": instance["InstanceId"], "instanceType": "c5.xlarge"}
    boto3.client("ecs").register_container_instance(
        cluster=ce["ecsClusterArn"], instanceIdentityDocument=json.dumps(document)
    )
    [host] = provider.hosts()
    assert host.instance_id == instance["InstanceId"]
    assert host.private_ip == instance["PrivateIpAddress"]
    assert host.status == "ACTIVE"
    assert host.registered_vcpus > 0 and host.registered_memory > 0


def test_short_image_names_resolve_to_the_clusters_ecr_images(provider: AwsProvider) -> None:
    """`--image tools` means the image `batchkit image build --name tools` pushed, when the
    cluster's repository has it; other names go to Batch unchanged."""
    ecr = boto3.client("ecr")
    uri = ecr.create_repository(repositoryName="batchkit-pc-test")["repository"]["repositoryUri"]
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    for tag in ("tools", "tools-0123456789abcdef"):
        ecr.put_image(repositoryName="batchkit-pc-test", imageManifest=manifest, imageTag=tag)
    cluster = msgspec.structs.replace(provider.cluster, repository_uri=uri)
    built = AwsProvider(provider.session, cluster)
    assert built.resolve_image("tools") == f"{uri}:tools"
    assert built.resolve_image("tools:0123456789abcdef") == f"{uri}:tools-0123456789abcdef"
    assert built.resolve_image("python:3.12") == "python:3.12"
    assert built.resolve_image("public.ecr.aws/x/y:1") == "public.ecr.aws/x/y:1"
    assert provider.resolve_image("tools") == "tools"  # a cluster without a repository

    job = built.submit(request("img", image="tools"))
    [definition] = boto3.client("batch").describe_job_definitions(
        jobDefinitions=[job.job_definition]
    )["jobDefinitions"]
    assert definition["containerProperties"]["image"] == f"{uri}:tools"


def test_fair_share_queues_come_from_the_stacks_scheduling_policies(provider: AwsProvider) -> None:
    from batchkit.providers.aws.discovery import ClusterInfo

    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/"
    info: ClusterInfo = msgspec.structs.replace(
        provider.cluster,
        job_queue=f"{arn}lab_cpu",
        queues={"cpu": f"{arn}lab_cpu", "shared": f"{arn}lab_shared"},
        scheduling_policies={"shared": "arn:aws:batch:us-east-1:123456789012:scheduling-policy/x"},
    )
    shared = AwsProvider(provider.session, info)
    assert shared.fair_share("shared") is True
    assert shared.fair_share(f"{arn}lab_shared") is True  # by ARN
    assert shared.fair_share(None) is False  # the default queue, cpu
    assert shared.fair_share("cpu") is False
    unknown = AwsProvider(provider.session, msgspec.structs.replace(info, scheduling_policies=None))
    assert unknown.fair_share("shared") is None  # a stack that does not say: AWS decides


def test_what_travels_inline_keeps_submit_job_within_30_kib(
    provider: AwsProvider, aws_rules: object
) -> None:
    """A script just under the inline budget, 20 dependencies and 45 long tags: the request
    stays within SubmitJob's 30 KiB (the autouse rules check measures it), the script moving
    to the job folder when the rest leaves it no room."""
    from batchkit.jobs.submission import Submitter
    from batchkit.models import JobSpec

    submitter = Submitter(provider)
    deps = tuple(
        Dependency(submitter.submit(JobSpec(name=f"d{i}", command=("true",))).job_id)
        for i in range(20)
    )
    tags = {f"team-{i:02d}-" + "k" * 100: "v" * 200 for i in range(45)}
    script = b"#!/bin/sh\n" + b"echo padding-padding-padding\n" * 760  # ~22 KiB
    small = submitter.plan(JobSpec(name="big", script=script))
    crowded = submitter.plan(JobSpec(name="big", script=script, depends_on=deps, tags=tags))
    assert not small.needs_fetch
    assert crowded.needs_fetch and crowded.fetch_reason.startswith("the script, too large")
    job = submitter.submit(JobSpec(name="big", script=script, depends_on=deps, tags=tags))
    assert job.job_id

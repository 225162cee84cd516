"""The rendered stack deployed on moto: CREATE_COMPLETE, C4 outputs, clean teardown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from typer.testing import CliRunner

import batchkit
from batchkit import __version__
from batchkit.cli.app import app
from batchkit.clusters.stacks import (
    ClusterStacks,
    ClusterStatus,
    Progress,
    StackEvent,
    StackGateway,
    StackOperationError,
)
from batchkit.clusters.stacktemplate import TEMPLATE_BODY_LIMIT, template_body
from batchkit.errors import AwsError, ClusterNotFoundError, ConflictError, UsageError
from batchkit.infra.config import ClusterConfig, parse_cluster_config
from batchkit.models import Resources, SubmitRequest
from batchkit.providers.aws import open_provider
from batchkit.providers.aws.errors import AmbiguousCallError, AwsServiceError
from batchkit.providers.aws.session import AwsSession
from tests.aws_rules import RuleChecker
from tests.fixtures.aws_rules_check import install_hooks
from tests.fixtures.moto_batch import MOTO_AS_AWS
from tests.infra.moto_cluster import (
    MOCK_CONFIG,
    REGION,
    example_config_text,
    fill,
    moto_network,
    offline_parameters,
    remaining,
)
from tests.providers.aws.faults import Faults

BUCKET = "batchkit-research-123456789012-us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config=MOCK_CONFIG):
        yield


@pytest.fixture
def config(aws: None) -> ClusterConfig:
    return parse_cluster_config(example_config_text(moto_network()))


@pytest.fixture
def stacks(aws: None) -> ClusterStacks:
    sleeps: list[float] = []
    session = AwsSession(region=REGION, hooks=MOTO_AS_AWS)
    return ClusterStacks(session, sleep=sleeps.append)


def test_stack_is_created_and_its_outputs_satisfy_c4(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    progress: list[Progress] = []
    outcome = stacks.create(config, offline_parameters(), on_progress=progress.append)
    assert outcome.status == "CREATE_COMPLETE"
    assert any(p.event and p.event.status == "CREATE_COMPLETE" for p in progress)

    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="research"
    )["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["batchkit:cluster"] == "research"
    assert tags["project"] == "research"
    # What awsbatch-cli 1.6.0 reads.
    assert parameters["Scheduler"] == "awsbatch"
    assert parameters["ResourcesS3Bucket"] == BUCKET
    assert parameters["ArtifactS3RootDirectory"] == "batchkit/research"
    assert parameters["ProxyServer"] == "NONE"
    assert outputs["HeadNodePrivateIP"] == "NONE"
    assert outputs["BatchCliRequirements"] == "aws-parallelcluster-awsbatch-cli<2.0.0"
    assert "BatchJobDefinitionMnpArn" not in outputs  # multinode switched off
    # What batchkit reads.
    assert outputs["BatchkitVersion"] == __version__
    assert outputs["BucketName"] == BUCKET
    assert outputs["EcrRepositoryName"] == "batchkit/research"
    assert outputs["EcrRepositoryUri"].endswith("/batchkit/research")
    assert outputs["CodeBuildProjectName"] == "NONE"
    assert outputs["JobLogGroup"] == "/batchkit/research/jobs"
    assert ":role/batchkit/research/" in outputs["JobRoleArn"]

    batch = boto3.client("batch", region_name=REGION)
    queues = json.loads(outputs["JobQueues"])
    assert list(queues) == ["cpu", "gpu", "fargate"]
    assert queues["cpu"] == outputs["BatchJobQueueArn"]
    described = batch.describe_job_queues(jobQueues=list(queues.values()))["jobQueues"]
    assert {q["jobQueueName"] for q in described} == {
        "research_cpu",
        "research_gpu",
        "research_fargate",
    }
    environments = json.loads(outputs["ComputeEnvironments"])
    assert outputs["BatchComputeEnvironmentArn"] == environments["research_cpu_spot"]
    assert len(environments) == 5
    definition = batch.describe_job_definitions(jobDefinitions=[outputs["BatchJobDefinitionArn"]])
    container = definition["jobDefinitions"][0]["containerProperties"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/batchkit/research/jobs"

    # A job can be submitted to the created queue with the created definition.
    job = batch.submit_job(
        jobName="hello", jobQueue=queues["cpu"], jobDefinition=outputs["BatchJobDefinitionArn"]
    )
    assert job["jobId"]


def test_teardown_leaves_nothing_of_the_cluster(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    stacks.create(config, offline_parameters())
    fill(BUCKET, "batchkit/research/", "batchkit/research")
    before = remaining("research", BUCKET)
    assert before["objects"] == 7
    assert before["images"] == 3
    assert before["roles"] >= 3
    assert before["log_groups"] == 2  # job logs and job events

    batch = boto3.client("batch", region_name=REGION)
    outputs = stacks.status("research").outputs
    # A job with --image registers a definition of its own, tagged with the cluster's name.
    provider = open_provider("research", region=REGION)
    job = provider.submit(SubmitRequest(name="img", command=("true",), image="busybox:1.36"))
    registered = job.job_definition.rsplit("/", 1)[-1].split(":")[0]
    role = outputs["JobRoleArn"]
    for name, tags, job_role in (
        ("batchkit-0123456789ab", {}, role),  # registered before definitions were tagged
        ("batchkit-abcdefabcdef", {"batchkit:cluster": "another"}, role),  # another cluster's
        ("batchkit-other", {}, "x"),  # not this cluster's role
    ):
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={"image": "x", "vcpus": 1, "memory": 128, "jobRoleArn": job_role},
            **({"tags": tags} if tags else {}),
        )

    progress: list[str] = []
    outcome = stacks.delete("research", on_progress=lambda p: progress.append(p.text))
    assert outcome.status == "DELETE_COMPLETE"
    assert outcome.leftovers == []
    assert remaining("research", BUCKET) == {
        "buckets": 0,
        "objects": 0,
        "repositories": 0,
        "images": 0,
        "roles": 0,
        "log_groups": 0,
    }
    assert "emptied s3://batchkit-research-123456789012-us-east-1/batchkit/research/ " in (
        "\n".join(progress)
    )
    assert any("emptied ECR repository batchkit/research (3 images)" in p for p in progress)
    assert "deregistered 2 job definitions batchkit registered" in progress
    active = {
        d["jobDefinitionName"]
        for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    }
    assert registered.startswith("batchkit-")
    assert registered not in active
    assert "batchkit-0123456789ab" not in active
    assert {"batchkit-abcdefabcdef", "batchkit-other"} <= active


def _deny(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """A botocore `before-call` hook: the call is answered AccessDenied without being sent."""
    error = {"Code": "AccessDenied", "Message": "not allowed"}
    parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
    return AWSResponse("https://injected", 403, {}, None), parsed  # type: ignore[arg-type]


def test_a_failure_while_emptying_the_bucket_is_one_error_and_the_stack_stays(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    stacks.create(config, offline_parameters())
    fill(BUCKET, "batchkit/research/", "batchkit/research")

    denied = ClusterStacks(
        AwsSession(region=REGION, hooks=[("before-call.s3.DeleteObjects", _deny)]),
        sleep=lambda _: None,
    )
    with pytest.raises(AwsError) as info:
        denied.delete("research")
    assert "s3://batchkit-research-123456789012-us-east-1/batchkit/research/" in str(info.value)
    assert info.value.hint and "batchkit cluster delete research` again" in info.value.hint
    assert stacks.status("research").status == "CREATE_COMPLETE"
    assert remaining("research", BUCKET)["objects"] == 7


def test_a_leftover_check_these_credentials_cannot_make_is_reported_not_fatal(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    stacks.create(config, offline_parameters())
    denied = ClusterStacks(
        AwsSession(
            region=REGION,
            hooks=[("before-call.iam.ListRoles", _deny), *MOTO_AS_AWS],
        ),
        sleep=lambda _: None,
    )
    outcome = denied.delete("research")
    assert outcome.status == "DELETE_COMPLETE"
    [unchecked] = outcome.leftovers
    assert unchecked.startswith("IAM roles under /batchkit/research/ (not checked: ")


def test_create_refuses_an_existing_cluster(config: ClusterConfig, stacks: ClusterStacks) -> None:
    parameters = offline_parameters()
    stacks.create(config, parameters)
    with pytest.raises(ConflictError, match="already exists"):
        stacks.create(config, parameters)


def test_unknown_parameter_overrides_are_refused(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    with pytest.raises(ConflictError, match="EnableGpus"):
        stacks.create(config, {"EnableGpus": "true"})


def test_deleting_a_cluster_that_does_not_exist(stacks: ClusterStacks) -> None:
    with pytest.raises(ClusterNotFoundError):
        stacks.delete("nothing-here")


def test_list_shows_only_batchkit_stacks(config: ClusterConfig, stacks: ClusterStacks) -> None:
    stacks.create(config, offline_parameters())
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="other",
        TemplateBody=json.dumps(
            {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
        ),
    )
    assert [c.name for c in stacks.list()] == ["research"]
    status = stacks.status("research")
    assert status.status == "CREATE_COMPLETE"
    assert status.version == __version__
    assert list(status.queues) == ["cpu", "gpu", "fargate"]


class FakeBatch:
    """Batch with one job running in the default queue; records terminations."""

    def __init__(self) -> None:
        self.terminated: list[str] = []

    def paginate(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        if operation == "describe_job_definitions":
            yield {"jobDefinitions": []}
            return
        assert operation == "list_jobs"
        running = params["jobStatus"] == "RUNNING" and params["jobQueue"].endswith("research_cpu")
        yield {"jobSummaryList": [{"jobId": "job-1"}] if running else []}

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        assert operation == "terminate_job"
        self.terminated.append(params["jobId"])
        return {}


def test_delete_refuses_while_jobs_run_and_force_terminates_them(config: ClusterConfig) -> None:
    batch = FakeBatch()
    stacks = ClusterStacks(AwsSession(region=REGION), sleep=lambda _: None, batch=batch)  # type: ignore[arg-type]
    stacks.create(config, offline_parameters())
    with pytest.raises(ConflictError, match="1 active jobs") as refused:
        stacks.delete("research")
    assert refused.value.hint and "--force" in refused.value.hint
    assert stacks.status("research").status == "CREATE_COMPLETE"
    assert batch.terminated == []
    outcome = stacks.delete("research", force=True)
    assert batch.terminated == ["job-1"]
    assert outcome.status == "DELETE_COMPLETE"


class FailingGateway(StackGateway):
    """A CloudFormation whose create rolls back because one resource failed."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def describe(self, name: str) -> ClusterStatus | None:
        return None

    def create_stack(self, name: str, body: str, parameters: Any, tags: Any) -> None:
        self.created.append(name)

    def watch(
        self, name: str, *, since: float = 0.0, on_poll: Callable[[], None] | None = None
    ) -> Iterator[StackEvent | ClusterStatus]:
        yield StackEvent(1.0, "Bucket", "AWS::S3::Bucket", "CREATE_COMPLETE")
        yield StackEvent(
            2.0,
            "ComputeEnvironmentCpuSpot",
            "AWS::Batch::ComputeEnvironment",
            "CREATE_FAILED",
            "Subnet subnet-1 does not exist",
        )
        yield StackEvent(
            3.0,
            "JobQueueCpu",
            "AWS::Batch::JobQueue",
            "CREATE_FAILED",
            "Resource creation cancelled",
        )
        yield ClusterStatus(name, "ROLLBACK_COMPLETE", "", REGION)


def test_a_failed_create_names_the_failing_resources_and_the_cleanup(
    config: ClusterConfig,
) -> None:
    gateway = FailingGateway()
    stacks = ClusterStacks(AwsSession(region=REGION), gateway=gateway)
    seen: list[str] = []
    with pytest.raises(StackOperationError) as failed:
        stacks.create(config, on_progress=lambda p: seen.append(p.text))
    message = str(failed.value)
    assert "stack research ended in ROLLBACK_COMPLETE" in message
    assert "ComputeEnvironmentCpuSpot (AWS::Batch::ComputeEnvironment): Subnet subnet-1" in message
    assert "JobQueueCpu" not in message  # cancelled, not a cause
    assert failed.value.hint and "batchkit cluster delete research" in failed.value.hint
    assert "CREATE_FAILED" in seen


def test_a_cluster_that_keeps_its_data_keeps_it(stacks: ClusterStacks) -> None:
    text = example_config_text(moto_network())
    config = parse_cluster_config(
        text.replace("keep_data_on_delete: false", "keep_data_on_delete: true")
    )
    parameters = offline_parameters()
    del parameters["CleanupOnDelete"]  # no cleanup resources in such a stack
    stacks.create(config, parameters)
    fill(BUCKET, "batchkit/research/", "batchkit/research")
    progress: list[str] = []
    outcome = stacks.delete("research", on_progress=lambda p: progress.append(p.text))
    assert outcome.status == "DELETE_COMPLETE"
    assert not [p for p in progress if p.startswith("emptied")]
    left = remaining("research", BUCKET)
    # The job logs and the job events stay.
    assert (left["objects"], left["images"], left["log_groups"]) == (7, 3, 2)
    assert left["roles"] == 0


class PagedEvents:
    """DescribeStacks/DescribeStackEvents as CloudFormation answers them: events newest first,
    two per page; records each page it serves."""

    def __init__(self, timestamps: list[float], final: str = "UPDATE_COMPLETE") -> None:
        self.events = [
            {
                "Timestamp": datetime.fromtimestamp(stamp, tz=UTC),
                "LogicalResourceId": f"R{stamp:g}",
                "ResourceType": "AWS::S3::Bucket",
                "ResourceStatus": "UPDATE_COMPLETE",
            }
            for stamp in sorted(timestamps, reverse=True)
        ]
        self.final = final
        self.pages_read = 0

    def call(self, operation: str, /, *, resource: str | None = None, **params: Any) -> Any:
        if operation == "describe_stacks":
            detail = {"StackName": "research", "StackStatus": self.final}
            return {"Stacks": [detail]}
        assert operation == "describe_stack_events"
        self.pages_read += 1
        start = int(params.get("NextToken", 0))
        more = start + 2 < len(self.events)
        return {
            "StackEvents": self.events[start : start + 2],
            **({"NextToken": str(start + 2)} if more else {}),
        }

    def paginate(self, operation: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.call(operation, **({"NextToken": token} if token else {}))
            yield page
            token = page.get("NextToken")
            if not token:
                return


def test_a_wait_reads_only_the_events_after_its_start_not_the_stack_history() -> None:
    api = PagedEvents([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    gateway = StackGateway(api, sleep=lambda _: None)  # type: ignore[arg-type]

    assert gateway.latest_event_time("research") == 10.0
    assert api.pages_read == 1

    api.pages_read = 0
    seen = list(gateway.watch("research", since=7.0))
    assert [e.timestamp for e in seen if isinstance(e, StackEvent)] == [8.0, 9.0, 10.0]
    assert api.pages_read == 2  # of 5: the second page reaches an event before the wait
    assert len(gateway.events("research")) == 10


def test_a_template_too_large_inline_is_created_in_two_steps_from_the_bucket(aws: None) -> None:
    """The example without `image:` carries the default image's build: more than the 51,200
    bytes CloudFormation takes inline. The stack starts with its bucket, then reads the whole
    template from it. (moto cannot delete such a stack: it registers exports only at create.)
    The newest event before the UpdateStack is read once: the update's own lookup and the wait
    after it start from the same DescribeStackEvents (they each read it before)."""
    config = parse_cluster_config(example_config_text(moto_network(), image=None))
    assert len(template_body(config).encode()) > TEMPLATE_BODY_LIMIT
    session = AwsSession(region=REGION)
    calls = cloudformation_calls(session)
    stacks = ClusterStacks(session, sleep=lambda _: None)
    progress: list[Progress] = []
    outcome = stacks.create(config, offline_parameters(), on_progress=progress.append)
    assert outcome.status == "CREATE_COMPLETE"
    between = calls[calls.index("CreateStack") + 1 : calls.index("UpdateStack")]
    # the wait for the create (moto is done at once), then the newest event before the update
    assert between == ["DescribeStacks", "DescribeStackEvents", "DescribeStackEvents"]
    assert any("more than CloudFormation takes inline" in p.text for p in progress)
    assert outcome.outputs["BatchkitVersion"] == __version__
    assert json.loads(outcome.outputs["JobQueues"]).keys() == {"cpu", "gpu", "fargate"}
    assert stacks.status("research").status == "UPDATE_COMPLETE"
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="batchkit/research/templates/")
    [template] = listed["Contents"]
    body = s3.get_object(Bucket=BUCKET, Key=template["Key"])["Body"].read().decode()
    assert body == template_body(config)


def cloudformation_calls(session: AwsSession) -> list[str]:
    """The names of the CloudFormation calls the session makes from now on, in order."""
    calls: list[str] = []
    session.add_hook("before-call.cloudformation", lambda **kw: calls.append(kw["model"].name))
    return calls


def test_the_adoption_update_reads_the_newest_event_once(
    config: ClusterConfig, stacks: ClusterStacks
) -> None:
    """Step 1 of 2 of an update of a stack made before the update policy: one
    DescribeStackEvents between discarding the change set and the UpdateStack, whose result
    is both the lookup's and the wait's start (each read its own before)."""
    stacks.create(config, offline_parameters())
    cfn = boto3.client("cloudformation", region_name=REGION)
    body = cfn.get_template(StackName="research")["TemplateBody"]
    old = json.loads(body) if isinstance(body, str) else dict(body)
    for resource in old["Resources"].values():
        if resource["Type"] == "AWS::Batch::ComputeEnvironment":
            resource["Properties"].pop("ReplaceComputeEnvironment")
            resource["Properties"].pop("UpdatePolicy", None)
    cfn.update_stack(
        StackName="research",
        TemplateBody=json.dumps(old),
        Parameters=_stack(cfn)["Parameters"],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    session = AwsSession(region=REGION, hooks=MOTO_AS_AWS)
    calls = cloudformation_calls(session)
    updating = ClusterStacks(session, sleep=lambda _: None)
    changed = example_config_text(moto_network()).replace("[c6i, m6i, r6i]", "[c6i, m6i]", 1)
    plan = updating.plan_update(parse_cluster_config(changed))
    assert plan.adoption_url is not None
    progress: list[Progress] = []
    outcome = updating.apply_update(plan, on_progress=progress.append)
    assert outcome.status == "UPDATE_COMPLETE"
    assert any("step 2 of 2" in p.text for p in progress)
    start = calls.index("DeleteChangeSet")
    assert calls[start : calls.index("UpdateStack")] == ["DeleteChangeSet", "DescribeStackEvents"]
    # the waits start at the newest event before each step: the adoption's and the change's
    # updates are reported, not the older one that made the stack look old
    events = [p.event for p in progress if p.event is not None]
    assert [e.status for e in events if e.logical_id == "research"] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE",
    ] * 2


def test_a_job_to_a_fargate_queue_runs_with_the_fargate_definition_and_network(
    config: ClusterConfig, stacks: ClusterStacks, aws_rules: RuleChecker
) -> None:
    """moto's CloudFormation registers a JobDefinition without its PlatformCapabilities (it
    passes None), so that one is checked in the template (tests/infra/test_template.py); here:
    the job is described with the Fargate definition and its network settings, and the rules
    check held its SubmitJob to Fargate's rules (it learnt the definition from the stack)."""
    stacks.create(config, offline_parameters())
    provider = open_provider("research", region=REGION)
    batch = boto3.client("batch", region_name=REGION)
    fargate = Resources(vcpus=1, memory=2048)
    for image in (None, "busybox:1.36"):  # the default definition, and an --image variant
        job = provider.submit(
            SubmitRequest(
                name="small", command=("true",), queue="fargate", resources=fargate, image=image
            )
        )
        [described] = batch.describe_jobs(jobs=[job.job_id])["jobs"]
        [definition] = batch.describe_job_definitions(jobDefinitions=[described["jobDefinition"]])[
            "jobDefinitions"
        ]
        assert aws_rules.is_fargate(described["jobDefinition"])
        container = definition["containerProperties"]
        network = json.dumps(container["networkConfiguration"]).lower()
        assert network == '{"assignpublicip": "disabled"}'
        assert "LATEST" in json.dumps(container["fargatePlatformConfiguration"])
        assert container["executionRoleArn"].startswith("arn:aws:iam::123456789012:role/")
        if image is None:
            assert definition["jobDefinitionName"] == "research_fargate"
        else:
            assert container["image"] == image
    cpu = provider.submit(SubmitRequest(name="big", command=("true",), queue="cpu"))
    [described] = batch.describe_jobs(jobs=[cpu.job_id])["jobs"]
    assert "research_container" in described["jobDefinition"]
    assert not aws_rules.is_fargate(described["jobDefinition"])


@pytest.mark.parametrize("fault", ["acted_error", "server_error"])
@pytest.mark.parametrize("operation", ["CreateChangeSet", "ExecuteChangeSet"])
def test_an_update_whose_change_set_call_fails_with_a_5xx_runs_once(
    config: ClusterConfig, stacks: ClusterStacks, operation: str, fault: str
) -> None:
    """A 500 after CloudFormation made the change set or started the update (acted_error) is
    looked up, not resent; a 500 before it did anything (server_error) is resent with the same
    token. Either way one change set is made and the update runs once."""
    stacks.create(config, offline_parameters())
    faults = Faults(**{fault: 1.0}, operation=operation, limit=1)  # type: ignore[arg-type]
    session = AwsSession(region=REGION, hooks=[*faults.hooks("cloudformation"), *MOTO_AS_AWS])
    faulty = ClusterStacks(session, sleep=lambda _: None)
    changed = parse_cluster_config(
        example_config_text(moto_network()).replace(
            "queues:\n",
            "queues:\n  - name: extra\n    compute_environments:\n"
            "      - {name: od, type: EC2, max_vcpus: 8}\n",
            1,
        )
    )
    cfn = boto3.client("cloudformation", region_name=REGION)
    before = len(cfn.describe_stack_events(StackName="research")["StackEvents"])
    plan = faulty.plan_update(changed)
    [change_set] = cfn.list_change_sets(StackName="research")["Summaries"]
    assert change_set["ChangeSetId"] == plan.change_set_id
    outcome = faulty.apply_update(plan)
    assert outcome.status == "UPDATE_COMPLETE"
    assert faults.injected[fault] == 1
    acted = fault == "acted_error"
    assert faults.sent[operation] == 1  # a failure before the call is never sent
    assert faults.total(operation) == (1 if acted else 2)
    events = cfn.describe_stack_events(StackName="research")["StackEvents"]
    updates = [
        e
        for e in events[: len(events) - before]
        if e["LogicalResourceId"] == "research" and e["ResourceStatus"] == "UPDATE_IN_PROGRESS"
    ]
    assert len(updates) == 1
    assert "JobQueueExtra" in json.dumps(cfn.get_template(StackName="research")["TemplateBody"])


class LaggingChangeSets:
    """CloudFormation through a flaky network: the first answer to each write is lost after
    CloudFormation acted (AmbiguousCallError), what a write did shows in DescribeChangeSet from
    the second read after it, and a resend is refused as AWS refuses it (AlreadyExistsException,
    InvalidChangeSetStatus). Records the tokens each write carried."""

    def __init__(self) -> None:
        self.tokens: dict[str, list[str]] = {}
        self.reads = 0  # since the last write's first try

    def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation == "describe_change_set":
            self.reads += 1
            seen = self.reads > 1
            executing = "execute_change_set" in self.tokens
            if not executing and not seen:
                raise AwsServiceError("x", code="ChangeSetNotFound", service="c", operation="x")
            state = "EXECUTE_IN_PROGRESS" if executing and seen else "AVAILABLE"
            return {
                "ChangeSetId": "arn:cs/1",
                "Status": "CREATE_COMPLETE",
                "ExecutionStatus": state,
            }
        sent = self.tokens.setdefault(operation, [])
        sent.append(params.get("ClientToken") or params["ClientRequestToken"])
        if len(sent) == 1:
            self.reads = 0
            raise AmbiguousCallError("injected: a 500 after the work")
        code = (
            "AlreadyExistsException"
            if operation == "create_change_set"
            else "InvalidChangeSetStatus"
        )
        raise AwsServiceError("refused", code=code, service="c", operation="x")


def test_a_resend_refused_after_a_lost_answer_is_looked_up_again() -> None:
    api = LaggingChangeSets()
    gateway = StackGateway(api, sleep=lambda _: None)  # type: ignore[arg-type]
    change_set_id, _ = gateway.create_change_set("research", "{}", {}, {})
    assert change_set_id == "arn:cs/1"
    [token, again] = api.tokens["create_change_set"]
    assert token == again and token.startswith("batchkit-")  # the same token, a letter first
    gateway.execute_change_set("research", change_set_id)
    [token, again] = api.tokens["execute_change_set"]
    assert token == again


class LaggingStacks:
    """CreateStack, then UpdateStack, through a flaky network: the first answer to each is lost
    after CloudFormation acted, the lookup sees nothing on its first read, and the resend is
    refused as AWS refuses it (AlreadyExistsException; ValidationError while updating)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.reads = 0  # since the last write's first try

    def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation in ("describe_stacks", "describe_stack_events"):
            self.reads += 1
            if operation == "describe_stacks":
                if self.reads <= 1:
                    raise ClusterNotFoundError("research")
                return {"Stacks": [{"StackName": "research", "StackStatus": "CREATE_IN_PROGRESS"}]}
            if self.reads <= 1:  # before the send, and the lagging first look after it
                return {"StackEvents": []}
            started = {"LogicalResourceId": "research", "ResourceStatus": "UPDATE_IN_PROGRESS"}
            return {"StackEvents": [{**started, "Timestamp": datetime.now(UTC)}]}
        self.sent.append(operation)
        if self.sent.count(operation) == 1:
            self.reads = 0
            raise AmbiguousCallError("injected: a 500 after the work")
        code = "AlreadyExistsException" if operation == "create_stack" else "ValidationError"
        raise AwsServiceError("refused", code=code, service="c", operation="x")

    def paginate(self, operation: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        yield self.call(operation, **params)


def test_a_create_or_update_refused_after_a_lost_answer_is_looked_up_again() -> None:
    api = LaggingStacks()
    gateway = StackGateway(api, sleep=lambda _: None)  # type: ignore[arg-type]
    gateway.create_stack("research", "{}", {}, {})
    api.reads = 0
    gateway.update_stack("research", "https://t", {}, {})

    assert api.sent == ["create_stack", "create_stack", "update_stack", "update_stack"]


class UpdateStartedBy:
    """UpdateStack whose first answer is lost before CloudFormation saw it; the stack's events
    then show an update that started after the send, with `started_by` as its token ("ours":
    the request's, "": none, as moto records, else another operation's), and a resend is
    refused while that update runs (ValidationError, as AWS refuses it)."""

    BEFORE = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    AFTER = datetime(2026, 12, 5, 14, 1, tzinfo=UTC)

    def __init__(self, started_by: str) -> None:
        self.started_by = started_by
        self.tokens: list[str] = []  # of each UpdateStack sent

    def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation == "describe_stack_events":
            done = {"LogicalResourceId": "research", "ResourceStatus": "UPDATE_COMPLETE"}
            events = [{**done, "Timestamp": self.BEFORE, "ClientRequestToken": "earlier"}]
            if self.tokens:  # newest first
                token = self.tokens[0] if self.started_by == "ours" else self.started_by
                started = {"LogicalResourceId": "research", "ResourceStatus": "UPDATE_IN_PROGRESS"}
                events.insert(
                    0,
                    {**started, "Timestamp": self.AFTER}
                    | ({"ClientRequestToken": token} if token else {}),
                )
            return {"StackEvents": events}
        assert operation == "update_stack"
        self.tokens.append(params["ClientRequestToken"])
        if len(self.tokens) == 1:
            raise AmbiguousCallError("injected: the answer is lost")
        raise AwsServiceError(
            "Stack:research is in UPDATE_IN_PROGRESS state and can not be updated.",
            code="ValidationError",
            service="cloudformation",
            operation="UpdateStack",
        )

    def paginate(self, operation: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        yield self.call(operation, **params)


@pytest.mark.parametrize("started_by", ["ours", ""])
def test_an_update_whose_answer_is_lost_is_found_by_its_token_or_without_one_its_time(
    started_by: str,
) -> None:
    api = UpdateStartedBy(started_by)
    gateway = StackGateway(api, sleep=lambda _: None)  # type: ignore[arg-type]
    since = gateway.update_stack("research", "https://t", {}, {})
    assert since == UpdateStartedBy.BEFORE.timestamp()
    assert len(api.tokens) == 1  # found, not resent
    if started_by == "ours":
        [event, _] = gateway.events("research")[::-1]
        assert event.token == api.tokens[0]  # the token is recorded


def test_an_update_of_another_token_after_the_send_is_not_taken_for_ours() -> None:
    """Someone else's update (here the console's) started after the request whose answer was
    lost: it is not this request's doing, so the request is resent with its token; the resend
    is refused while that update runs, and the refusal stands. The old lookup took any
    UPDATE_IN_PROGRESS after the send for this request's and reported the update done."""
    api = UpdateStartedBy("Console-UpdateStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002")
    gateway = StackGateway(api, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(AwsServiceError) as refused:
        gateway.update_stack("research", "https://t", {}, {})
    assert refused.value.code == "ValidationError"
    [token, again] = api.tokens
    assert token == again


@pytest.fixture
def sent_jobs() -> Iterator[list[dict[str, Any]]]:
    """The parameters of every SubmitJob sent by a session made during the test."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    undo = install_hooks([("provide-client-params.batch.SubmitJob", record)])
    try:
        yield sent
    finally:
        undo()


def _sizes(params: dict[str, Any]) -> tuple[str, str, str]:
    """(job definition name, vCPUs, MiB) of a SubmitJob."""
    wanted = {r["type"]: r["value"] for r in params["containerOverrides"]["resourceRequirements"]}
    return params["jobDefinition"].split("/")[-1].split(":")[0], wanted["VCPU"], wanted["MEMORY"]


def _double(x: int) -> int:
    return 2 * x


def test_jobs_without_memory_get_the_smallest_fargate_size_and_ec2_keeps_128(
    config: ClusterConfig, stacks: ClusterStacks, sent_jobs: list[dict[str, Any]]
) -> None:
    """Fargate has no 128 MiB (sub's default) nor 1024 MiB with 1 vCPU (a function's): a job that
    does not ask for memory gets the least Fargate offers with its vCPUs, at least the default."""
    stacks.create(config, offline_parameters())
    for flags in ([], ["-p", "0.5"], ["-p", "0.25"]):
        result = CliRunner().invoke(app, ["sub", "-c", "research", "-q", "fargate", *flags, "true"])
        assert result.exit_code == 0, result.output
    cluster = batchkit.connect("research", region=REGION)
    cluster.submit(_double, 2, queue="fargate")
    cluster.map(_double, [1, 2, 3], queue="fargate", vcpus=0.25)
    assert CliRunner().invoke(app, ["sub", "-c", "research", "-q", "cpu", "true"]).exit_code == 0
    assert [_sizes(p) for p in sent_jobs] == [
        ("research_fargate", "1", "2048"),
        ("research_fargate", "0.5", "1024"),
        ("research_fargate", "0.25", "512"),
        ("research_fargate", "1", "2048"),  # a function job: 1024 MiB is no 1-vCPU size
        ("research_fargate", "0.25", "1024"),  # the function default is a 0.25-vCPU size
        ("research_container", "1", "128"),  # EC2 keeps awsbsub's default
    ]
    assert sent_jobs[-2]["arrayProperties"] == {"size": 3}
    refused = CliRunner().invoke(app, ["sub", "-c", "research", "-q", "fargate", "-m", "128", "x"])
    assert refused.exit_code == 2 and "use -m with one of: 2048, 3072" in refused.stderr
    with pytest.raises(UsageError, match="1024 MiB with 1 vCPU"):
        cluster.submit(_double, 2, queue="fargate", memory=1024)
    assert len(sent_jobs) == 6


@pytest.mark.parametrize("fault", ["acted_error", "server_error"])
def test_an_update_stack_after_an_earlier_update_is_sent_exactly_once(
    config: ClusterConfig, stacks: ClusterStacks, fault: str
) -> None:
    """UpdateStack on a stack an earlier update left UPDATE_COMPLETE (the update policy's
    adoption, step 1 of 2, on an old cluster). A 500 after CloudFormation acted is looked up,
    not resent; a 500 before it did anything is resent with the same token. The old lookup took
    the earlier update's UPDATE_COMPLETE for this request's doing, and the update never ran."""
    stacks.create(config, offline_parameters())
    cfn = boto3.client("cloudformation", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="templates")
    body = cfn.get_template(StackName="research")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else dict(body)
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in _stack(cfn)["Parameters"]}

    def update(stack_gateway: Any, round_: str) -> None:
        # a change CloudFormation (and moto) sees: the template's Metadata
        text = json.dumps({**template, "Metadata": {"Round": round_}})
        s3.put_object(Bucket="templates", Key=f"{round_}.json", Body=text.encode())
        url = f"https://templates.s3.amazonaws.com/{round_}.json"
        stack_gateway.update_stack("research", url, parameters, {})

    update(stacks.stacks, "1")
    assert _stack(cfn)["StackStatus"] == "UPDATE_COMPLETE"
    faults = Faults(**{fault: 1.0}, operation="UpdateStack", limit=1)  # type: ignore[arg-type]
    session = AwsSession(region=REGION, hooks=[*faults.hooks("cloudformation"), *MOTO_AS_AWS])
    update(ClusterStacks(session, sleep=lambda _: None).stacks, "2")

    assert faults.injected[fault] == 1
    assert faults.total("UpdateStack") == (1 if fault == "acted_error" else 2)
    current = cfn.get_template(StackName="research")["TemplateBody"]
    assert '"Round": "2"' in (current if isinstance(current, str) else json.dumps(current))


def _stack(cfn: Any) -> dict[str, Any]:
    [stack] = cfn.describe_stacks(StackName="research")["Stacks"]
    return dict(stack)

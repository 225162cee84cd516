"""The AWS Batch gateway: jobs, queues, compute environments and job definitions as models.

It chunks and paginates for its callers: DescribeJobs takes at most 100 ids per call (the chunks
run in a small thread pool, within the process-wide rate budget), ListJobs is followed through
`nextToken` with the largest page AWS allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from msgspec import Struct

from batchkit.clustermodel import Queue
from batchkit.models import Attempt, Dependency, DependencyType, Job, JobId, JobStatus, Resources
from batchkit.providers.aws.session import Api

if TYPE_CHECKING:
    from batchkit.computemodel import ComputeEnvironment  # imported when one is read (start-up)

DESCRIBE_CHUNK = 100
"""DescribeJobs accepts at most 100 job ids per call."""

LIST_PAGE = 1000
"""ListJobs' largest page (the default is 100)."""

S3_URL_VARIABLE = "PCLUSTER_JOB_S3_URL"

T = TypeVar("T")
R = TypeVar("R")


def in_parallel(call: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`call` on every item, results in the items' order: in a pool of at most `workers`
    threads, or one after the other in this thread when there is one item or one worker."""
    if len(items) <= 1 or workers <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(call, items))


class LogTarget(Struct, frozen=True):
    """Where jobs of a cluster log by default and how to link to a stream in the console."""

    group: str
    region: str
    console_domain: str

    def console_url(self, group: str, stream: str) -> str:
        # The same fragment awsbstat prints, on the partition's own console host.
        return (
            f"{self.console_domain}/cloudwatch/home?region={self.region}"
            f"#logEventViewer:group={group};stream={stream}"
        )


def _resources(container: Mapping[str, Any]) -> Resources:
    vcpus: float = float(container.get("vcpus") or 1)
    memory = int(container.get("memory") or 0)
    gpus = 0
    for requirement in container.get("resourceRequirements") or ():
        kind, value = requirement.get("type"), requirement.get("value")
        if kind == "VCPU":
            vcpus = float(value)
        elif kind == "MEMORY":
            memory = int(value)
        elif kind == "GPU":
            gpus = int(value)
    if vcpus.is_integer():
        vcpus = int(vcpus)
    return Resources(vcpus=vcpus, memory=memory or 128, gpus=gpus)


def _environment(container: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(item["name"]): str(item.get("value", ""))
        for item in container.get("environment") or ()
        if "name" in item
    }


def _log_group(container: Mapping[str, Any], default: str) -> str:
    config = container.get("logConfiguration") or {}
    if config.get("logDriver") == "awslogs":
        group = (config.get("options") or {}).get("awslogs-group")
        if group:
            return str(group)
    return default


def _dependencies(raw: Iterable[Mapping[str, Any]]) -> list[Dependency]:
    deps: list[Dependency] = []
    for item in raw:
        kind = item.get("type")
        deps.append(
            Dependency(item.get("jobId"), DependencyType(kind) if kind else None),
        )
    return deps


def _attempts(raw: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    out: list[Attempt] = []
    for item in raw:
        container = item.get("container") or {}
        out.append(
            Attempt(
                started_at=item.get("startedAt"),
                stopped_at=item.get("stoppedAt"),
                exit_code=container.get("exitCode"),
                reason=container.get("reason"),
                log_stream=container.get("logStreamName"),
                status_reason=item.get("statusReason"),
            )
        )
    return out


def _queue_name(arn: str) -> str:
    return arn.split("/", 1)[1] if "/" in arn else arn


def job_from_detail(detail: Mapping[str, Any], logs: LogTarget) -> Job:
    """A `Job` from one DescribeJobs item, for every kind (single, array, MNP, child, node)."""
    job_id = str(detail["jobId"])
    ident = JobId.parse(job_id)
    container: Mapping[str, Any] = detail.get("container") or {}
    node_properties: Mapping[str, Any] = detail.get("nodeProperties") or {}
    ranges = node_properties.get("nodeRangeProperties") or [{}]
    spec: Mapping[str, Any] = container
    if "command" not in container and "image" not in container:
        # An MNP parent has no container of its own: its nodes' spec stands for it.
        spec = {**(ranges[0].get("container") or {}), **container}
    array = detail.get("arrayProperties") or {}
    array_size = array.get("size") if not ident.is_child else None
    nodes = int(node_properties.get("numNodes", 1)) if not ident.is_child else 1
    group = _log_group(spec, logs.group)
    stream = container.get("logStreamName")
    is_parent = array_size is not None or nodes > 1
    retry = detail.get("retryStrategy") or {}
    timeout = (detail.get("timeout") or {}).get("attemptDurationSeconds")
    return Job(
        job_id=job_id,
        name=str(detail.get("jobName", "")),
        status=JobStatus(detail["status"]),
        queue=_queue_name(str(detail.get("jobQueue", ""))),
        job_definition=str(detail.get("jobDefinition", "")),
        created_at=detail.get("createdAt"),
        started_at=detail.get("startedAt"),
        stopped_at=detail.get("stoppedAt"),
        status_reason=detail.get("statusReason"),
        exit_code=spec.get("exitCode"),
        reason=spec.get("reason"),
        command=[str(part) for part in spec.get("command") or ()],
        resources=_resources(spec),
        image=spec.get("image"),
        array_size=int(array_size) if array_size is not None else None,
        nodes=nodes,
        main_node=int(node_properties.get("mainNode", 0)),
        depends_on=_dependencies(detail.get("dependsOn") or ()),
        attempts=_attempts(detail.get("attempts") or ()),
        retry_attempts=int(retry.get("attempts", 1)),
        timeout=int(timeout) if timeout is not None else None,
        log_stream=None if is_parent else stream,
        log_group=group,
        s3_folder_url=_environment(spec).get(S3_URL_VARIABLE),
        status_summary={str(k): int(v) for k, v in (array.get("statusSummary") or {}).items() if v},
        console_url=logs.console_url(group, stream) if stream and not is_parent else None,
    )


def job_from_summary(summary: Mapping[str, Any], queue: str, log_group: str) -> Job:
    """A `Job` from a ListJobs summary: enough for a table (no log stream, command or env)."""
    container = summary.get("container") or {}
    array = summary.get("arrayProperties") or {}
    node_properties = summary.get("nodeProperties") or {}
    return Job(
        job_id=str(summary["jobId"]),
        name=str(summary.get("jobName", "")),
        status=JobStatus(summary["status"]),
        queue=_queue_name(queue),
        job_definition=str(summary.get("jobDefinition", "")),
        created_at=summary.get("createdAt"),
        started_at=summary.get("startedAt"),
        stopped_at=summary.get("stoppedAt"),
        status_reason=summary.get("statusReason"),
        exit_code=container.get("exitCode"),
        reason=container.get("reason"),
        array_size=array.get("size"),
        nodes=int(node_properties.get("numNodes") or 1),
        log_group=log_group,
        status_summary={str(k): int(v) for k, v in (array.get("statusSummary") or {}).items() if v},
    )


def queue_from_detail(detail: Mapping[str, Any]) -> Queue:
    return Queue(
        name=str(detail["jobQueueName"]),
        arn=str(detail["jobQueueArn"]),
        priority=int(detail.get("priority", 0)),
        state=str(detail.get("state", "")),
        status=str(detail.get("status", "")),
        status_reason=detail.get("statusReason"),
        compute_environments=tuple(
            str(item["computeEnvironment"])
            for item in sorted(
                detail.get("computeEnvironmentOrder") or (), key=lambda i: i.get("order", 0)
            )
        ),
    )


def compute_environment_from_detail(detail: Mapping[str, Any]) -> ComputeEnvironment:
    """A `ComputeEnvironment` from one DescribeComputeEnvironments item."""
    from batchkit.computemodel import ComputeEnvironment

    resources: Mapping[str, Any] = detail.get("computeResources") or {}
    template = resources.get("launchTemplate") or {}
    bid = resources.get("bidPercentage")
    return ComputeEnvironment(
        name=str(detail["computeEnvironmentName"]),
        arn=str(detail.get("computeEnvironmentArn", "")),
        state=str(detail.get("state", "")),
        status=str(detail.get("status", "")),
        status_reason=detail.get("statusReason"),
        type=str(detail.get("type", "MANAGED")),
        compute_type=resources.get("type"),
        min_vcpus=int(resources.get("minvCpus") or 0),
        desired_vcpus=int(resources.get("desiredvCpus") or 0),
        max_vcpus=int(resources.get("maxvCpus") or 0),
        instance_types=tuple(str(t) for t in resources.get("instanceTypes") or ()),
        subnets=tuple(str(s) for s in resources.get("subnets") or ()),
        security_groups=tuple(str(g) for g in resources.get("securityGroupIds") or ()),
        ecs_cluster_arn=detail.get("ecsClusterArn"),
        service_role=detail.get("serviceRole"),
        instance_role=resources.get("instanceRole"),
        bid_percentage=int(bid) if bid is not None else None,
        allocation_strategy=resources.get("allocationStrategy"),
        launch_template=template.get("launchTemplateName") or template.get("launchTemplateId"),
    )


class BatchGateway:
    """AWS Batch, spoken in `batchkit.models`."""

    def __init__(self, api: Api, logs: LogTarget, *, workers: int = 8) -> None:
        self._api = api
        self._logs = logs
        self._workers = workers

    # -- jobs ----------------------------------------------------------------------------------

    def submit_job(self, params: Mapping[str, Any]) -> str:
        """SubmitJob once (never resent blindly: a 5xx or a lost answer raises
        AmbiguousCallError, and the caller looks the job up by its client token)."""
        response = self._api.call(
            "submit_job", resource=f"job {params.get('jobName')}", idempotent=False, **params
        )
        return str(response["jobId"])

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """Any number of jobs, 100 ids a call, chunks in parallel. Unknown ids are left out."""
        unique = list(dict.fromkeys(job_ids))
        chunks = [unique[i : i + DESCRIBE_CHUNK] for i in range(0, len(unique), DESCRIBE_CHUNK)]
        if not chunks:
            return []
        pages = in_parallel(self._describe_chunk, chunks, self._workers)
        return [job for page in pages for job in page]

    def _describe_chunk(self, ids: list[str]) -> list[Job]:
        response = self._api.call("describe_jobs", jobs=ids)
        return [job_from_detail(item, self._logs) for item in response.get("jobs") or ()]

    def list_jobs(self, queue: str, status: JobStatus) -> list[Job]:
        """The jobs of a queue in one status, as ListJobs summarizes them."""
        return self._list(queue, jobQueue=queue, jobStatus=status.value)

    def list_array_children(self, parent: str, status: JobStatus, queue: str = "") -> list[Job]:
        return self._list(queue, arrayJobId=parent, jobStatus=status.value)

    def list_node_jobs(self, parent: str, status: JobStatus, queue: str = "") -> list[Job]:
        return self._list(queue, multiNodeJobId=parent, jobStatus=status.value)

    def find_by_name(self, queue: str, name: str, *, created_after: int = 0) -> list[str]:
        """Ids of the top-level jobs of a queue with this name, in any status, created after
        `created_after` (epoch ms), through ListJobs' JOB_NAME filter."""
        ids: list[str] = []
        for page in self._api.paginate(
            "list_jobs",
            jobQueue=queue,
            filters=[{"name": "JOB_NAME", "values": [name]}],
            maxResults=LIST_PAGE,
        ):
            ids.extend(
                str(s["jobId"])
                for s in page.get("jobSummaryList") or ()
                if int(s.get("createdAt") or created_after) >= created_after
            )
        return [i for i in ids if not JobId.parse(i).is_child]

    def job_tags(self, job_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """The tags of these jobs (from DescribeJobs), by job id."""
        tags: dict[str, dict[str, str]] = {}
        for i in range(0, len(job_ids), DESCRIBE_CHUNK):
            response = self._api.call("describe_jobs", jobs=list(job_ids[i : i + DESCRIBE_CHUNK]))
            for item in response.get("jobs") or ():
                tags[str(item["jobId"])] = {
                    str(k): str(v) for k, v in (item.get("tags") or {}).items()
                }
        return tags

    def _list(self, queue: str, **params: Any) -> list[Job]:
        jobs: list[Job] = []
        for page in self._api.paginate("list_jobs", maxResults=LIST_PAGE, **params):
            jobs.extend(
                job_from_summary(item, queue, self._logs.group)
                for item in page.get("jobSummaryList") or ()
            )
        return jobs

    def terminate_job(self, job_id: str, reason: str) -> None:
        self._api.call("terminate_job", resource=f"job {job_id}", jobId=job_id, reason=reason)

    # -- queues and compute environments ---------------------------------------------------------

    def describe_job_queues(self, names: Sequence[str]) -> list[Queue]:
        queues: list[Queue] = []
        for page in self._api.paginate("describe_job_queues", jobQueues=list(names)):
            queues.extend(queue_from_detail(item) for item in page.get("jobQueues") or ())
        return queues

    def describe_compute_environments(self, names: Sequence[str]) -> list[ComputeEnvironment]:
        """These compute environments (names or ARNs; none: every one in the region)."""
        found: list[ComputeEnvironment] = []
        for page in self._api.paginate(
            "describe_compute_environments", computeEnvironments=list(names)
        ):
            found.extend(
                compute_environment_from_detail(item)
                for item in page.get("computeEnvironments") or ()
            )
        return found

    def ecs_cluster_arns(self, compute_environments: Sequence[str]) -> list[str]:
        """The ECS clusters behind these compute environments (Fargate ones have none)."""
        arns: list[str] = []
        for page in self._api.paginate(
            "describe_compute_environments", computeEnvironments=list(compute_environments)
        ):
            for item in page.get("computeEnvironments") or ():
                if item.get("ecsClusterArn"):
                    arns.append(str(item["ecsClusterArn"]))
        return arns

    # -- job definitions -------------------------------------------------------------------------

    def describe_job_definition(self, name_or_arn: str) -> dict[str, Any] | None:
        """The newest ACTIVE revision of a job definition (by name, `name:rev` or ARN)."""
        if ":" in name_or_arn:
            params: dict[str, Any] = {"jobDefinitions": [name_or_arn]}
        else:
            params = {"jobDefinitionName": name_or_arn, "status": "ACTIVE"}
        found: list[dict[str, Any]] = []
        for page in self._api.paginate("describe_job_definitions", **params):
            found.extend(
                item for item in page.get("jobDefinitions") or () if item.get("status") == "ACTIVE"
            )
        if not found:
            return None
        return max(found, key=lambda item: int(item.get("revision", 0)))

    def register_job_definition(self, payload: Mapping[str, Any]) -> str:
        """RegisterJobDefinition once: a resent one would add a revision, so a 5xx or a lost
        answer raises AmbiguousCallError for the caller to look first."""
        response = self._api.call(
            "register_job_definition",
            resource=f"job definition {payload.get('jobDefinitionName')}",
            idempotent=False,
            **payload,
        )
        return str(response["jobDefinitionArn"])

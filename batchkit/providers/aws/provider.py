"""`AwsProvider`: one cluster on AWS Batch, CloudWatch Logs and S3 (`providers.base.Provider`).

It owns no boto3 client: the gateways it is given (or builds from the session) do the calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from msgspec.structs import replace

from batchkit.clustermodel import Host, Queue
from batchkit.errors import ConflictError
from batchkit.logmodel import LogPage
from batchkit.models import JOB_IMAGE_VARIABLE, Job, JobStatus, SubmitRequest
from batchkit.providers.aws.batch import BatchGateway, LogTarget, in_parallel
from batchkit.providers.aws.children import ChildLister, ordered
from batchkit.providers.aws.discovery import ClusterInfo
from batchkit.providers.aws.doctorfacts import AwsDoctorFacts
from batchkit.providers.aws.ec2 import Ec2Gateway
from batchkit.providers.aws.ecr import EcrGateway
from batchkit.providers.aws.ecs import EcsGateway
from batchkit.providers.aws.errors import AmbiguousCallError
from batchkit.providers.aws.logs import LogsGateway
from batchkit.providers.aws.s3 import S3ObjectStore
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from batchkit.providers.aws.submitjob import (
    content_matches,
    image_job_definition,
    submit_job_params,
)
from batchkit.providers.aws.submitonce import SubmitOnce

FARGATE_CAPACITY = "FARGATE"
"""A Fargate queue in the stack's QueueCapacity output (`jobs.multinode.FARGATE`, a layer up)."""


class AwsProvider:
    """A cluster on AWS. Build it with `batchkit.providers.aws.open_provider`."""

    kind = "aws"

    def __init__(
        self,
        session: AwsSession,
        cluster: ClusterInfo,
        *,
        batch: BatchGateway | None = None,
        logs: LogsGateway | None = None,
        objects: S3ObjectStore | None = None,
        ecs: EcsGateway | None = None,
        ecr: EcrGateway | None = None,
        ec2: Ec2Gateway | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.cluster = cluster
        log_target = LogTarget(cluster.log_group, cluster.region, session.console_domain)
        self._batch = batch or BatchGateway(
            session.api("batch"), log_target, workers=session.workers
        )
        self._logs = logs or LogsGateway(session.api("logs"))
        self._objects = objects or S3ObjectStore(session.api("s3"), cluster.bucket)
        self._ecs = ecs
        self._ecr = ecr
        self._ec2 = ec2
        self._retry = retry or session.retry
        self._clock = clock
        self._children = ChildLister(self._batch, session.workers)
        self._submit_once = SubmitOnce(self._batch, self._retry, clock)
        self._definitions: dict[str, str] = {}
        self._definitions_lock = threading.Lock()

    # -- Provider surface -----------------------------------------------------------------------

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    @property
    def objects(self) -> S3ObjectStore:
        return self._objects

    @property
    def artifact_root(self) -> str:
        return self.cluster.artifact_root

    def queue_arn(self, queue: str | None) -> str:
        """A queue name (of this cluster) or ARN → its ARN; None → the default queue."""
        if not queue:
            return self.cluster.job_queue
        if queue.startswith("arn:"):
            return queue
        return self.cluster.queues.get(queue, queue)

    def queue_capacity(self, queue: str | None) -> str | None:
        """From the stack's `QueueCapacity` output; None for a stack without it."""
        return self._per_queue(self.cluster.queue_capacity or {}, queue)

    def _per_queue(self, values: Mapping[str, str], queue: str | None) -> str | None:
        """The value a stack output (queue name → value) gives `queue` (None: the default)."""
        arn = self.queue_arn(queue)
        for name, value in values.items():
            if self.cluster.queues.get(name) == arn:
                return value
        return None

    def fair_share(self, queue: str | None) -> bool | None:
        """From the stack's `SchedulingPolicies` output; None for a stack without it."""
        policies = self.cluster.scheduling_policies
        if policies is None:
            return None
        arn = self.queue_arn(queue)
        return any(self.cluster.queues.get(name) == arn for name in policies)

    def submit(self, request: SubmitRequest) -> Job:
        """Upload nothing (the caller staged the folder), submit once, idempotently."""
        queue = self.queue_arn(request.queue)
        request = replace(
            request,
            image=self.resolve_image(request.image),
            environment=with_region(request.environment, self.cluster.region),
        )
        definition = self._job_definition(request)
        if JOB_IMAGE_VARIABLE in request.environment:
            # a job that fetches its folder: its error, should the image lack an S3 client, names it
            image = request.image or self._image_of(definition)
            environment = {**request.environment, JOB_IMAGE_VARIABLE: image}
            request = replace(request, environment=environment)
        params = submit_job_params(request, queue=queue, job_definition=definition)
        job_id = self._submit_once.submit(params, request, queue)
        return Job(
            job_id=job_id,
            name=request.name,
            status=JobStatus.SUBMITTED,
            queue=queue.rsplit("/", 1)[-1],
            job_definition=definition,
            created_at=int(self._clock() * 1000),
            command=list(request.command),
            resources=request.resources,
            image=request.image,
            array_size=request.array_size if (request.array_size or 0) > 1 else None,
            nodes=request.nodes,
            depends_on=list(request.depends_on),
            retry_attempts=request.retry_attempts,
            timeout=request.timeout,
            log_group=self.cluster.log_group,
            s3_folder_url=request.environment.get("PCLUSTER_JOB_S3_URL") or request.s3_folder_url,
        )

    def resolve_image(self, image: str | None) -> str | None:
        """A short name of an image built by `batchkit image build` (`tools`, `tools:<hash>`) →
        its URI in the cluster's ECR repository, when the repository has that tag (one ECR call).
        Anything else is left as given for Batch to resolve (`python:3.12` is Docker Hub's)."""
        from batchkit.providers.images import is_full_reference, resolve_image

        uri = self.cluster.repository_uri
        if image is None or uri is None or is_full_reference(image):
            return image
        candidate = resolve_image(image, uri)
        repository = uri.split("/", 1)[1]
        tag = candidate.rsplit(":", 1)[1]
        if self._ecr is None:
            self._ecr = EcrGateway(self.session.api("ecr"))
        return candidate if self._ecr.find_image(repository, tag) is not None else image

    def _job_definition(self, request: SubmitRequest) -> str:
        multinode = request.nodes > 1
        base = self.cluster.job_definition_mnp if multinode else self.cluster.job_definition
        if multinode:  # an `efa: true` queue's nodes get the EFA device
            base = self._per_queue(self.cluster.efa_job_definitions, request.queue) or base
        elif self.queue_capacity(request.queue) == FARGATE_CAPACITY:
            base = self._per_queue(self.cluster.fargate_job_definitions, request.queue)
            if base is None:
                raise ConflictError(
                    f"cluster {self.cluster.name!r} has no Fargate job definition for queue "
                    f"{request.queue or 'the default queue'!r}",
                    hint="update the cluster (`batchkit cluster update`) with this batchkit",
                )
        if multinode and not base:
            raise ConflictError(
                f"cluster {self.cluster.name!r} has no multi-node job definition",
                hint="enable multi-node jobs in the cluster config and update the cluster, or "
                "submit without -n",
            )
        assert base is not None
        if not request.image:
            return base
        key = f"{base}|{request.image}"
        with self._definitions_lock:
            cached = self._definitions.get(key)
        if cached:
            return cached
        arn = self._image_definition(base, request.image)
        with self._definitions_lock:
            self._definitions[key] = arn
        return arn

    def _image_of(self, definition: str) -> str:
        """The image of a job definition (described once per provider)."""
        key = f"image-of|{definition}"
        with self._definitions_lock:
            cached = self._definitions.get(key)
        if cached is None:
            described = self._batch.describe_job_definition(definition) or {}
            container = described.get("containerProperties") or {}
            ranges = (described.get("nodeProperties") or {}).get("nodeRangeProperties") or [{}]
            cached = str(
                container.get("image") or (ranges[0].get("container") or {}).get("image") or "?"
            )
            with self._definitions_lock:
                self._definitions[key] = cached
        return cached

    def _image_definition(self, base_arn: str, image: str) -> str:
        """The `batchkit-<hash12>` definition for the base definition with another image:
        described first and reused when ACTIVE, registered otherwise."""
        base = self._batch.describe_job_definition(base_arn)
        if base is None:
            raise ConflictError(
                f"the job definition {base_arn} of cluster {self.cluster.name!r} is not ACTIVE",
                hint="update the cluster (`batchkit cluster update`) to restore it",
            )
        # Tagged with the stack's name, which `cluster delete` knows (`-c` may be an alias).
        owner = self.cluster.stack_name or self.cluster.name
        payload = image_job_definition(base, image, cluster=owner)
        attempt = 0
        while True:
            existing = self._batch.describe_job_definition(payload["jobDefinitionName"])
            if existing is not None and content_matches(existing, payload):
                return str(existing["jobDefinitionArn"])
            try:
                return self._batch.register_job_definition(payload)
            except AmbiguousCallError:
                # it may have been registered: the next look finds it instead of a second
                # revision (the name is a hash of the content)
                attempt += 1
                if attempt >= self._retry.max_attempts:
                    raise
                self._retry.sleep(self._retry.delay(attempt))

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        return self._batch.describe_jobs(job_ids)

    def list_jobs(self, statuses: Sequence[JobStatus], queue: str | None = None) -> list[Job]:
        """Top-level jobs (singles and parents) of `queue`, or of every queue of the cluster,
        from ListJobs summaries (one call per queue and status, in parallel).

        Batch lists only top-level jobs and marks parents in their summaries. moto lists array
        children at the top level too and leaves `arrayProperties` out of summaries: when a child
        shows up, it is dropped and its parent described (one call per 100 parents), so that
        the parent is known for what it is.
        """
        arns = [self.queue_arn(queue)] if queue else self.queue_arns()
        pairs = [(arn, status) for arn in arns for status in ordered(statuses)]
        pages = in_parallel(lambda p: self._batch.list_jobs(*p), pairs, self.session.workers)
        listed = [job for page in pages for job in page]
        top = [job for job in listed if not job.id.is_child]
        hinted = {job.id.parent for job in listed if job.id.is_child}
        unmarked = [job.job_id for job in top if job.job_id in hinted and not job.is_parent]
        if not unmarked:
            return top
        described = {job.job_id: job for job in self._batch.describe_jobs(unmarked)}
        return [described.get(job.job_id, job) for job in top]

    def queue_arns(self) -> list[str]:
        """Every queue of the cluster, the default first."""
        return list(dict.fromkeys([self.cluster.job_queue, *self.cluster.queues.values()]))

    def list_children(self, parent: Job) -> list[Job]:
        """Every child or node of a parent, complete (`ChildLister.list_children`)."""
        return self._children.list_children(parent)

    def list_child_summaries(self, parent: Job) -> list[Job]:
        """The children of a parent for a table (`ChildLister.list_child_summaries`)."""
        return self._children.list_child_summaries(parent)

    def list_child_summaries_of(self, parents: Sequence[Job]) -> dict[str, list[Job]]:
        """`list_child_summaries` of many parents at once, by parent id."""
        return self._children.list_child_summaries_of(parents)

    def terminate_job(self, job_id: str, reason: str) -> None:
        self._batch.terminate_job(job_id, reason)

    def get_log_events(
        self,
        stream: str,
        *,
        group: str | None = None,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        return self._logs.get_log_events(
            group or self.cluster.log_group,
            stream,
            start_from_head=start_from_head,
            limit=limit,
            next_token=next_token,
        )

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        wanted = [self.queue_arn(n) for n in names] or list(self.cluster.queues.values())
        return self._batch.describe_job_queues(wanted or [self.cluster.job_queue])

    def hosts(self) -> list[Host]:
        ces = list(self.cluster.compute_environments.values()) or [self.cluster.compute_environment]
        ecs_clusters = self._batch.ecs_cluster_arns(ces)
        if not ecs_clusters:
            return []
        return self._ecs_gateway().hosts(ecs_clusters)

    def _ecs_gateway(self) -> EcsGateway:
        if self._ecs is None:
            self._ecs = EcsGateway(self.session.api("ecs"), self.session.api("ec2"))
        return self._ecs

    def doctor_facts(self) -> AwsDoctorFacts:
        """What `batchkit doctor` reads about this cluster (read-only, through the gateways)."""
        if self._ec2 is None:
            self._ec2 = Ec2Gateway(self.session.api("ec2"))
        if self._ecr is None:
            self._ecr = EcrGateway(self.session.api("ecr"))
        queues = list(self.cluster.queues.values()) or [self.cluster.job_queue]
        return AwsDoctorFacts(
            self.cluster.region,
            queues,
            batch=self._batch,
            ec2=self._ec2,
            ecs=self._ecs_gateway(),
            ecr=self._ecr,
        )


def with_region(environment: Mapping[str, str], region: str) -> dict[str, str]:
    """The job's environment with the cluster's region, so that nothing in the job (the aws CLI
    fetching the job folder, boto3 in a function job) falls back to instance metadata to find
    it: the launch template keeps job containers away from IMDS (a hop limit of 1, and for the
    host network mode a rule for every user but root; `infra.compute.imds_owner_rules`)."""
    if not region or "AWS_DEFAULT_REGION" in environment or "AWS_REGION" in environment:
        return dict(environment)
    return {**environment, "AWS_DEFAULT_REGION": region}

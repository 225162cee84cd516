"""Deleting a cluster: its active jobs, its extra job definitions, its storage, its stack, and a
report of what is left afterwards.

The cluster's S3 prefix and ECR repository are emptied first with the very functions the
cleanup Lambdas run (`lambdas/`, loaded through `batchkit.shipped`), so a delete from batchkit
and one from the console leave the same nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from batchkit.errors import AwsError, ClusterNotFoundError, ConflictError
from batchkit.providers.aws.errors import Context, translate
from batchkit.providers.aws.leftovers import Leftovers, StackNames, registered_for
from batchkit.providers.aws.session import Api, AwsSession
from batchkit.providers.aws.stackevents import (
    ClusterStatus,
    Progress,
    ProgressSink,
    follow,
    ignore_progress,
)
from batchkit.providers.aws.stackgateway import KEEP_DATA_TAG, Outcome, StackGateway
from batchkit.providers.aws.submitjob import CLUSTER_TAG
from batchkit.shipped import lambda_module

ACTIVE_JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


class StackTeardown:
    """Delete a batchkit cluster and say what of it remains; `names(cluster)` are the names its
    stack gave what it made (`batchkit.infra.naming.Names`)."""

    def __init__(
        self,
        session: AwsSession,
        stacks: StackGateway,
        names: Callable[[str], StackNames],
        batch: Api | None = None,
    ) -> None:
        self._session = session
        self.stacks = stacks
        self._names = names
        self._batch = batch

    def _batch_api(self) -> Api:
        return self._batch or self._session.api("batch")

    def active_jobs(self, status: ClusterStatus) -> list[tuple[str, str]]:
        """(job id, queue name) of every job not yet finished in the cluster's queues."""
        batch = self._batch_api()
        found = []
        for queue_name, queue_arn in status.queues.items():
            for job_status in ACTIVE_JOB_STATUSES:
                for page in batch.paginate("list_jobs", jobQueue=queue_arn, jobStatus=job_status):
                    found += [(str(j["jobId"]), queue_name) for j in page.get("jobSummaryList", [])]
        return found

    def delete(
        self,
        name: str,
        *,
        force: bool = False,
        on_progress: ProgressSink = ignore_progress,
    ) -> Outcome:
        status = self.stacks.describe(name)
        if status is None:
            raise ClusterNotFoundError(name)
        if CLUSTER_TAG not in status.tags and "BatchkitVersion" not in status.outputs:
            raise ConflictError(
                f"stack {name!r} is not a batchkit cluster",
                hint="batchkit deletes only the stacks it created; use the CloudFormation console",
            )
        jobs = self.active_jobs(status)
        if jobs and not force:
            raise ConflictError(
                f"cluster {name!r} has {len(jobs)} active jobs (e.g. {jobs[0][0]} in {jobs[0][1]})",
                hint="wait for them, kill them, or pass --force to terminate them and delete",
            )
        if jobs:
            batch = self._batch_api()
            for job_id, _ in jobs:
                batch.call("terminate_job", jobId=job_id, reason=f"cluster {name} is being deleted")
            on_progress(Progress(f"terminated {len(jobs)} active jobs"))
        retired = self.deregister_extra_definitions(status)
        if retired:
            on_progress(Progress(f"deregistered {retired} job definitions batchkit registered"))
        keep = status.tags.get(KEEP_DATA_TAG) == "true"
        if not keep:
            self._empty(status, on_progress)
        since = self.stacks.latest_event_time(name)
        self.stacks.delete_stack(name)
        on_progress(Progress(f"deleting stack {name}"))
        final, failures = follow(self.stacks, name, since, on_progress, "DELETE_COMPLETE")
        leftovers = [] if keep else self.leftovers(status)
        return Outcome(name, final.status, failures, leftovers=leftovers)

    def deregister_extra_definitions(self, status: ClusterStatus) -> int:
        """Deregister the job definitions batchkit registered on demand for this cluster.

        They are not part of the stack (another image or resource shape needs no stack update).
        Named `batchkit-<hash>`, they belong to this cluster when tagged `batchkit:cluster=<name>`
        or, for those registered before batchkit tagged them, when they run as its job role.
        (The stack's own definitions carry the tag too, through the stack's tags, but are named
        `<cluster>_<kind>`: the stack deletes them.)
        """
        role = status.outputs.get("JobRoleArn")
        batch = self._batch_api()
        count = 0
        for page in batch.paginate("describe_job_definitions", status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                if not registered_for(definition, status.name, role):
                    continue
                batch.call(
                    "deregister_job_definition",
                    resource=f"job definition {definition['jobDefinitionArn']}",
                    jobDefinition=definition["jobDefinitionArn"],
                )
                count += 1
        return count

    def _empty(self, status: ClusterStatus, on_progress: ProgressSink) -> None:
        bucket = status.parameters.get("ResourcesS3Bucket", "")
        root = status.parameters.get("ArtifactS3RootDirectory", "").strip("/")
        if bucket and root:
            where = f"s3://{bucket}/{root}/"
            with _cleanup_errors(status.name, "s3", "DeleteObjects", where):
                count = lambda_module("empty_s3").empty_prefix(
                    self._session.retrying_client("s3"),
                    bucket,
                    f"{root}/",
                    on_progress=lambda n: on_progress(Progress(f"{where}: {n} deleted")),
                )
            on_progress(Progress(f"emptied {where} ({count} objects and versions)"))
        repository = status.outputs.get("EcrRepositoryName", "")
        if repository:
            where = f"ECR repository {repository}"
            with _cleanup_errors(status.name, "ecr", "BatchDeleteImage", where):
                count = lambda_module("empty_ecr").empty_repository(
                    self._session.retrying_client("ecr"),
                    repository,
                    on_progress=lambda n: on_progress(Progress(f"ECR {repository}: {n} deleted")),
                )
            on_progress(Progress(f"emptied {where} ({count} images)"))

    def leftovers(self, status: ClusterStatus) -> list[str]:
        """What of the cluster still exists after its stack is gone (see `leftovers`)."""
        return Leftovers(
            self._session.api,
            status.name,
            self._names(status.name),
            bucket=status.parameters.get("ResourcesS3Bucket", ""),
            job_role=status.outputs.get("JobRoleArn"),
            # stacks without the JobQueues output name the default queue by its physical name
            queues=tuple(queue.removeprefix(f"{status.name}_") for queue in status.queues),
        )()


@contextmanager
def _cleanup_errors(cluster: str, service: str, operation: str, where: str) -> Iterator[None]:
    """A failure while emptying the cluster's storage, as one batchkit error with a way on
    (nothing has been deleted from the stack yet)."""
    cleanup_error: type[Exception] = lambda_module("cfn_response").CleanupError
    try:
        yield
    except cleanup_error as err:
        raise AwsError(
            f"could not empty {where} of cluster {cluster!r}: {err}",
            hint=f"fix what the message names, then run `batchkit cluster delete {cluster}` again",
        ) from err
    except Exception as err:
        error = translate(err, Context(service, operation, where, cluster=cluster))
        again = f"the stack is untouched: run `batchkit cluster delete {cluster}` again"
        error.hint = f"{error.hint}; {again}" if error.hint else again
        raise error from err

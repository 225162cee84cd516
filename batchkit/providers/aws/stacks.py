"""Cluster lifecycle on CloudFormation: create, update, delete, status, list.

`StackGateway` is the write side of CloudFormation (change sets, events, deletion);
`ClusterStacks` drives a whole operation and reports progress through a callback, never printing.
Deleting a cluster empties its S3 prefix and ECR repository first with the very functions the
cleanup Lambdas run (`lambdas/`, loaded through `batchkit.shipped`), so a delete from batchkit
and one from the console leave the same nothing behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from batchkit.errors import (
    AwsError,
    BatchkitError,
    ClusterNotFoundError,
    ConflictError,
    NotFoundError,
)
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, bucket_name
from batchkit.infra.template import render_template
from batchkit.providers.aws.cloudformation import CloudFormationGateway, Stack, stack_from_detail
from batchkit.providers.aws.errors import Context, translate
from batchkit.providers.aws.session import Api, AwsSession
from batchkit.providers.aws.submitjob import CLUSTER_TAG
from batchkit.shipped import lambda_module

KEEP_DATA_TAG = "batchkit:keep-data"
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline (TemplateBody)
ACTIVE_JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


@dataclass(frozen=True)
class StackEvent:
    timestamp: float
    logical_id: str
    resource_type: str
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Change:
    """One resource change of a change set."""

    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional (Modify only)
    attributes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "replacement": self.replacement,
            "attributes": list(self.attributes),
        }


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    status: str
    reason: str
    region: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.outputs.get("BatchkitVersion", "")

    @property
    def queues(self) -> dict[str, str]:
        text = self.outputs.get("JobQueues")
        if text:
            return {str(k): str(v) for k, v in json.loads(text).items()}
        queue = self.outputs.get("BatchJobQueueArn")
        return {queue.rsplit("/", 1)[-1]: queue} if queue else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "region": self.region,
            "version": self.version,
            "outputs": dict(self.outputs),
            "parameters": dict(self.parameters),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class Progress:
    """One line of progress: a stack event, or a step of batchkit's own."""

    text: str
    event: StackEvent | None = None


ProgressSink = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    return None


def _status_of(stack: Stack) -> ClusterStatus:
    return ClusterStatus(
        name=stack.name,
        status=stack.status,
        reason=stack.status_reason or "",
        region=stack.region,
        outputs=stack.outputs,
        parameters=stack.parameters,
        tags=stack.tags,
    )


def _event(raw: Mapping[str, Any]) -> StackEvent:
    stamp: Any = raw.get("Timestamp")
    return StackEvent(
        timestamp=float(stamp.timestamp()) if stamp is not None else 0.0,
        logical_id=str(raw.get("LogicalResourceId", "")),
        resource_type=str(raw.get("ResourceType", "")),
        status=str(raw.get("ResourceStatus", "")),
        reason=str(raw.get("ResourceStatusReason") or ""),
    )


class StackGateway:
    """CloudFormation calls for cluster stacks, with waiting done by polling an injected sleep."""

    def __init__(
        self,
        api: Api,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 5.0,
        max_polls: int = 2160,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._reader = CloudFormationGateway(api)
        self._clock = clock
        self._sleep = sleep
        self._poll = poll_seconds
        self._max_polls = max_polls

    def describe(self, name: str) -> ClusterStatus | None:
        stack = self._reader.describe_stack(name)
        return _status_of(stack) if stack is not None else None

    def list_tagged(self, tag: str) -> list[ClusterStatus]:
        found = []
        for page in self._api.paginate(
            "describe_stacks", cursor_in="NextToken", cursor_out="NextToken"
        ):
            for detail in page.get("Stacks") or ():
                status = _status_of(stack_from_detail(detail))
                if tag in status.tags and status.status != "DELETE_COMPLETE":
                    found.append(status)
        return sorted(found, key=lambda s: s.name)

    def create_change_set(
        self,
        name: str,
        body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> tuple[str, list[Change]]:
        """Create an UPDATE change set and wait until it is ready; (id, []) when nothing would
        change."""
        change_set_name = f"batchkit-{int(self._clock())}"
        response = self._api.call(
            "create_change_set",
            resource=name,
            StackName=name,
            ChangeSetName=change_set_name,
            ChangeSetType="UPDATE",
            TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            Capabilities=CAPABILITIES,
        )
        change_set_id = str(response["Id"])
        for _ in range(self._max_polls):
            detail = self._api.call(
                "describe_change_set", resource=name, ChangeSetName=change_set_id, StackName=name
            )
            status = str(detail.get("Status", ""))
            if status == "CREATE_COMPLETE":
                return change_set_id, self._changes(detail)
            if status == "FAILED":
                reason = str(detail.get("StatusReason") or "")
                if "didn't contain changes" in reason or "No updates" in reason:
                    self.delete_change_set(name, change_set_id)
                    return change_set_id, []
                raise AwsError(
                    f"CloudFormation rejected the change set for {name!r}: {reason}",
                    hint="fix the config (see `batchkit cluster template`) and try again",
                )
            self._sleep(self._poll)
        raise AwsError(f"the change set for {name!r} was not ready in time")

    @staticmethod
    def _changes(detail: Mapping[str, Any]) -> list[Change]:
        changes = []
        for item in detail.get("Changes") or ():
            rc = item.get("ResourceChange") or {}
            attributes = tuple(
                sorted(
                    {
                        str(
                            (d.get("Target") or {}).get("Name")
                            or (d.get("Target") or {}).get("Attribute")
                        )
                        for d in rc.get("Details") or ()
                    }
                    - {"None"}
                )
            )
            changes.append(
                Change(
                    action=str(rc.get("Action", "")),
                    logical_id=str(rc.get("LogicalResourceId", "")),
                    resource_type=str(rc.get("ResourceType", "")),
                    replacement=str(rc.get("Replacement") or ""),
                    attributes=attributes,
                )
            )
        return changes

    def create_stack(
        self, name: str, body: str, parameters: Mapping[str, str], tags: Mapping[str, str]
    ) -> None:
        """A new stack is all additions (`batchkit cluster template` shows them), so it is
        created directly rather than through a change set. (moto also drops the outputs of a
        stack made by an executed CREATE change set.) A failed create rolls back."""
        self._api.call(
            "create_stack",
            resource=name,
            idempotent=False,
            StackName=name,
            TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            Capabilities=CAPABILITIES,
            OnFailure="ROLLBACK",
        )

    def execute_change_set(self, name: str, change_set_id: str) -> None:
        self._api.call(
            "execute_change_set", resource=name, ChangeSetName=change_set_id, StackName=name
        )

    def delete_change_set(self, name: str, change_set_id: str) -> None:
        self._api.call(
            "delete_change_set", resource=name, ChangeSetName=change_set_id, StackName=name
        )

    def delete_stack(self, name: str) -> None:
        self._api.call("delete_stack", resource=name, StackName=name)

    def events(self, name: str, *, since: float | None = None) -> list[StackEvent]:
        """The stack's events, oldest first; with `since`, only those after it.

        CloudFormation lists events newest first, so paging stops at the first event at or
        before `since`: a wait does not re-read the stack's whole history on every poll.
        """
        found: list[StackEvent] = []
        try:
            for page in self._api.paginate(
                "describe_stack_events",
                cursor_in="NextToken",
                cursor_out="NextToken",
                resource=name,
                StackName=name,
            ):
                for raw in page.get("StackEvents") or ():
                    event = _event(raw)
                    if since is not None and event.timestamp <= since:
                        return found[::-1]
                    found.append(event)
        except (ClusterNotFoundError, NotFoundError):
            return []
        return found[::-1]

    def latest_event_time(self, name: str) -> float:
        """When the stack's newest event happened (0 without events): later ones are new."""
        try:
            page = self._api.call("describe_stack_events", resource=name, StackName=name)
        except (ClusterNotFoundError, NotFoundError):
            return 0.0
        # Newest first: the first page has it.
        return max((_event(raw).timestamp for raw in page.get("StackEvents") or ()), default=0.0)

    def watch(self, name: str, *, since: float = 0.0) -> Iterator[StackEvent | ClusterStatus]:
        """New events as they come, then the final status (None-less: a vanished stack is
        reported as DELETE_COMPLETE)."""
        seen: set[tuple[float, str, str]] = set()
        for _ in range(self._max_polls):
            status = self.describe(name)
            for event in self.events(name, since=since) if status else []:
                key = (event.timestamp, event.logical_id, event.status)
                if key not in seen:
                    seen.add(key)
                    yield event
            if status is None:
                yield ClusterStatus(name=name, status="DELETE_COMPLETE", reason="", region="")
                return
            if not status.status.endswith("_IN_PROGRESS"):
                yield status
                return
            self._sleep(self._poll)
        raise AwsError(
            f"stack {name!r} is still changing after {self._max_polls * self._poll:.0f} s",
            hint="follow it with `batchkit cluster status` or in the CloudFormation console",
        )


class StackOperationError(AwsError):
    """A create, update or delete ended in a failed or rolled-back state."""


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    failures: list[StackEvent] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    outputs: Mapping[str, str] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "failures": [f.to_dict() for f in self.failures],
            "changes": [c.to_dict() for c in self.changes],
            "outputs": dict(self.outputs),
            "leftovers": list(self.leftovers),
        }


@dataclass(frozen=True)
class UpdatePlan:
    name: str
    change_set_id: str
    changes: list[Change]


def stack_tags(config: ClusterConfig) -> dict[str, str]:
    tags = {CLUSTER_TAG: config.name, **config.tags}
    if config.keep_data_on_delete:
        tags[KEEP_DATA_TAG] = "true"
    return tags


def template_body(config: ClusterConfig) -> str:
    """Compact JSON: CloudFormation takes at most 51,200 bytes inline."""
    body = json.dumps(render_template(config), separators=(",", ":"))
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise ConflictError(
            f"the template of cluster {config.name!r} is {len(body.encode())} bytes, more than "
            f"CloudFormation's {TEMPLATE_BODY_LIMIT} inline limit",
            hint="use fewer queues or environments, or set `features: {cleanup_on_delete: false}`",
        )
    return body


class ClusterStacks:
    """Create, update, delete and inspect batchkit clusters in one account and region."""

    def __init__(
        self,
        session: AwsSession,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 5.0,
        gateway: StackGateway | None = None,
        batch: Api | None = None,
    ) -> None:
        self._session = session
        self.stacks = gateway or StackGateway(
            session.api("cloudformation"), sleep=sleep, poll_seconds=poll_seconds
        )
        self._batch = batch

    # -- create and update -------------------------------------------------------------------

    def parameters(self, config: ClusterConfig, overrides: Mapping[str, str]) -> dict[str, str]:
        template = render_template(config)
        unknown = sorted(set(overrides) - set(template["Parameters"]))
        if unknown:
            raise ConflictError(
                f"the template has no parameter {', '.join(unknown)}",
                hint="parameters: " + ", ".join(template["Parameters"]),
            )
        bucket = bucket_name(config.name, self._session.account_id(), self._session.region)
        return {"ResourcesS3Bucket": bucket, **overrides}

    def create(
        self,
        config: ClusterConfig,
        overrides: Mapping[str, str] | None = None,
        on_progress: ProgressSink = _ignore,
    ) -> Outcome:
        name = Names.of(config).stack
        existing = self.stacks.describe(name)
        if existing is not None:
            raise ConflictError(
                f"cluster {name!r} already exists (stack status {existing.status})",
                hint="change it with `batchkit cluster update`, or delete it first",
            )
        body = template_body(config)
        parameters = self.parameters(config, overrides or {})
        on_progress(Progress(f"creating stack {name} in {self._session.region}"))
        self.stacks.create_stack(name, body, parameters, stack_tags(config))
        return self._follow(name, 0.0, on_progress, [], "CREATE_COMPLETE")

    def plan_update(
        self, config: ClusterConfig, overrides: Mapping[str, str] | None = None
    ) -> UpdatePlan:
        name = Names.of(config).stack
        current = self.stacks.describe(name)
        if current is None:
            raise ClusterNotFoundError(name, hint="create it with `batchkit cluster create`")
        # Values the stack has now stay (e.g. a feature switched off at create), unless overridden;
        # parameters the new template no longer has are dropped, new ones take their defaults.
        declared = render_template(config)["Parameters"]
        parameters = {k: v for k, v in current.parameters.items() if k in declared}
        parameters.update(self.parameters(config, overrides or {}))
        change_set_id, changes = self.stacks.create_change_set(
            name, template_body(config), parameters, stack_tags(config)
        )
        return UpdatePlan(name, change_set_id, changes)

    def apply_update(self, plan: UpdatePlan, on_progress: ProgressSink = _ignore) -> Outcome:
        since = self.stacks.latest_event_time(plan.name)
        self.stacks.execute_change_set(plan.name, plan.change_set_id)
        return self._follow(plan.name, since, on_progress, plan.changes, "UPDATE_COMPLETE")

    def discard_update(self, plan: UpdatePlan) -> None:
        if plan.changes:
            self.stacks.delete_change_set(plan.name, plan.change_set_id)

    def _follow(
        self,
        name: str,
        since: float,
        on_progress: ProgressSink,
        changes: list[Change],
        success: str,
    ) -> Outcome:
        failures: list[StackEvent] = []
        final: ClusterStatus | None = None
        for item in self.stacks.watch(name, since=since):
            if isinstance(item, StackEvent):
                if item.failed and "cancelled" not in item.reason.lower():
                    failures.append(item)
                on_progress(Progress(item.status, item))
            else:
                final = item
        assert final is not None
        if final.status != success:
            raise StackOperationError(
                f"stack {name} ended in {final.status}"
                + "".join(f"\n  {f.logical_id} ({f.resource_type}): {f.reason}" for f in failures),
                hint=_cleanup_hint(name, final.status),
            )
        return Outcome(name, final.status, failures, changes, final.outputs)

    # -- delete ------------------------------------------------------------------------------

    def active_jobs(self, status: ClusterStatus) -> list[tuple[str, str]]:
        """(job id, queue name) of every job not yet finished in the cluster's queues."""
        batch = self._batch or self._session.api("batch")
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
        on_progress: ProgressSink = _ignore,
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
            batch = self._batch or self._session.api("batch")
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
        outcome = self._follow(name, since, on_progress, [], "DELETE_COMPLETE")
        leftovers = [] if keep else self.leftovers(status)
        return Outcome(name, outcome.status, outcome.failures, leftovers=leftovers)

    def deregister_extra_definitions(self, status: ClusterStatus) -> int:
        """Deregister the job definitions batchkit registered on demand for this cluster.

        They are not part of the stack (another image or resource shape needs no stack update).
        Named `batchkit-<hash>`, they belong to this cluster when tagged `batchkit:cluster=<name>`
        or, for those registered before batchkit tagged them, when they run as its job role.
        (The stack's own definitions carry the tag too, through the stack's tags, but are named
        `<cluster>_<kind>`: the stack deletes them.)
        """
        role = status.outputs.get("JobRoleArn")
        batch = self._batch or self._session.api("batch")
        count = 0
        for page in batch.paginate("describe_job_definitions", status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                if not _registered_for(definition, status.name, role):
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
        """What of the cluster still exists after its stack is gone."""
        names = Names(status.name)
        left: list[str] = []
        bucket = status.parameters.get("ResourcesS3Bucket", "")
        s3 = self._session.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
            left.append(f"S3 bucket {bucket}")
        except Exception:  # noqa: S110 - absent (or not ours to see): nothing left to report
            pass
        ecr = self._session.client("ecr")
        try:
            ecr.describe_repositories(repositoryNames=[names.repository])
            left.append(f"ECR repository {names.repository}")
        except Exception:  # noqa: S110
            pass
        # The stack is gone by now: a check these credentials may not make (iam:ListRoles is
        # often denied) is reported as not made, rather than failing a finished delete.
        logs = self._session.api("logs")
        for prefix in (f"/batchkit/{names.cluster}/", f"/aws/lambda/{names.prefix}-"):
            try:
                groups = logs.call("describe_log_groups", logGroupNamePrefix=prefix)
            except BatchkitError as err:
                left.append(f"log groups {prefix}* (not checked: {err.message})")
                continue
            left += [f"log group {g['logGroupName']}" for g in groups.get("logGroups", [])]
        try:
            roles = self._session.api("iam").call("list_roles", PathPrefix=names.role_path)
        except BatchkitError as err:
            left.append(f"IAM roles under {names.role_path} (not checked: {err.message})")
        else:
            left += [f"IAM role {r['RoleName']}" for r in roles.get("Roles", [])]
        return left

    # -- inspect -----------------------------------------------------------------------------

    def status(self, name: str) -> ClusterStatus:
        status = self.stacks.describe(name)
        if status is None:
            raise ClusterNotFoundError(name)
        return status

    def events(self, name: str) -> list[StackEvent]:
        return self.stacks.events(name)

    def list(self) -> list[ClusterStatus]:
        return self.stacks.list_tagged(CLUSTER_TAG)


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


def _registered_for(definition: Mapping[str, Any], cluster: str, role: str | None) -> bool:
    """Whether batchkit registered this job definition on demand for `cluster`."""
    if not str(definition.get("jobDefinitionName", "")).startswith("batchkit-"):
        return False
    tagged = (definition.get("tags") or {}).get(CLUSTER_TAG)
    if tagged is not None:
        return bool(tagged == cluster)
    return bool(role) and str(role) in json.dumps(definition)


def _cleanup_hint(name: str, status: str) -> str:
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"):
        return (
            f"fix the resources above in batchkit.yaml, then `batchkit cluster delete {name}` "
            "and create it again"
        )
    if status.startswith("UPDATE_ROLLBACK"):
        return "the previous configuration is back in place; fix the config and update again"
    if status == "DELETE_FAILED":
        return (
            f"remove what blocks the resources above, then `batchkit cluster delete {name}` again"
        )
    return f"see the stack events with `batchkit cluster status {name} --events`"

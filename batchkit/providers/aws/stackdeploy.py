"""Creating and updating cluster stacks: the template body, change sets, and following them.

`StackGateway` is the write side of CloudFormation (change sets, create, delete) on top of
`stackevents.StackReader`; `StackDeployer` drives a create or an update and reports progress
through a callback, never printing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchkit.errors import AwsError, ClusterNotFoundError, ConfigError, ConflictError
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, bucket_name
from batchkit.infra.template import render_template
from batchkit.infra.updates import Review, adopt_update_policy, review_update
from batchkit.providers.aws.codebuild import CodeBuildGateway
from batchkit.providers.aws.errors import AmbiguousCallError
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.aws.stackevents import (
    DefaultImageWatch,
    Progress,
    ProgressSink,
    StackEvent,
    StackReader,
    follow,
    ignore_progress,
)
from batchkit.providers.aws.stacktemplate import (
    bootstrap_body,
    fits_inline,
    template_body,
    upload_template,
)
from batchkit.providers.aws.submitjob import CLUSTER_TAG

KEEP_DATA_TAG = "batchkit:keep-data"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
CREATE_ATTEMPTS = 5  # CreateStack sends after a 5xx or a lost answer found no stack


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


def template_source(body: str, url: str | None) -> dict[str, Any]:
    """The template's request field: from S3 at `url`, else inline."""
    return {"TemplateURL": url} if url else {"TemplateBody": body}


def stack_fields(parameters: Mapping[str, str], tags: Mapping[str, str]) -> dict[str, Any]:
    """What every stack create, update and change set sends besides its template."""
    return {
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        "Capabilities": CAPABILITIES,
    }


class StackGateway(StackReader):
    """CloudFormation calls for cluster stacks: the reads and waits of `StackReader`, plus
    change sets, creation and deletion."""

    def create_change_set(
        self,
        name: str,
        body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
        url: str | None = None,
    ) -> tuple[str, list[Change]]:
        """Create an UPDATE change set and wait until it is ready; (id, []) when nothing would
        change. With `url`, CloudFormation reads the template (`body`) from S3 there."""
        change_set_name = f"batchkit-{int(self._clock())}"
        response = self._api.call(
            "create_change_set",
            resource=name,
            StackName=name,
            ChangeSetName=change_set_name,
            ChangeSetType="UPDATE",
            **template_source(body, url),
            **stack_fields(parameters, tags),
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
        stack made by an executed CREATE change set.) A failed create rolls back.

        Exactly once: the request carries a ClientRequestToken (CloudFormation API Reference,
        CreateStack: "specify this token if you plan to retry requests"), and after a 5xx or a
        lost answer the stack is looked up before the request is resent with the same token.
        The caller made sure no stack of this name existed, so one that exists now is this
        request's."""
        token = uuid.uuid4().hex
        attempt = 0
        while True:
            try:
                self._api.call(
                    "create_stack",
                    resource=name,
                    idempotent=False,
                    StackName=name,
                    TemplateBody=body,
                    **stack_fields(parameters, tags),
                    OnFailure="ROLLBACK",
                    ClientRequestToken=token,
                )
                return
            except AmbiguousCallError:
                attempt += 1
                if self.describe(name) is not None:
                    return
                if attempt >= CREATE_ATTEMPTS:
                    raise
                self._sleep(self._poll)

    def update_stack(
        self, name: str, url: str, parameters: Mapping[str, str], tags: Mapping[str, str]
    ) -> None:
        """Update the stack to the template at `url` directly: the second step of a two-step
        create is all additions, like a create (and moto keeps outputs only this way).

        Exactly once as `create_stack`: a ClientRequestToken, and after a 5xx or a lost answer
        a stack already updating (or updated) is this request's doing."""
        token = uuid.uuid4().hex
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self._api.call(
                    "update_stack",
                    resource=name,
                    idempotent=False,
                    StackName=name,
                    TemplateURL=url,
                    **stack_fields(parameters, tags),
                    ClientRequestToken=token,
                )
                return
            except AmbiguousCallError:
                status = self.describe(name)
                if status is not None and status.status.startswith("UPDATE_"):
                    return
                if attempt + 1 >= CREATE_ATTEMPTS:
                    raise
                self._sleep(self._poll)

    def template(self, name: str) -> dict[str, Any]:
        """The template the stack runs now (GetTemplate, stage Original). boto3 hands a JSON
        template back decoded; batchkit's stacks are JSON, so a string is decoded here."""
        body = self._api.call(
            "get_template", resource=name, StackName=name, TemplateStage="Original"
        ).get("TemplateBody")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                raise AwsError(
                    f"the template of stack {name!r} is not JSON: not a batchkit cluster's",
                    hint="update it with the tool that made it",
                ) from None
        return dict(body or {})

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
    review: Review = field(default_factory=Review)
    # For a stack whose compute environments predate the update policy: where the template of
    # the first of two updates is, which adopts it and changes nothing else.
    adoption_url: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "changes": [c.to_dict() for c in self.changes],
            "effects": [e.to_dict() for e in self.review.effects],
            "adopts_update_policy": self.adoption_url is not None,
        }


def refused(name: str, review: Review) -> ConfigError:
    """The error for an update that cannot be made in place: each reason with its steps."""
    lines = [f"cluster update of {name!r} refused before changing anything:"]
    for refusal in review.refusals:
        lines.append(f"- {refusal.reason}")
        lines.extend(f"    {step}" for step in refusal.steps)
    return ConfigError(
        "\n".join(lines),
        hint="nothing was changed; `batchkit cluster template` shows the template a config makes",
    )


def stack_tags(config: ClusterConfig) -> dict[str, str]:
    tags = {CLUSTER_TAG: config.name, **config.tags}
    if config.keep_data_on_delete:
        tags[KEEP_DATA_TAG] = "true"
    return tags


class StackDeployer:
    """Create a cluster's stack, or plan and apply an update to it."""

    def __init__(self, session: AwsSession, stacks: StackGateway) -> None:
        self._session = session
        self.stacks = stacks

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
        on_progress: ProgressSink = ignore_progress,
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
        tags = stack_tags(config)
        watch = self._image_watch(name, on_progress)
        on_progress(Progress(f"creating stack {name} in {self._session.region}"))
        if fits_inline(body):
            self.stacks.create_stack(name, body, parameters, tags)
            final, failures = follow(
                self.stacks, name, 0.0, watch.observe, "CREATE_COMPLETE", on_poll=watch.poll
            )
            return Outcome(name, final.status, failures, [], final.outputs)
        on_progress(
            Progress(
                f"the template is {len(body.encode())} bytes, more than CloudFormation takes "
                "inline: the stack starts with its bucket, then reads the rest from it"
            )
        )
        self.stacks.create_stack(name, bootstrap_body(config), parameters, tags)
        follow(self.stacks, name, 0.0, on_progress, "CREATE_COMPLETE")
        since = self.stacks.latest_event_time(name)
        self.stacks.update_stack(name, self._upload(config, parameters, body), parameters, tags)
        final, failures = follow(
            self.stacks, name, since, watch.observe, "UPDATE_COMPLETE", on_poll=watch.poll
        )
        return Outcome(name, "CREATE_COMPLETE", failures, [], final.outputs)

    def _upload(self, config: ClusterConfig, parameters: Mapping[str, str], body: str) -> str:
        declared = render_template(config)["Parameters"]["ArtifactS3RootDirectory"]["Default"]
        root = parameters.get("ArtifactS3RootDirectory") or declared
        bucket = parameters["ResourcesS3Bucket"]
        return upload_template(self._session.api("s3"), self._session.region, bucket, root, body)

    def plan_update(
        self,
        config: ClusterConfig,
        overrides: Mapping[str, str] | None = None,
        *,
        source: str = "the config",
    ) -> UpdatePlan:
        """Review the update against the template the stack runs (`updates.review_update`):
        refused with the steps that work when it cannot be made in place, before anything
        changes; else a change set to show and confirm. `source` names the config file in steps."""
        name = Names.of(config).stack
        current = self.stacks.describe(name)
        if current is None:
            raise ClusterNotFoundError(name, hint="create it with `batchkit cluster create`")
        # Values the stack has now stay (e.g. a feature switched off at create), unless overridden;
        # parameters the new template no longer has are dropped, new ones take their defaults.
        declared = render_template(config)["Parameters"]
        parameters = {k: v for k, v in current.parameters.items() if k in declared}
        parameters.update(self.parameters(config, overrides or {}))
        body = template_body(config)
        running = self.stacks.template(name)
        review = review_update(
            running,
            json.loads(body),
            service_role=parameters.get("BatchServiceRole", ""),
            config_file=source,
        )
        if review.refusals:
            raise refused(name, review)
        adoption_url = None
        if review.adopt:
            adopted = json.dumps(adopt_update_policy(running), separators=(",", ":"))
            adoption_url = self._upload(config, parameters, adopted)
        url = None if fits_inline(body) else self._upload(config, parameters, body)
        tags = stack_tags(config)
        change_set_id, changes = self.stacks.create_change_set(
            name, body, parameters, tags, url=url
        )
        return UpdatePlan(
            name, change_set_id, changes, review, adoption_url, parameters, tags, body, url
        )

    def _image_watch(self, name: str, on_progress: ProgressSink) -> DefaultImageWatch:
        builds = CodeBuildGateway(self._session.api("codebuild"))
        return DefaultImageWatch(builds, Names(name).codebuild_project, on_progress)

    def apply_update(
        self, plan: UpdatePlan, on_progress: ProgressSink = ignore_progress
    ) -> Outcome:
        change_set_id = plan.change_set_id
        if plan.adoption_url is not None:
            # CloudFormation: switch ReplaceComputeEnvironment to false in an update of its own.
            self.stacks.delete_change_set(plan.name, change_set_id)
            on_progress(
                Progress(
                    "step 1 of 2: the compute environments adopt the update policy "
                    "(ReplaceComputeEnvironment false; nothing is interrupted)"
                )
            )
            since = self.stacks.latest_event_time(plan.name)
            self.stacks.update_stack(plan.name, plan.adoption_url, plan.parameters, plan.tags)
            final, failures = follow(self.stacks, plan.name, since, on_progress, "UPDATE_COMPLETE")
            if final.status != "UPDATE_COMPLETE":
                return Outcome(plan.name, final.status, failures, plan.changes, final.outputs)
            on_progress(Progress("step 2 of 2: the change itself"))
            change_set_id, _ = self.stacks.create_change_set(
                plan.name, plan.body, plan.parameters, plan.tags, url=plan.url
            )
        since = self.stacks.latest_event_time(plan.name)
        self.stacks.execute_change_set(plan.name, change_set_id)
        watch = self._image_watch(plan.name, on_progress)
        final, failures = follow(
            self.stacks, plan.name, since, watch.observe, "UPDATE_COMPLETE", on_poll=watch.poll
        )
        return Outcome(plan.name, final.status, failures, plan.changes, final.outputs)

    def discard_update(self, plan: UpdatePlan) -> None:
        if plan.changes:
            self.stacks.delete_change_set(plan.name, plan.change_set_id)

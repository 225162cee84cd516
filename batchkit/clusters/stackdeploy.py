"""Creating and updating cluster stacks: the template body, change sets, and following them.

`StackDeployer` renders the cluster's template (`infra`), drives a create or an update through
`providers.aws.stackgateway.StackGateway` (the write side of CloudFormation) and reports progress
through a callback, never printing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from batchkit.clusters.stacktemplate import (
    bootstrap_body,
    fits_inline,
    template_body,
    upload_template,
)
from batchkit.errors import ClusterNotFoundError, ConfigError, ConflictError
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, bucket_name
from batchkit.infra.template import render_template
from batchkit.infra.updates import Review, adopt_update_policy, review_update
from batchkit.providers.aws.codebuild import CodeBuildGateway
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.aws.stackevents import (
    DefaultImageWatch,
    Progress,
    ProgressSink,
    follow,
    ignore_progress,
)
from batchkit.providers.aws.stackgateway import (
    KEEP_DATA_TAG,
    Change,
    Outcome,
    StackGateway,
)
from batchkit.providers.aws.submitjob import CLUSTER_TAG


class UpdatePlan(Struct, frozen=True):
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
        url = self._upload(config, parameters, body)
        since = self.stacks.update_stack(name, url, parameters, tags)
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
            since = self.stacks.update_stack(
                plan.name, plan.adoption_url, plan.parameters, plan.tags
            )
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

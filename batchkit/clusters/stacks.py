"""Cluster lifecycle on CloudFormation: create, update, delete, status, list.

`ClusterStacks` is the one object the CLI and API use; it hands each operation to its module:
`clusters.stackdeploy` (create, update through change sets), and below it, among the AWS
gateways, `providers.aws.stackteardown` (emptying storage, deleting, leftovers) and
`providers.aws.stackevents` (status, events, waiting). It reports progress through a callback and
never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from batchkit.clustermodel import Subscription
from batchkit.clusters.stackdeploy import StackDeployer, UpdatePlan, stack_tags
from batchkit.clusters.stacktemplate import TEMPLATE_BODY_LIMIT, template_body
from batchkit.errors import ClusterNotFoundError
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names
from batchkit.providers.aws.session import Api, AwsSession
from batchkit.providers.aws.sns import SnsGateway
from batchkit.providers.aws.stackevents import (
    ClusterStatus,
    Progress,
    ProgressSink,
    StackEvent,
    StackOperationError,
    ignore_progress,
)
from batchkit.providers.aws.stackgateway import KEEP_DATA_TAG, Change, Outcome, StackGateway
from batchkit.providers.aws.stackteardown import ACTIVE_JOB_STATUSES, StackTeardown
from batchkit.providers.aws.submitjob import CLUSTER_TAG

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "KEEP_DATA_TAG",
    "TEMPLATE_BODY_LIMIT",
    "Change",
    "ClusterStacks",
    "ClusterStatus",
    "Outcome",
    "Progress",
    "ProgressSink",
    "StackEvent",
    "StackGateway",
    "StackOperationError",
    "UpdatePlan",
    "stack_tags",
    "template_body",
]


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
        self.session = session
        self.stacks = gateway or StackGateway(
            session.api("cloudformation"), sleep=sleep, poll_seconds=poll_seconds
        )
        self._deploy = StackDeployer(session, self.stacks)
        self._teardown = StackTeardown(session, self.stacks, Names, batch)
        self._sns = SnsGateway(session.api("sns"))

    # -- create and update -------------------------------------------------------------------

    def parameters(self, config: ClusterConfig, overrides: Mapping[str, str]) -> dict[str, str]:
        return self._deploy.parameters(config, overrides)

    def create(
        self,
        config: ClusterConfig,
        overrides: Mapping[str, str] | None = None,
        on_progress: ProgressSink = ignore_progress,
    ) -> Outcome:
        return self._deploy.create(config, overrides, on_progress)

    def plan_update(
        self,
        config: ClusterConfig,
        overrides: Mapping[str, str] | None = None,
        *,
        source: str = "the config",
    ) -> UpdatePlan:
        return self._deploy.plan_update(config, overrides, source=source)

    def apply_update(
        self, plan: UpdatePlan, on_progress: ProgressSink = ignore_progress
    ) -> Outcome:
        return self._deploy.apply_update(plan, on_progress)

    def discard_update(self, plan: UpdatePlan) -> None:
        self._deploy.discard_update(plan)

    # -- delete ------------------------------------------------------------------------------

    def active_jobs(self, status: ClusterStatus) -> list[tuple[str, str]]:
        return self._teardown.active_jobs(status)

    def delete(
        self, name: str, *, force: bool = False, on_progress: ProgressSink = ignore_progress
    ) -> Outcome:
        return self._teardown.delete(name, force=force, on_progress=on_progress)

    def deregister_extra_definitions(self, status: ClusterStatus) -> int:
        return self._teardown.deregister_extra_definitions(status)

    def leftovers(self, status: ClusterStatus) -> list[str]:
        return self._teardown.leftovers(status)

    # -- inspect -----------------------------------------------------------------------------

    def status(self, name: str) -> ClusterStatus:
        status = self.stacks.describe(name)
        if status is None:
            raise ClusterNotFoundError(name)
        return status

    def subscriptions(self, status: ClusterStatus) -> list[Subscription] | None:
        """Who is subscribed to the cluster's job events topic (None: it has none)."""
        topic = status.outputs.get("JobEventsTopicArn")
        return self._sns.subscriptions(topic) if topic else None

    def events(self, name: str) -> list[StackEvent]:
        return self.stacks.events(name)

    def list(self) -> list[ClusterStatus]:
        return self.stacks.list_tagged(CLUSTER_TAG)

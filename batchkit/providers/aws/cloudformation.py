"""The CloudFormation gateway, read side: a cluster's stack, its outputs, parameters and tags.

Creating, updating and deleting stacks is `batchkit.clusters.stacks`' job (cluster lifecycle:
`clusters.stackdeploy` above the gateways here, `stackgateway`, `stackevents`, `stackteardown`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from batchkit.errors import ClusterNotFoundError
from batchkit.providers.aws.session import Api

USABLE_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})
"""States in which a stack's resources are all in place (awsbatch-cli refuses the last one;
after a rolled-back update the previous, working resources are back, so batchkit accepts it)."""


class Stack(Struct, frozen=True):
    name: str
    stack_id: str
    status: str
    status_reason: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def region(self) -> str:
        """The region from the stack ARN (arn:aws:cloudformation:REGION:ACCOUNT:stack/...)."""
        parts = self.stack_id.split(":")
        return parts[3] if len(parts) > 3 else ""

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATES


def stack_from_detail(detail: Mapping[str, Any]) -> Stack:
    return Stack(
        name=str(detail["StackName"]),
        stack_id=str(detail.get("StackId", "")),
        status=str(detail.get("StackStatus", "")),
        status_reason=detail.get("StackStatusReason"),
        outputs={
            str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in detail.get("Outputs") or ()
        },
        parameters={
            str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
            for p in detail.get("Parameters") or ()
        },
        tags={str(t["Key"]): str(t.get("Value", "")) for t in detail.get("Tags") or ()},
    )


class CloudFormationGateway:
    def __init__(self, api: Api) -> None:
        self._api = api

    def describe_stack(self, name: str) -> Stack | None:
        """The stack called `name`, or None when there is none in this region."""
        try:
            response = self._api.call("describe_stacks", resource=name, StackName=name)
        except ClusterNotFoundError:
            return None
        stacks = response.get("Stacks") or []
        return stack_from_detail(stacks[0]) if stacks else None

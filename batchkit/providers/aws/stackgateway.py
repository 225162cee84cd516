"""The write side of CloudFormation for cluster stacks: change sets, create, update and delete
on top of `stackevents.StackReader`, each request sent once (client request tokens, a lookup
after a lost answer), and what an operation ends with (`Outcome`). `clusters.stackdeploy` and
`stackteardown` drive it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchkit.errors import AwsError
from batchkit.providers.aws.errors import AmbiguousCallError
from batchkit.providers.aws.stackevents import (
    StackEvent,
    StackReader,
)

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

"""The write side of CloudFormation for cluster stacks: change sets, create, update and delete
on top of `stackevents.StackReader`, each request sent once (client request tokens, a lookup
after a lost answer), and what an operation ends with (`Outcome`). `clusters.stackdeploy` and
`stackteardown` drive it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from msgspec import Struct, field

from batchkit.errors import AwsError, NotFoundError
from batchkit.providers.aws.errors import AmbiguousCallError, AwsServiceError
from batchkit.providers.aws.stackevents import (
    ClusterStatus,
    StackEvent,
    StackReader,
)

KEEP_DATA_TAG = "batchkit:keep-data"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
CREATE_ATTEMPTS = 5  # CreateStack sends after a 5xx or a lost answer found no stack


class Change(Struct, frozen=True):
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
        change_set_id = self._send_change_set(
            name,
            change_set_name,
            ChangeSetType="UPDATE",
            **template_source(body, url),
            **stack_fields(parameters, tags),
        )
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

    def _send_change_set(self, name: str, change_set_name: str, **fields: Any) -> str:
        """CreateChangeSet, exactly once; the change set's id.

        The request carries a ClientToken (CloudFormation API Reference, CreateChangeSet,
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html:
        "Specify this token if you plan to retry requests so that CloudFormation knows that you're
        not attempting to create another change set with the same name"). After a 5xx or a lost
        answer the change set is looked up by its name (DescribeChangeSet) before the request is
        resent with the same token: a blind resend of a request that did create it fails with
        AlreadyExistsException, which after such a failure means the same, so it is looked up too.
        """
        token = f"batchkit-{uuid.uuid4().hex}"  # a letter first, as change set names

        def made() -> dict[str, Any] | None:
            found = self._find_change_set(name, change_set_name)
            return None if found is None else {"Id": found}

        response = self._send_once(
            "create_change_set",
            name,
            made,
            refused=("AlreadyExistsException",),
            StackName=name,
            ChangeSetName=change_set_name,
            ClientToken=token,
            **fields,
        )
        return str(response["Id"])

    def _send_once(
        self,
        operation: str,
        name: str,
        look: Callable[[], dict[str, Any] | None],
        *,
        refused: tuple[str, ...] = (),
        **params: Any,
    ) -> dict[str, Any]:
        """Send a request that changes the stack, exactly once (`params` carry its token).

        After a failure after which CloudFormation may have acted (a 5xx, a lost answer), `look`
        says what the request did (what stands for its answer) or None: not done, so it is
        resent with the same token, up to CREATE_ATTEMPTS sends. `refused` are the error codes
        AWS answers a resend of a request that had acted with; after such a failure they are
        looked up the same way."""
        attempt = 0  # failures after which the request may have acted
        while True:
            try:
                return self._api.call(operation, resource=name, idempotent=False, **params)
            except AmbiguousCallError:
                attempt += 1
                done = look()
                if done is not None:
                    return done
                if attempt >= CREATE_ATTEMPTS:
                    raise
                self._sleep(self._poll)
            except AwsServiceError as err:
                done = look() if attempt and err.code in refused else None
                if done is None:
                    raise
                return done

    def _find_change_set(self, name: str, change_set: str) -> str | None:
        """The id of the stack's change set of this name or id (DescribeChangeSet); None when
        there is none (ChangeSetNotFound)."""
        detail = self._describe_change_set(name, change_set)
        return str(detail["ChangeSetId"]) if detail.get("ChangeSetId") else None

    def _describe_change_set(self, name: str, change_set: str) -> dict[str, Any]:
        """DescribeChangeSet; {} when the change set does not exist."""
        try:
            return self._api.call(
                "describe_change_set", resource=name, ChangeSetName=change_set, StackName=name
            )
        except NotFoundError:  # moto says the stack of that id does not exist
            return {}
        except AwsServiceError as err:
            if err.code == "ChangeSetNotFound":
                return {}
            raise

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
        self._send_once(
            "create_stack",
            name,
            lambda: None if self.describe(name) is None else {},
            # a resend of a create that acted (CloudFormation API Reference, CreateStack errors)
            refused=("AlreadyExistsException", "TokenAlreadyExistsException"),
            StackName=name,
            TemplateBody=body,
            **stack_fields(parameters, tags),
            OnFailure="ROLLBACK",
            ClientRequestToken=uuid.uuid4().hex,
        )

    def update_stack(
        self, name: str, url: str, parameters: Mapping[str, str], tags: Mapping[str, str]
    ) -> float:
        """Update the stack to the template at `url` directly: the second step of a two-step
        create is all additions, like a create (and moto keeps outputs only this way). Returns
        when the stack's newest event before the request happened: the update's events are the
        later ones, so the caller follows them from there (one DescribeStackEvents, not two).

        Exactly once as `create_stack`: a ClientRequestToken, and after a 5xx or a lost answer
        `_updated` looks for the stack's own UPDATE_IN_PROGRESS event that this request made.
        Its status alone is not: a stack an earlier update left UPDATE_COMPLETE would make a
        request that never reached CloudFormation look done."""
        sent_after = self.latest_event_time(name)
        token = uuid.uuid4().hex
        self._send_once(
            "update_stack",
            name,
            lambda: {} if self._updated(name, token, sent_after) else None,
            # a resend of an update that acted: the token's, or the stack's "is in
            # UPDATE_IN_PROGRESS state and can not be updated" (CloudFormation API Reference,
            # UpdateStack errors, and Common Errors: ValidationError)
            refused=("TokenAlreadyExistsException", "ValidationError"),
            StackName=name,
            TemplateURL=url,
            **stack_fields(parameters, tags),
            ClientRequestToken=token,
        )
        return sent_after

    def _updated(self, name: str, token: str, sent_after: float) -> bool:
        """Whether the UpdateStack that carried `token` started: the stack's UPDATE_IN_PROGRESS
        event after `sent_after` (its newest event before the request) that carries the token.

        Every event of a stack operation carries the ClientRequestToken the operation was sent
        with (CloudFormation API Reference, StackEvent, ClientRequestToken; as boto3 documents
        it: https://boto3.amazonaws.com/v1/documentation/api/1.34.0/reference/services/cloudformation/event/client_request_token.html),
        so an update started by anyone else (another token, or the console's
        Console-UpdateStack-...) is not this request's. An event without a token (moto records
        none) counts by its time alone: after the request was sent."""
        return any(
            event.token in (token, "")
            for event in self.events(name, since=sent_after)
            if event.logical_id == name and event.status == "UPDATE_IN_PROGRESS"
        )

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
        """ExecuteChangeSet, exactly once.

        The request carries a ClientRequestToken (CloudFormation API Reference, ExecuteChangeSet,
        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html:
        "Specify this token if you plan to retry requests so that CloudFormation knows that you're
        not attempting to execute a change set to update a stack with the same name"). After a
        5xx or a lost answer, `_executed` looks before the request is resent with the same token:
        a blind resend of a request that did start the update fails with InvalidChangeSetStatus
        (or TokenAlreadyExistsException), which after such a failure is checked the same way."""
        self._send_once(
            "execute_change_set",
            name,
            lambda: {} if self._executed(name, change_set_id) else None,
            refused=("InvalidChangeSetStatus", "TokenAlreadyExistsException"),
            ChangeSetName=change_set_id,
            StackName=name,
            ClientRequestToken=uuid.uuid4().hex,
        )

    def _executed(self, name: str, change_set_id: str) -> bool:
        """Whether the change set was executed: its ExecutionStatus (DescribeChangeSet, API
        Reference: EXECUTE_IN_PROGRESS, EXECUTE_COMPLETE or EXECUTE_FAILED once executed), or,
        should it be gone, the stack updating (DescribeStacks: UPDATE_IN_PROGRESS and the other
        UPDATE_*_IN_PROGRESS states)."""
        detail = self._describe_change_set(name, change_set_id)
        if str(detail.get("ExecutionStatus", "")).startswith("EXECUTE_"):
            return True
        if detail:
            return False  # still AVAILABLE: resent, with the same token
        status = (self.describe(name) or ClusterStatus(name, "", "", "")).status
        return status.startswith("UPDATE_") and status.endswith("_IN_PROGRESS")

    def delete_change_set(self, name: str, change_set_id: str) -> None:
        self._api.call(
            "delete_change_set", resource=name, ChangeSetName=change_set_id, StackName=name
        )

    def delete_stack(self, name: str) -> None:
        self._api.call("delete_stack", resource=name, StackName=name)


class Outcome(Struct, frozen=True):
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

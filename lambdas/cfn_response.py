"""The CloudFormation custom-resource protocol, for batchkit's cleanup Lambdas.

Standard library only. CloudFormation inlines a single file per function, so the template renderer
(`batchkit.infra.cleanup`) places this module's text ahead of each handler's and drops the
handler's import of it. Nothing here may import batchkit.

The protocol: CloudFormation invokes the function with a RequestType (Create, Update, Delete) and
waits, up to an hour, for a JSON document PUT to the presigned ResponseURL. A function that dies or
times out without answering leaves the stack hanging, so `serve` answers FAILED on any error, and
the work checks a `Deadline` that fires well before the Lambda's own timeout.
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

REPLY_MARGIN_MS = 20_000
MAX_REASON = 3000


class CleanupError(Exception):
    """The cleanup could not finish; the message says what is left and what to do."""


class OutOfTime(CleanupError):
    """The Lambda is about to time out: stop and answer FAILED while it still can."""


class Deadline:
    """Stops the work `margin_ms` before the Lambda's timeout (read from its context)."""

    def __init__(self, context: Any, margin_ms: int = REPLY_MARGIN_MS) -> None:
        self._context = context
        self._margin_ms = margin_ms

    def check(self, doing: str) -> None:
        remaining = int(self._context.get_remaining_time_in_millis())
        if remaining < self._margin_ms:
            raise OutOfTime(f"stopped while {doing}: the function was about to time out")


def send(
    event: dict[str, Any],
    status: str,
    reason: str,
    physical_id: str,
    data: dict[str, str] | None = None,
    *,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """PUT the response document to the presigned ResponseURL, retrying transient failures."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:MAX_REASON],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data or {},
        }
    ).encode()
    # The presigned URL is signed without a content type: sending one breaks the signature.
    request = urllib.request.Request(  # noqa: S310 - the URL comes from CloudFormation
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                return
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            print(f"could not send the response (attempt {attempt + 1}): {err}")
            if attempt + 1 == attempts:
                raise
            sleep(2**attempt)


# Stack states in which a Delete request means the cluster is going away. Any other state (an
# update that removed the resource, or the rollback of an update that added it) keeps the data.
GOING_AWAY = frozenset(
    {"DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE", "ROLLBACK_IN_PROGRESS",
     "ROLLBACK_FAILED", "ROLLBACK_COMPLETE"}
)  # fmt: skip


def stack_going_away(cloudformation: Any, stack_id: str) -> bool:
    """Whether the stack is being deleted (or its creation rolled back), or is already gone."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except Exception as err:
        if "does not exist" in str(err):
            return True
        raise
    return not stacks or stacks[0].get("StackStatus") in GOING_AWAY


def serve(
    event: dict[str, Any],
    context: Any,
    on_delete: Callable[[dict[str, Any], Deadline], str],
    cloudformation: Callable[[], Any],
) -> None:
    """Answer one custom-resource request: Create/Update are no-ops, Delete runs `on_delete`.

    The physical id is the same on every request, so an Update never makes CloudFormation
    "replace" the resource, which would send a Delete and empty the cluster's data mid-life.
    A Delete while the stack lives on (the resource was removed by an update, e.g. by turning
    CleanupOnDelete off) succeeds without emptying anything. `cloudformation` makes the client
    (inside the error handling, so that even a failure to make one is answered).
    """
    physical_id = event.get("PhysicalResourceId") or f"batchkit-{event['LogicalResourceId']}"
    request_type = event.get("RequestType")
    try:
        if request_type == "Delete" and not stack_going_away(cloudformation(), event["StackId"]):
            reason = "the stack is not being deleted: nothing was emptied"
        elif request_type == "Delete":
            reason = on_delete(event.get("ResourceProperties", {}), Deadline(context))
        else:
            reason = f"{request_type}: nothing to do until the stack is deleted"
        status = "SUCCESS"
    except Exception as err:
        status, reason = "FAILED", f"{type(err).__name__}: {err}"
    print(f"{request_type} {event.get('LogicalResourceId')}: {status}: {reason}")
    send(event, status, reason, physical_id, {"Message": reason[:200]})

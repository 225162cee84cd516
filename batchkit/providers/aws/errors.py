"""The one table that turns botocore errors into batchkit errors.

Every gateway call goes through `batchkit.providers.aws.session.Api`, which retries what is worth
retrying and hands whatever is left to `translate()`. The result is a `BatchkitError` with the
resource it is about and a hint, chained to the botocore error with `raise ... from err`.

The classifiers (`is_throttle`, `is_retryable`, `is_ambiguous`) live here too, so that "what does
this botocore error mean" is answered in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from msgspec import Struct

from batchkit.errors import (
    AccessDeniedError,
    AwsError,
    BatchkitError,
    ClusterNotFoundError,
    ConflictError,
    NotFoundError,
)

THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "PriorRequestNotComplete",
    }
)
"""Error codes AWS services use to say "slow down". CloudWatch Logs says LimitExceededException."""

ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "AuthorizationError",
    }
)

BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "RequestExpired",
    }
)

NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound", "404"}
)


class AwsServiceError(AwsError):
    """An AWS call failed with a service error code that batchkit has no better word for."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        service: str,
        operation: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.service = service
        self.operation = operation


class AwsNotFoundError(NotFoundError):
    """An AWS resource (log group, log stream, S3 key, ...) does not exist."""

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class AmbiguousCallError(AwsError):
    """The request may or may not have reached AWS (the response was lost).

    Raised instead of retrying a non-idempotent call (SubmitJob): the caller must first find out
    whether the call took effect, e.g. by looking the job up by its client token.
    """


class StackStateError(ConflictError):
    """A cluster's CloudFormation stack is in a state that cannot serve jobs."""

    def __init__(self, stack: str, status: str, reason: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cluster stack {stack!r} is in state {status}{detail}",
            hint=_stack_state_hint(status),
        )
        self.stack = stack
        self.status = status


def _stack_state_hint(status: str) -> str:
    if status.endswith("_IN_PROGRESS"):
        return "wait for the stack operation to finish (`batchkit cluster status`), then retry"
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"):
        return (
            "creation failed: read the stack events in the CloudFormation console, delete the "
            "stack (`batchkit cluster delete`) and create it again"
        )
    if status.startswith("DELETE"):
        return "the cluster is being or was deleted; create it again with `batchkit cluster create`"
    return "read the stack events in the CloudFormation console and fix the stack first"


def error_code(err: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def http_status(err: BaseException) -> int | None:
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def error_message(err: BaseException) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Message") or err)
    return str(err)


def is_throttle(err: BaseException) -> bool:
    status = http_status(err)
    return error_code(err) in THROTTLE_CODES or status == 429


def is_server_error(err: BaseException) -> bool:
    status = http_status(err)
    return status is not None and status >= 500


def is_ambiguous(err: BaseException) -> bool:
    """The request was sent but no answer came back: it may have taken effect."""
    return isinstance(err, ReadTimeoutError | ConnectionClosedError)


def may_have_acted(err: BaseException) -> bool:
    """The service may have carried the request out although the caller got an error: a lost
    answer (`is_ambiguous`) or any 5xx (AWS answers 500/503 after doing the work, too). A
    non-idempotent call must look before it resends after one of these."""
    return is_ambiguous(err) or is_server_error(err)


def lost_answer(err: BaseException, ctx: Context) -> AmbiguousCallError:
    """The `AmbiguousCallError` for a non-idempotent call that failed with `may_have_acted`."""
    return AmbiguousCallError(
        f"AWS {ctx.service} {ctx.operation}{_about(ctx)} may or may not have taken effect: "
        f"{error_message(err)}",
        hint="the request may have taken effect; check before retrying",
    )


def is_connection_error(err: BaseException) -> bool:
    """The request never reached AWS (safe to retry), or it is ambiguous (see is_ambiguous)."""
    return isinstance(err, EndpointConnectionError | ConnectTimeoutError | BotoConnectionError)


def is_unreachable(err: BaseException) -> bool:
    """No connection could be made at all (refused, no route, DNS, connect timeout): the request
    never left, and the endpoint is wrong or down rather than busy."""
    return isinstance(err, BotoConnectionError) and not is_ambiguous(err)


def is_retryable(err: BaseException) -> bool:
    """Worth another attempt for an idempotent call: throttling, 5xx, a dropped connection, a
    lost answer."""
    return is_throttle(err) or is_server_error(err) or is_connection_error(err) or is_ambiguous(err)


class Context(Struct, frozen=True):
    """What a failed call was about, for the message."""

    service: str
    operation: str
    resource: str | None = None
    attempts: int = 1
    cluster: str | None = None


class Rule(Struct, frozen=True):
    matches: Callable[[BaseException], bool]
    build: Callable[[BaseException, Context], BatchkitError]


def _about(ctx: Context) -> str:
    return f" ({ctx.resource})" if ctx.resource else ""


def _batch_missing(err: BaseException) -> bool:
    """Batch says "ClientException" for everything a caller got wrong, a missing job included."""
    text = error_message(err).lower()
    missing = "not found" in text or "does not exist" in text
    return error_code(err) == "ClientException" and missing


def _stack_missing(err: BaseException) -> bool:
    return error_code(err) == "ValidationError" and "does not exist" in error_message(err)


_CREDENTIALS_HINT = (
    "configure credentials: `aws configure`, `aws sso login`, AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or `profile:` for the cluster in "
    "~/.batchkit/config.yaml"
)

RULES: tuple[Rule, ...] = (
    Rule(
        lambda e: isinstance(e, NoCredentialsError | PartialCredentialsError),
        lambda e, c: AwsError("no usable AWS credentials were found", hint=_CREDENTIALS_HINT),
    ),
    Rule(
        lambda e: isinstance(e, NoRegionError),
        lambda e, c: AwsError(
            "no AWS region is configured",
            hint="set AWS_REGION or AWS_DEFAULT_REGION, or `region:` for the cluster in "
            "~/.batchkit/config.yaml (`region` in ~/.aws/config works too)",
        ),
    ),
    Rule(
        lambda e: isinstance(e, ProfileNotFound),
        lambda e, c: AwsError(
            f"AWS profile not found: {e}",
            hint="list profiles with `aws configure list-profiles`, or fix `profile:` in "
            "~/.batchkit/config.yaml",
        ),
    ),
    Rule(
        lambda e: error_code(e) in BAD_CREDENTIAL_CODES,
        lambda e, c: AwsError(
            f"AWS rejected the credentials for {c.service} {c.operation}: {error_message(e)}",
            hint="the credentials are invalid or expired; refresh them (`aws sso login`, new "
            "keys) and retry",
        ),
    ),
    Rule(
        lambda e: error_code(e) in ACCESS_DENIED_CODES,
        lambda e, c: AccessDeniedError(
            f"access denied: {c.service}:{c.operation}{_about(c)}: {error_message(e)}",
            permission=f"{c.service}:{c.operation}",
            hint=f"grant the caller permission for {c.service}:{c.operation} on this resource "
            "(the batchkit user policy is printed by `batchkit cluster template`)",
        ),
    ),
    Rule(
        is_throttle,
        lambda e, c: AwsError(
            f"AWS kept throttling {c.service} {c.operation} after {c.attempts} attempts",
            hint="another process is using this account's API quota; wait a minute and retry, "
            "or run fewer batchkit commands at once",
        ),
    ),
    Rule(
        _stack_missing,
        lambda e, c: ClusterNotFoundError(
            c.cluster or c.resource or "?",
            hint="check the name and the region; list clusters with `batchkit cluster list`, "
            "or use `-c local`",
        ),
    ),
    Rule(
        lambda e: error_code(e) in NOT_FOUND_CODES or _batch_missing(e),
        lambda e, c: AwsNotFoundError(
            f"{c.resource or c.service + ' resource'} not found: {error_message(e)}",
            code=error_code(e) or "NotFound",
        ),
    ),
    Rule(
        is_server_error,
        lambda e, c: AwsServiceError(
            f"AWS {c.service} {c.operation} failed with a server error after {c.attempts} "
            f"attempts: {error_message(e)}",
            code=error_code(e) or "InternalError",
            service=c.service,
            operation=c.operation,
            hint="this is on AWS's side; retry in a minute (https://health.aws.amazon.com)",
        ),
    ),
    Rule(
        is_ambiguous,
        lambda e, c: AmbiguousCallError(
            f"no answer from AWS {c.service} {c.operation}: {e}",
            hint="the request may have taken effect; check before retrying",
        ),
    ),
    Rule(
        is_connection_error,
        lambda e, c: AwsError(
            f"cannot reach AWS {c.service}: {e}",
            hint="check the network, the region, and AWS_ENDPOINT_URL if you set it",
        ),
    ),
)


def translate(err: BaseException, ctx: Context) -> BatchkitError:
    """The batchkit error for a botocore error (the caller chains it with `from err`)."""
    if isinstance(err, BatchkitError):
        return err
    for rule in RULES:
        if rule.matches(err):
            return rule.build(err, ctx)
    code = error_code(err)
    if code is not None:
        return AwsServiceError(
            f"AWS {ctx.service} {ctx.operation} failed{_about(ctx)}: {code}: {error_message(err)}",
            code=code,
            service=ctx.service,
            operation=ctx.operation,
            hint="run the command with --debug for the full AWS response",
        )
    return AwsError(
        f"AWS {ctx.service} {ctx.operation} failed: {type(err).__name__}: {err}",
        hint="run the command with --debug for details",
    )

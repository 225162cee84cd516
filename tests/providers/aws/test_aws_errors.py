from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from batchkit.errors import (
    AccessDeniedError,
    AwsError,
    ClusterNotFoundError,
    ExitCode,
    NotFoundError,
)
from batchkit.providers.aws.errors import (
    AmbiguousCallError,
    AwsNotFoundError,
    AwsServiceError,
    Context,
    StackStateError,
    is_ambiguous,
    is_retryable,
    is_throttle,
    translate,
)


def client_error(code: str, message: str = "boom", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SubmitJob",
    )


CTX = Context("batch", "SubmitJob", "job hello", attempts=10, cluster="research")


def test_missing_credentials_say_how_to_configure_them() -> None:
    err = translate(NoCredentialsError(), CTX)
    assert type(err) is AwsError
    assert err.exit_code is ExitCode.AWS
    assert "credentials" in err.message
    assert err.hint and "aws configure" in err.hint


def test_missing_region_says_how_to_set_it() -> None:
    err = translate(NoRegionError(), CTX)
    assert "region" in err.message
    assert err.hint and "AWS_REGION" in err.hint


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"])
def test_access_denied_names_the_action(code: str) -> None:
    err = translate(client_error(code, "not allowed", 403), CTX)
    assert type(err) is AccessDeniedError and isinstance(err, AwsError)
    assert err.permission == "batch:SubmitJob"  # what the doctor reports as "not checked"
    assert "access denied: batch:SubmitJob (job hello)" in err.message
    assert err.hint and "batch:SubmitJob" in err.hint


def test_throttling_storm_says_how_many_attempts() -> None:
    err = translate(client_error("TooManyRequestsException", status=429), CTX)
    assert "throttling" in err.message and "10 attempts" in err.message
    assert err.hint


def test_missing_stack_is_an_unknown_cluster() -> None:
    err = translate(client_error("ValidationError", "Stack with id research does not exist"), CTX)
    assert isinstance(err, ClusterNotFoundError)
    assert err.cluster == "research"
    assert err.exit_code is ExitCode.NOT_FOUND


def test_missing_resource_is_not_found() -> None:
    err = translate(client_error("ResourceNotFoundException", "no such stream"), CTX)
    assert isinstance(err, AwsNotFoundError) and isinstance(err, NotFoundError)


def test_batch_client_exceptions_about_missing_jobs_are_not_found() -> None:
    err = translate(client_error("ClientException", "Job abc not found"), CTX)
    assert isinstance(err, NotFoundError)


def test_server_error_points_at_aws() -> None:
    err = translate(client_error("ServerException", "oops", 500), CTX)
    assert isinstance(err, AwsServiceError) and err.code == "ServerException"


def test_unknown_codes_keep_code_and_message() -> None:
    err = translate(client_error("ClientException", "bad queue"), CTX)
    assert isinstance(err, AwsServiceError)
    assert "ClientException: bad queue" in err.message


def test_connection_errors() -> None:
    unreachable = EndpointConnectionError(endpoint_url="http://x")
    lost = ReadTimeoutError(endpoint_url="http://x")
    assert is_retryable(unreachable) and not is_ambiguous(unreachable)
    assert is_ambiguous(lost) and is_retryable(lost)
    assert "cannot reach" in translate(unreachable, CTX).message
    assert isinstance(translate(lost, CTX), AmbiguousCallError)


def test_classifiers() -> None:
    assert is_throttle(client_error("Throttling"))
    assert is_throttle(client_error("Whatever", status=429))
    assert is_retryable(client_error("InternalFailure", status=503))
    assert not is_retryable(client_error("ClientException"))


@pytest.mark.parametrize(
    ("status", "hint_word"),
    [("ROLLBACK_COMPLETE", "delete"), ("UPDATE_IN_PROGRESS", "wait"), ("DELETE_FAILED", "deleted")],
)
def test_stack_state_errors_explain_the_state(status: str, hint_word: str) -> None:
    err = StackStateError("research", status, "a reason")
    assert status in err.message and "a reason" in err.message
    assert err.hint and hint_word in err.hint

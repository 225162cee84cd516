from __future__ import annotations

from collections.abc import Callable

import pytest

from batchkit.errors import AwsError
from batchkit.providers.aws.errors import AmbiguousCallError
from batchkit.providers.aws.session import AwsSession, partition_of
from tests.providers.aws.conftest import Sleeper
from tests.providers.aws.faults import Faults

MakeSession = Callable[..., AwsSession]


@pytest.mark.parametrize(
    ("region", "partition", "console"),
    [
        ("eu-west-1", "aws", "https://console.aws.amazon.com"),
        ("cn-north-1", "aws-cn", "https://console.amazonaws.cn"),
        ("us-gov-west-1", "aws-us-gov", "https://console.amazonaws-us-gov.com"),
    ],
)
def test_partition_and_console_domain_follow_the_region(
    make_session: MakeSession, region: str, partition: str, console: str
) -> None:
    session = make_session(region=region)
    assert session.region == region
    assert session.partition == partition == partition_of(region)
    assert session.console_domain == console


def test_region_comes_from_the_standard_chain(make_session: MakeSession) -> None:
    assert make_session().region == "us-east-1"


def test_aws_region_counts_although_botocore_reads_only_aws_default_region(
    make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    session = make_session()
    assert session.region == "eu-west-1"
    assert session.client("batch").meta.region_name == "eu-west-1"


def test_missing_region_is_one_clear_error(
    make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(AwsError, match="no AWS region") as info:
        _ = make_session().region
    assert info.value.hint and "AWS_REGION" in info.value.hint


def test_unknown_profile_is_one_clear_error(make_session: MakeSession) -> None:
    with pytest.raises(AwsError, match="profile") as info:
        make_session(profile="no-such-profile")
    assert info.value.__cause__ is not None


def test_endpoint_url_from_the_environment_is_honoured(
    make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert make_session().client("batch").meta.endpoint_url == "http://127.0.0.1:9"


def test_botocore_does_not_retry_by_itself(make_session: MakeSession) -> None:
    faults = Faults(throttle=1.0)
    session = make_session(hooks=faults.hooks("batch"))
    with pytest.raises(AwsError, match="throttling"):
        session.api("batch").call("describe_job_queues")
    # every attempt went through batchkit's loop (10 attempts), none hidden inside botocore
    assert faults.total() == session.retry.max_attempts


def test_the_client_of_the_shared_cleanup_code_retries_inside_botocore(
    make_session: MakeSession,
) -> None:
    """The cleanup Lambdas (`lambdas/`) call a client directly (as they do in the Lambda): its
    retries must be botocore's, while every other client leaves retrying to batchkit's loop."""
    session = make_session()
    retrying = session.retrying_client("s3")
    assert retrying.meta.config.retries["total_max_attempts"] == 11
    assert session.client("s3").meta.config.retries["total_max_attempts"] == 1
    assert session.retrying_client("s3") is retrying


def test_throttling_is_retried_with_jittered_backoff(
    make_session: MakeSession, sleeper: Sleeper
) -> None:
    faults = Faults(throttle=0.6, seed=3)
    session = make_session(hooks=faults.hooks("batch"))
    for _ in range(10):
        session.api("batch").call("describe_job_queues")
    assert faults.injected["throttle"] > 0
    backoffs = sleeper.calls
    assert len(backoffs) >= faults.injected["throttle"]
    assert all(0 <= s <= session.retry.cap for s in backoffs)
    assert len(set(backoffs)) > 1  # jittered, not a fixed delay


def test_server_errors_are_retried(make_session: MakeSession) -> None:
    faults = Faults(server_error=0.5, seed=2)
    session = make_session(hooks=faults.hooks("batch"))
    for _ in range(5):
        session.api("batch").call("describe_job_queues")
    assert faults.injected["server_error"] > 0


def test_a_lost_answer_is_not_resent_for_a_non_idempotent_call(make_session: MakeSession) -> None:
    faults = Faults(lost=1.0)
    session = make_session(hooks=faults.hooks("batch"))
    with pytest.raises(AmbiguousCallError):
        session.api("batch").call("describe_job_queues", idempotent=False)
    assert faults.total() == 1


def test_a_5xx_is_not_resent_for_a_non_idempotent_call(make_session: MakeSession) -> None:
    # AWS may answer 500 after it did the work: the caller must look before it resends
    faults = Faults(server_error=1.0)
    session = make_session(hooks=faults.hooks("batch"))
    with pytest.raises(AmbiguousCallError, match="may or may not have taken effect"):
        session.api("batch").call("describe_job_queues", idempotent=False)
    assert faults.total() == 1


def test_a_throttle_is_resent_for_a_non_idempotent_call(make_session: MakeSession) -> None:
    faults = Faults(throttle=0.5, seed=3)
    session = make_session(hooks=faults.hooks("batch"))
    for _ in range(6):
        session.api("batch").call("describe_job_queues", idempotent=False)
    assert faults.injected["throttle"] > 0
    assert faults.total() == 6 + faults.injected["throttle"]


def test_a_lost_answer_is_resent_for_an_idempotent_call(make_session: MakeSession) -> None:
    faults = Faults(lost=0.5, seed=4)
    session = make_session(hooks=faults.hooks("batch"))
    for _ in range(6):
        session.api("batch").call("describe_job_queues")
    assert faults.injected["lost"] > 0
    assert faults.total() == 6 + faults.injected["lost"]


def test_hooks_added_later_reach_existing_clients(make_session: MakeSession) -> None:
    session = make_session()
    session.client("batch")
    faults = Faults()
    session.add_hook("before-send.batch", faults.before_send)
    session.api("batch").call("describe_job_queues")
    assert faults.sent == {"DescribeJobQueues": 1}


def test_account_id_is_asked_once(make_session: MakeSession) -> None:
    faults = Faults()
    session = make_session(hooks=faults.hooks("sts"))
    assert session.account_id() == "123456789012"
    assert session.account_id() == "123456789012"
    assert faults.total("GetCallerIdentity") == 1


def test_an_unreachable_endpoint_fails_after_three_quick_tries(
    make_session: MakeSession, sleeper: Sleeper
) -> None:
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    sent: list[str] = []

    def refuse(request: object, **_: object) -> None:
        sent.append("x")
        if len(sent) % 2:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        raise ConnectTimeoutError(endpoint_url="http://127.0.0.1:9")

    session = make_session(hooks=[("before-send.batch", refuse)])
    with pytest.raises(AwsError, match="cannot reach AWS batch"):
        session.api("batch").call("describe_job_queues")
    assert len(sent) == session.retry.unreachable_attempts == 3
    assert len(sleeper.calls) == 2 and all(s <= 1.0 for s in sleeper.calls)
    assert session.client("batch").meta.config.connect_timeout == 4.0

"""In-process moto for the AWS provider's tests: the mock starts before any client exists."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.ratelimit import RateLimiter
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from tests.fixtures.moto_server import SIMPLE_CONFIG, Cluster, create_cluster


class Sleeper:
    """An injected `sleep` that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def aws() -> Iterator[None]:
    # Simple Batch; no AWS managed IAM policies (loading them costs ~2 s a test, and nothing
    # here attaches one).
    with mock_aws(config=SIMPLE_CONFIG):
        yield


@pytest.fixture
def make_session(sleeper: Sleeper, aws: None) -> object:
    def make(**kwargs: object) -> AwsSession:
        kwargs.setdefault("limiter", RateLimiter(sleep=sleeper))
        kwargs.setdefault("retry", RetryPolicy(sleep=sleeper, rng=random.Random(7)))
        # In-process moto is not thread-safe: calls run one at a time in the test's thread.
        kwargs.setdefault("workers", 1)
        return AwsSession(**kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def session(make_session: object) -> AwsSession:
    return make_session(cluster="pc-test")  # type: ignore[operator, no-any-return]


@pytest.fixture
def cluster(aws: None) -> Cluster:
    return create_cluster("pc-test")


@pytest.fixture
def provider(session: AwsSession, cluster: Cluster, tmp_path: Path) -> AwsProvider:
    _, info = discover(
        cluster.name,
        session_factory=lambda profile, region, name: session,
        cli_config=tmp_path / "absent.cfg",
    )
    return AwsProvider(session, info)

from __future__ import annotations

from dataclasses import dataclass

import pytest

from batchkit.models import SubmitRequest
from batchkit.providers.aws.provider import AwsProvider
from tests.fixtures.moto_server import Cluster, put_log_lines


@dataclass(frozen=True)
class Stream:
    name: str
    first_timestamp: int


@pytest.fixture
def stream(provider: AwsProvider, cluster: Cluster) -> Stream:
    """The log stream moto reports for a submitted job, filled by hand with 250 lines."""
    job = provider.submit(SubmitRequest(name="hello", command=("echo", "hi")))
    [described] = provider.describe_jobs([job.job_id])
    assert described.log_stream == f"{cluster.job_definition_name}/default/{job.job_id}"
    assert described.log_group == "/aws/batch/job"
    first = put_log_lines(described.log_group, described.log_stream, 250)
    return Stream(described.log_stream, first)


def test_head(provider: AwsProvider, stream: Stream) -> None:
    page = provider.get_log_events(stream.name, start_from_head=True, limit=3)
    assert [e.message for e in page.events] == ["line 0", "line 1", "line 2"]
    assert page.events[0].timestamp == stream.first_timestamp


def test_tail(provider: AwsProvider, stream: Stream) -> None:
    page = provider.get_log_events(stream.name, start_from_head=False, limit=2)
    assert [e.message for e in page.events] == ["line 248", "line 249"]


def test_all_by_paging_until_the_token_repeats(provider: AwsProvider, stream: Stream) -> None:
    lines: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = provider.get_log_events(stream.name, limit=100, next_token=token)
        pages += 1
        lines.extend(e.message for e in page.events)
        if page.next_forward_token == token:
            break
        token = page.next_forward_token
    assert lines == [f"line {i}" for i in range(250)]
    assert pages == 4  # 100 + 100 + 50 + the empty page whose token repeats


def test_missing_stream_or_group_is_an_empty_page(provider: AwsProvider) -> None:
    page = provider.get_log_events("pc-test-jd/default/nope")
    assert page.events == [] and page.next_forward_token is None
    page = provider.get_log_events("s", group="/no/such/group", next_token="f/123")
    assert page.events == [] and page.next_forward_token == "f/123"

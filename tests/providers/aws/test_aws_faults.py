"""500 submissions under 30 % injected throttling (and some lost answers): exactly 500 jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3

from batchkit.models import SubmitRequest
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.session import AwsSession
from tests.fixtures.moto_server import Cluster
from tests.providers.aws.conftest import Sleeper
from tests.providers.aws.faults import Faults


def test_500_submissions_under_throttling_make_exactly_500_jobs(
    make_session: Callable[..., AwsSession], cluster: Cluster, tmp_path: Path, sleeper: Sleeper
) -> None:
    faults = Faults(throttle=0.30, server_error=0.03, lost=0.05, seed=11)
    session = make_session(hooks=faults.hooks("batch"), cluster=cluster.name)
    _, info = discover(cluster.name, session_factory=lambda *a: session, cli_config=tmp_path / "x")
    provider = AwsProvider(session, info)

    def submit(i: int) -> str:
        request = SubmitRequest(name=f"job-{i % 7}", command=("true",), client_token=f"token-{i}")
        return provider.submit(request).job_id

    # One submitter thread: in-process moto is not thread-safe (a ListJobs that iterates while
    # another thread's SubmitJob inserts can fail inside moto), and the point here is retries and
    # idempotency, not concurrency (the rate limiter's thread test covers that).
    returned = [submit(i) for i in range(500)]

    batch = boto3.client("batch")
    listed = [
        s
        for page in batch.get_paginator("list_jobs").paginate(
            jobQueue=cluster.job_queue, jobStatus="SUCCEEDED"
        )
        for s in page["jobSummaryList"]
    ]
    assert len(listed) == 500
    assert sorted(s["jobId"] for s in listed) == sorted(returned)
    tokens = [
        job["tags"]["batchkit:client-token"]
        for i in range(0, 500, 100)
        for job in batch.describe_jobs(jobs=returned[i : i + 100])["jobs"]
    ]
    assert sorted(tokens) == sorted(f"token-{i}" for i in range(500))
    assert faults.injected["throttle"] > 100
    assert faults.injected["lost"] > 0
    assert sleeper.calls  # backed off (through the injected sleep, never for real)

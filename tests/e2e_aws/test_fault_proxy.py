"""Exactly once through a proxy that fails 30 % of the requests the way AWS does (a third
throttled, a third 500 before the service acts, a third answered 500 or dropped AFTER it acted):
every submission makes one job, and a cluster's stack is created or deleted completely."""

from __future__ import annotations

import collections
import random

import boto3
import pytest

import batchkit
from batchkit.clusters.stacks import ClusterStacks
from batchkit.infra.config import parse_cluster_config
from batchkit.infra.naming import Names, bucket_name
from batchkit.providers.aws import discovery
from batchkit.providers.aws.ratelimit import RateLimiter
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.moto_batch import MOTO_AS_AWS
from tests.fixtures.moto_server import REGION, Cluster
from tests.infra.moto_cluster import (
    example_config_text,
    moto_network,
    offline_parameters,
    remaining,
)

SUBMISSIONS = 500


def _no_wait(seconds: float) -> None:
    """Backoff without sleeping: the proxy answers at once, waiting would only slow the test."""


def _session_factory(profile: str | None, region: str | None, cluster: str) -> AwsSession:
    return AwsSession(
        profile=profile,
        region=region,
        cluster=cluster,
        limiter=RateLimiter(sleep=_no_wait),
        retry=RetryPolicy(sleep=_no_wait, rng=random.Random(3)),
    )


@pytest.fixture
def through_proxy(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """Every batchkit call of this test goes through the proxy and backs off without sleeping."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
    monkeypatch.setitem(discovery.discover.__kwdefaults__, "session_factory", _session_factory)
    return fault_proxy


def _all_jobs(endpoint: str, queue: str) -> list[dict[str, object]]:
    batch = boto3.client("batch", region_name=REGION, endpoint_url=endpoint)
    return [
        summary
        for page in batch.get_paginator("list_jobs").paginate(
            jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
        )
        for summary in page["jobSummaryList"]
    ]


def test_500_submissions_through_the_fault_proxy_make_exactly_500_jobs(
    pc_cluster: Cluster, through_proxy: FaultProxy, moto_endpoint: str
) -> None:
    cluster = batchkit.connect(pc_cluster.name)
    returned = [cluster.submit(["true"], name=f"job-{i}").job_id for i in range(SUBMISSIONS)]

    jobs = _all_jobs(moto_endpoint, pc_cluster.job_queue)
    names = collections.Counter(str(job["jobName"]) for job in jobs)
    assert len(jobs) == SUBMISSIONS
    assert [name for name, count in names.items() if count > 1] == []
    assert sorted(str(job["jobId"]) for job in jobs) == sorted(returned)
    submit_faults = through_proxy.faults_by_operation.get("batch.submitjob", 0)
    assert through_proxy.counts["after"] > 50 and submit_faults > 50


def test_cluster_create_and_delete_through_the_fault_proxy(
    moto_endpoint_with_managed_policies: str,
) -> None:
    """Every CloudFormation, S3, ECR, IAM, Batch and Logs call of `cluster create` and `cluster
    delete` meets the proxy's faults: the stack ends complete, then cleanly gone."""
    config = parse_cluster_config(example_config_text(moto_network()))
    parameters = offline_parameters()
    lost = {"cloudformation.CreateStack": "after", "cloudformation.DeleteStack": "after"}
    with FaultProxy(moto_endpoint_with_managed_policies, rate=0.3, seed=8, first=lost) as proxy:
        session = AwsSession(
            region=REGION,
            endpoint_url=proxy.url,
            limiter=RateLimiter(sleep=_no_wait),
            retry=RetryPolicy(sleep=_no_wait, rng=random.Random(4)),
            hooks=MOTO_AS_AWS,
        )
        stacks = ClusterStacks(session, sleep=_no_wait)
        created = stacks.create(config, parameters)
        assert created.status == "CREATE_COMPLETE"
        cfn = boto3.client("cloudformation", region_name=REGION)
        live = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]
        assert live == ["research"]
        deleted = stacks.delete("research")
        assert deleted.status == "DELETE_COMPLETE"
        assert deleted.leftovers == []
    assert proxy.faults > 10
    assert proxy.faults_by_operation["cloudformation.CreateStack"] >= 1
    assert set(remaining("research", bucket_name("research", "123456789012", REGION)).values()) == {
        0
    }


def test_cluster_delete_reports_what_it_could_not_check_behind_the_proxy(
    moto_endpoint_with_managed_policies: str,
) -> None:
    """Every Lambda request fails at the proxy (throttled, 500, or its answer lost): the delete
    still completes, and the Lambda functions are reported "not checked", never as gone."""
    config = parse_cluster_config(example_config_text(moto_network()))

    def session(endpoint: str) -> AwsSession:
        return AwsSession(
            region=REGION,
            endpoint_url=endpoint,
            limiter=RateLimiter(sleep=_no_wait),
            retry=RetryPolicy(sleep=_no_wait, rng=random.Random(5)),
            hooks=MOTO_AS_AWS,
        )

    direct = ClusterStacks(session(moto_endpoint_with_managed_policies), sleep=_no_wait)
    assert direct.create(config, offline_parameters()).status == "CREATE_COMPLETE"
    with FaultProxy(moto_endpoint_with_managed_policies, rate=1.0, services={"lambda"}) as proxy:
        deleted = ClusterStacks(session(proxy.url), sleep=_no_wait).delete("research")
    assert deleted.status == "DELETE_COMPLETE"
    [unchecked] = deleted.leftovers
    assert unchecked.startswith(
        f"Lambda functions {', '.join(Names('research').lambda_functions)} (not checked: "
    )
    assert proxy.faults_by_operation["lambda.functions"] == 10  # every attempt of the check

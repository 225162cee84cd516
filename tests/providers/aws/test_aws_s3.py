from __future__ import annotations

import boto3

from batchkit.providers.aws.provider import AwsProvider
from tests.fixtures.moto_server import Cluster


def test_the_cluster_bucket_is_the_object_store(provider: AwsProvider, cluster: Cluster) -> None:
    store = provider.objects
    key = f"{provider.artifact_root}/batch/job-x-1/x.sh"
    assert provider.artifact_root == cluster.artifact_root
    assert store.url(key) == f"s3://{cluster.bucket}/{key}"
    assert not store.exists(key)
    store.put(key, b"#!/bin/sh\necho 'hi' \"$@\"\n")
    assert store.exists(key)
    assert store.get(key) == b"#!/bin/sh\necho 'hi' \"$@\"\n"
    body = boto3.client("s3").get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    assert body.startswith(b"#!/bin/sh")
    assert store.keys(f"{provider.artifact_root}/batch/") == [key]

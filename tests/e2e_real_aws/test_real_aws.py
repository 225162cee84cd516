"""The installed `batchkit` against a real cluster: sub, stat, out, kill, queues.

Opt-in (see conftest.py and docs/aws.md): `BATCHKIT_TEST_AWS_CLUSTER=NAME pytest -m aws
tests/e2e_real_aws`. Each test submits a few tiny jobs (`echo`, `sleep`) named `bk-e2e-*` to the
cluster's default queue and waits for them, so the cluster's compute environment must be able to
start an instance (or Fargate task) and its default image must have `/bin/sh`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from tests.e2e_real_aws.conftest import RealAws

pytestmark = pytest.mark.aws

SUBMITTED = re.compile(r"Job ([0-9a-f-]{36}) \((.+)\) has been submitted\.")


def unique(prefix: str) -> str:
    return f"bk-e2e-{prefix}-{uuid.uuid4().hex[:8]}"


def submit(aws: RealAws, name: str, *args: str) -> str:
    result = aws.batchkit("sub", "-jn", name, *args)
    assert result.code == 0, result.err
    match = SUBMITTED.search(result.out)
    assert match and match[2] == name, result.out
    return match[1]


def described(aws: RealAws, *ids: str) -> list[dict[str, Any]]:
    result = aws.batchkit("stat", "--json", *ids)
    assert result.code == 0, result.err
    jobs: list[dict[str, Any]] = json.loads(result.out)
    return jobs


def test_queues_lists_the_clusters_queues(real_aws: RealAws) -> None:
    result = real_aws.batchkit("queues", "--json")
    assert result.code == 0, result.err
    queues = json.loads(result.out)
    assert queues, "the cluster has no queue"
    assert all(q["jobQueueArn"].startswith("arn:aws") for q in queues)
    assert any(q["state"] == "ENABLED" and q["status"] == "VALID" for q in queues)


def test_a_job_runs_and_its_output_comes_back(real_aws: RealAws) -> None:
    name = unique("echo")
    token = uuid.uuid4().hex
    job_id = submit(real_aws, name, "--wait", "--", "echo", f"hello {token}", "it's $(x)")
    [job] = described(real_aws, job_id)
    assert job["status"] == "SUCCEEDED" and job["exitCode"] == 0
    assert job["logStream"] and job["consoleUrl"]
    assert job["s3FolderUrl"].startswith("s3://")
    out = real_aws.batchkit("out", "--raw", job_id)
    assert out.code == 0, out.err
    assert f"hello {token} it's $(x)" in out.out.splitlines()  # arguments arrive byte-exact


def test_stat_lists_and_expands_an_array(real_aws: RealAws) -> None:
    name = unique("array")
    job_id = submit(real_aws, name, "-a", "2", "--wait", "--", "sh", "-c", "echo child")
    table = real_aws.batchkit("stat", job_id)
    assert table.code == 0, table.err
    assert f"{job_id} [2]" in table.out
    listed = real_aws.batchkit("stat", "-s", "ALL", "-e", "--json")
    assert listed.code == 0, listed.err
    ids = {job["jobId"] for job in json.loads(listed.out)}
    assert {f"{job_id}:0", f"{job_id}:1"} <= ids
    assert job_id not in ids  # expanded: the parent is replaced by its children


def test_kill_ends_a_running_job(real_aws: RealAws) -> None:
    job_id = submit(real_aws, unique("kill"), "--", "sleep", "900")
    killed = real_aws.batchkit("kill", "--json", "-r", "batchkit e2e", job_id)
    assert killed.code == 0, killed.err
    [outcome] = json.loads(killed.out)
    assert outcome["outcome"] in ("cancellation", "termination")
    # `out --stream` ends once the job is final (it says so when it never started)
    follow = real_aws.batchkit("out", "-s", "-sp", "10", job_id)
    assert follow.code in (0, 1), follow.err
    [job] = described(real_aws, job_id)
    assert job["status"] == "FAILED"
    assert "batchkit e2e" in (job["statusReason"] or "")


def test_an_unknown_job_is_reported_not_a_traceback(real_aws: RealAws) -> None:
    result = real_aws.batchkit("stat", "00000000-0000-0000-0000-000000000000")
    assert result.code != 0
    assert "Traceback" not in result.err
    assert "00000000-0000-0000-0000-000000000000" in result.out + result.err

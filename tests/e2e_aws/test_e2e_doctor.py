"""`batchkit doctor` end to end: the installed command against a moto server."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.e2e_aws.conftest import Run
from tests.e2e_aws.test_e2e_cli import submit
from tests.fixtures.moto_server import Cluster, put_log_lines


def test_the_cluster_check_finds_the_private_subnet(batchkit: Run, pc_cluster: Cluster) -> None:
    # moto's default VPC has no route to an internet gateway: the compute environment's subnet
    # is private, without NAT or VPC endpoints.
    result = batchkit("doctor", "-c", "pc-test")
    assert result.code == 1, result.err
    assert result.out.startswith("batchkit doctor: cluster pc-test\n")
    assert "PROBLEM     compute environment pc-test-ce: network" in result.out
    assert "no VPC endpoint for ecr.api, ecr.dkr, s3, logs" in result.out
    assert "fix:  give the subnets a route to a NAT gateway" in result.out
    assert "ok          queue pc-test-queue: ENABLED, VALID" in result.out
    assert result.out.rstrip().endswith("1 problem found")


def test_json_and_a_disabled_queue(batchkit: Run, pc_cluster: Cluster) -> None:
    boto3.client("batch").update_job_queue(jobQueue=pc_cluster.job_queue, state="DISABLED")
    result = batchkit("doctor", "-c", "pc-test", "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["subject"] == "cluster pc-test" and report["problem"] is True
    first = report["findings"][0]
    assert first["rule"] == "queue-state" and first["verdict"] == "problem"
    assert "DISABLED" in first["seen"] and "update-job-queue" in first["fix"]
    assert {f["verdict"] for f in report["findings"]} <= {"problem", "warning", "ok", "not checked"}


def test_a_succeeded_job_exits_0(batchkit: Run, pc_cluster: Cluster) -> None:
    job_id = submit(batchkit, "-jn", "fine", "--", "true")
    result = batchkit("doctor", "-c", "pc-test", job_id)
    assert result.code == 0, result.err
    assert f"batchkit doctor: job {job_id} (SUCCEEDED)" in result.out
    assert "ok          status: the job succeeded" in result.out


def test_a_failed_job_shows_the_end_of_its_log(
    batchkit: Run, pc_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # the server runs in this process
    job_id = submit(batchkit, "-jn", "broken", "--", "false")
    stream = f"{pc_cluster.job_definition_name}/default/{job_id}"
    put_log_lines("/aws/batch/job", stream, 15, text="step {i}")
    result = batchkit("doctor", "-c", "pc-test", job_id, "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["status"] == "FAILED"
    failure = next(f for f in report["findings"] if f["rule"] == "failure")
    assert failure["details"] == [f"step {i}" for i in range(5, 15)]


def test_an_unknown_job_and_a_bad_age(batchkit: Run, pc_cluster: Cluster) -> None:
    missing = batchkit("doctor", "-c", "pc-test", "0000-no-such-job")
    assert missing.code == 3 and "error: job 0000-no-such-job not found" in missing.err
    bad = batchkit("doctor", "-c", "pc-test", "--older-than", "soon")
    assert bad.code == 2
    assert bad.err.splitlines()[0] == "error: --older-than 'soon' is not a duration"
    assert bad.err.splitlines()[1].startswith("hint: ")

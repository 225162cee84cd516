"""The installed `batchkit` command against a ParallelCluster-style cluster on a moto server."""

from __future__ import annotations

import re

import boto3
import pytest

from tests.e2e_aws.conftest import Run
from tests.fixtures.moto_server import Cluster, create_cluster, put_log_lines

SUBMITTED = re.compile(r"Job ([0-9a-f-]{36}) \((.+)\) has been submitted\.")


def submit(batchkit: Run, *args: str, stdin: str | None = None) -> str:
    result = batchkit("sub", "-c", "pc-test", *args, stdin=stdin)
    assert result.code == 0, result.err
    match = SUBMITTED.search(result.out)
    assert match, result.out
    return match[1]


def test_sub_stages_the_job_folder_and_submits(batchkit: Run, pc_cluster: Cluster) -> None:
    job_id = submit(batchkit, "-jn", "hello", "--", "echo", "it's", "$(x)")
    details = batchkit("stat", "-c", "pc-test", job_id)
    assert details.code == 0, details.err
    assert f"jobId                    : {job_id}" in details.out
    assert "status                   : SUCCEEDED" in details.out
    folder = re.search(r"s3FolderUrl\s+: (s3://\S+)", details.out)
    assert folder, details.out
    assert folder[1].startswith(
        f"s3://{pc_cluster.bucket}/{pc_cluster.artifact_root}/batch/job-hello-"
    )
    assert "console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEventViewer" in details.out
    job = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["container"]["command"][-3:] == ["echo", "it's", "$(x)"]  # byte-exact
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["PCLUSTER_JOB_S3_URL"] == folder[1]


def test_a_script_from_stdin_lands_in_s3(batchkit: Run, pc_cluster: Cluster) -> None:
    job_id = submit(batchkit, "-jn", "piped", stdin="echo from stdin\n")
    job = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    prefix = env["PCLUSTER_JOB_S3_URL"].removeprefix(f"s3://{pc_cluster.bucket}/")
    body = boto3.client("s3").get_object(Bucket=pc_cluster.bucket, Key=f"{prefix}piped.sh")
    assert body["Body"].read() == b"echo from stdin\n"


def test_stat_lists_and_expands_arrays(batchkit: Run, pc_cluster: Cluster) -> None:
    single = submit(batchkit, "-jn", "one", "--", "true")
    array = submit(batchkit, "-jn", "arr", "-a", "3", "--", "true")
    table = batchkit("stat", "-c", "pc-test", "-s", "ALL")
    assert table.code == 0, table.err
    assert single in table.out and f"{array} [3]" in table.out
    assert f"{array}:0" not in table.out
    expanded = batchkit("stat", "-c", "pc-test", "-s", "ALL", "-e")
    assert all(f"{array}:{i}" in expanded.out for i in range(3))
    assert f"{array} [3]" not in expanded.out
    active = batchkit("stat", "-c", "pc-test")
    assert active.code == 0 and single not in active.out


def test_out_prints_the_stream(batchkit: Run, pc_cluster: Cluster) -> None:
    job_id = submit(batchkit, "-jn", "talk", "--", "true")
    stream = f"{pc_cluster.job_definition_name}/default/{job_id}"
    put_log_lines("/aws/batch/job", stream, 30, endpoint_url=None)
    everything = batchkit("out", "-c", "pc-test", job_id)
    assert everything.code == 0, everything.err
    lines = everything.out.splitlines()
    assert len(lines) == 30 and lines[0].endswith("line 0") and lines[-1].endswith("line 29")
    head = batchkit("out", "-c", "pc-test", "-hd", "2", job_id)
    assert [line.split(": ", 1)[1] for line in head.out.splitlines()] == ["line 0", "line 1"]
    tail = batchkit("out", "-c", "pc-test", "-t", "1", job_id)
    assert tail.out.strip().endswith("line 29")


def test_kill_a_finished_job(batchkit: Run, pc_cluster: Cluster) -> None:
    job_id = submit(batchkit, "-jn", "done", "--", "true")
    result = batchkit("kill", "-c", "pc-test", job_id)
    assert result.code == 0, result.err
    assert f"Job ({job_id}) is already in (SUCCEEDED) status." in result.out + result.err


def test_queues_and_hosts(batchkit: Run, pc_cluster: Cluster) -> None:
    queues = batchkit("queues", "-c", "pc-test")
    assert queues.code == 0, queues.err
    assert "pc-test-queue" in queues.out and "VALID" in queues.out
    hosts = batchkit("hosts", "-c", "pc-test")
    assert hosts.code == 0, hosts.err
    assert "ec2InstanceId" in hosts.out


def test_an_unknown_cluster_is_exit_code_3_with_a_hint(batchkit: Run, pc_cluster: Cluster) -> None:
    result = batchkit("stat", "-c", "nope")
    assert result.code == 3
    assert "no cluster named 'nope'" in result.err
    assert "hint:" in result.err


def test_a_batchkit_stack_with_its_own_log_group(batchkit: Run, moto_endpoint: str) -> None:
    create_cluster("pc-test", endpoint_url=moto_endpoint, batchkit=True, log_group="/bk/jobs")
    job_id = submit(batchkit, "-jn", "bk", "--", "true")
    put_log_lines("/bk/jobs", f"pc-test-jd/default/{job_id}", 3)
    result = batchkit("out", "-c", "pc-test", job_id)
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1].endswith("line 2")


def test_missing_credentials_are_exit_code_4_with_a_hint(
    batchkit: Run, pc_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role lookup either
    result = batchkit("stat", "-c", "pc-test")
    assert result.code == 4, result.err
    assert "no usable AWS credentials were found" in result.err
    assert "hint:" in result.err and "aws configure" in result.err

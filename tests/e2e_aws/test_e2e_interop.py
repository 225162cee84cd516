"""Interop with aws-parallelcluster-awsbatch-cli 1.6.0 on the same cluster.

Jobs submitted by awsbsub show correctly in `batchkit stat`/`out`; jobs submitted by `batchkit
sub` show correctly in awsbstat/awsbout. Both read the cluster from its CloudFormation stack.
"""

from __future__ import annotations

import re

import boto3

from tests.e2e_aws.conftest import Run
from tests.fixtures.moto_server import Cluster, put_log_lines

SUBMITTED = re.compile(r"Job ([0-9a-f-]{36}) \((.+)\) has been submitted\.")


def job_id_of(text: str) -> str:
    match = SUBMITTED.search(text)
    assert match, text
    return match[1]


def detail(text: str, key: str) -> str:
    match = re.search(rf"^{re.escape(key)}\s*: (.*)$", text, re.MULTILINE)
    assert match, text
    return match[1].strip()


def test_awsbsub_jobs_show_in_batchkit(awsb: Run, batchkit: Run, pc_cluster: Cluster) -> None:
    inline = awsb("awsbsub", "-c", "pc-test", "-jn", "inline", "echo", "hello", tty=True)
    assert inline.code == 0, inline.out + inline.err
    inline_id = job_id_of(inline.out)
    piped = awsb("awsbsub", "-c", "pc-test", "-jn", "piped", stdin="echo hi\n")
    assert piped.code == 0, piped.err
    piped_id = job_id_of(piped.out)
    array = awsb("awsbsub", "-c", "pc-test", "-jn", "arr", "-a", "3", "true", tty=True)
    array_id = job_id_of(array.out)

    table = batchkit("stat", "-c", "pc-test", "-s", "ALL")
    assert table.code == 0, table.err
    for job_id, name in ((inline_id, "inline"), (piped_id, "piped")):
        row = next(line for line in table.out.splitlines() if line.startswith(job_id))
        assert name in row and "SUCCEEDED" in row
    assert f"{array_id} [3]" in table.out

    details = batchkit("stat", "-c", "pc-test", piped_id)
    folder = detail(details.out, "s3FolderUrl")
    assert folder.startswith(
        f"s3://{pc_cluster.bucket}/{pc_cluster.artifact_root}/batch/job-piped-"
    )
    key = folder.removeprefix(f"s3://{pc_cluster.bucket}/") + "piped.sh"
    assert boto3.client("s3").get_object(Bucket=pc_cluster.bucket, Key=key)["Body"].read() == (
        b"echo hi\n"
    )
    assert detail(details.out, "logStream") == f"pc-test-jd/default/{piped_id}"

    put_log_lines("/aws/batch/job", f"pc-test-jd/default/{inline_id}", 5, text="hello {i}")
    out = batchkit("out", "-c", "pc-test", inline_id)
    assert out.code == 0, out.err
    assert [line.split(": ", 1)[1] for line in out.out.splitlines()] == [
        f"hello {i}" for i in range(5)
    ]


def test_batchkit_jobs_show_in_awsbatch_cli(awsb: Run, batchkit: Run, pc_cluster: Cluster) -> None:
    sub = batchkit("sub", "-c", "pc-test", "-jn", "mine", "--", "echo", "hi")
    assert sub.code == 0, sub.err
    job_id = job_id_of(sub.out)
    array = batchkit("sub", "-c", "pc-test", "-jn", "many", "-a", "2", "--", "true")
    array_id = job_id_of(array.out)

    table = awsb("awsbstat", "-c", "pc-test", "-s", "ALL")
    assert table.code == 0, table.err
    row = next(line for line in table.out.splitlines() if line.startswith(job_id))
    assert "mine" in row and "SUCCEEDED" in row
    assert array_id in table.out

    details = awsb("awsbstat", "-c", "pc-test", "-d", job_id)
    assert details.code == 0, details.err
    assert detail(details.out, "jobName") == "mine"
    assert detail(details.out, "jobQueue") == "pc-test-queue"
    folder = detail(details.out, "s3FolderUrl")
    assert folder.startswith(f"s3://{pc_cluster.bucket}/{pc_cluster.artifact_root}/batch/job-mine-")
    assert detail(details.out, "logStream") == f"pc-test-jd/default/{job_id}"

    put_log_lines("/aws/batch/job", f"pc-test-jd/default/{job_id}", 4, text="out {i}")
    out = awsb("awsbout", "-c", "pc-test", job_id)
    assert out.code == 0, out.err
    assert [line.split(": ", 1)[1] for line in out.out.splitlines()] == [
        f"out {i}" for i in range(4)
    ]

    kill = awsb("awsbkill", "-c", "pc-test", job_id)
    assert f"Job ({job_id}) is already in (SUCCEEDED) status." in kill.out

from __future__ import annotations

import pytest

from batchkit.models import JobKind, JobStatus
from batchkit.providers.aws.batch import LogTarget, in_parallel, job_from_detail, job_from_summary

LOGS = LogTarget("/aws/batch/job", "us-gov-west-1", "https://console.amazonaws-us-gov.com")

DETAIL = {
    "jobId": "abc",
    "jobName": "train",
    "jobQueue": "arn:aws:batch:us-gov-west-1:1:job-queue/gpu",
    "jobDefinition": "arn:aws:batch:us-gov-west-1:1:job-definition/jd:2",
    "status": "FAILED",
    "statusReason": "Essential container in task exited",
    "createdAt": 1,
    "startedAt": 2,
    "stoppedAt": 3,
    "dependsOn": [{"jobId": "x", "type": "N_TO_N"}],
    "retryStrategy": {"attempts": 2},
    "timeout": {"attemptDurationSeconds": 60},
    "attempts": [
        {
            "container": {"exitCode": 137, "reason": "OOM", "logStreamName": "jd/default/t1"},
            "startedAt": 2,
            "stoppedAt": 3,
            "statusReason": "Host EC2 (instance i-1) terminated.",
        }
    ],
    "container": {
        "image": "repo:tag",
        "command": ["/bin/sh", "-c", "x"],
        "exitCode": 137,
        "reason": "OOM",
        "logStreamName": "jd/default/t1",
        "resourceRequirements": [
            {"type": "VCPU", "value": "4"},
            {"type": "MEMORY", "value": "8192"},
            {"type": "GPU", "value": "1"},
        ],
        "environment": [{"name": "PCLUSTER_JOB_S3_URL", "value": "s3://b/k/"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/bk/jobs"}},
    },
}


def test_a_described_job_carries_what_stat_and_out_need() -> None:
    job = job_from_detail(DETAIL, LOGS)
    assert job.status is JobStatus.FAILED
    assert job.status_reason == "Essential container in task exited"
    assert (job.exit_code, job.reason) == (137, "OOM")
    assert job.queue == "gpu"
    assert (job.resources.vcpus, job.resources.memory, job.resources.gpus) == (4, 8192, 1)
    assert job.attempts[0].status_reason.startswith("Host EC2")  # type: ignore[union-attr]
    assert job.attempts[0].exit_code == 137
    assert (job.log_group, job.log_stream) == ("/bk/jobs", "jd/default/t1")
    assert job.s3_folder_url == "s3://b/k/"
    assert job.retry_attempts == 2 and job.timeout == 60
    assert job.depends_on[0].to_api() == {"jobId": "x", "type": "N_TO_N"}
    assert job.console_url == (
        "https://console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1"
        "#logEventViewer:group=/bk/jobs;stream=jd/default/t1"
    )


@pytest.mark.parametrize(
    ("domain", "region"),
    [
        ("https://console.aws.amazon.com", "eu-west-1"),
        ("https://console.amazonaws.cn", "cn-north-1"),
    ],
)
def test_console_urls_per_partition(domain: str, region: str) -> None:
    job = job_from_detail(DETAIL, LogTarget("/aws/batch/job", region, domain))
    assert job.console_url and job.console_url.startswith(
        f"{domain}/cloudwatch/home?region={region}#"
    )


def test_an_mnp_parent_takes_its_spec_from_the_node_range() -> None:
    detail = {
        "jobId": "m",
        "jobName": "mpi",
        "status": "RUNNING",
        "nodeProperties": {
            "numNodes": 4,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0:", "container": {"image": "i", "command": ["mpirun"]}}
            ],
        },
    }
    job = job_from_detail(detail, LOGS)
    assert job.kind is JobKind.MNP_PARENT and job.display_id == "m *4"
    assert job.command == ["mpirun"] and job.log_stream is None and job.console_url is None


def test_an_array_parent_has_no_log_but_a_summary() -> None:
    detail = {
        "jobId": "a",
        "jobName": "arr",
        "status": "RUNNING",
        "arrayProperties": {
            "size": 3,
            "statusSummary": {"RUNNING": 1, "SUCCEEDED": 2, "FAILED": 0},
        },
        "container": {"logStreamName": "ignored"},
    }
    job = job_from_detail(detail, LOGS)
    assert job.display_id == "a [3]"
    assert job.status_summary == {"RUNNING": 1, "SUCCEEDED": 2}
    assert job.log_stream is None


def test_summaries() -> None:
    job = job_from_summary(
        {
            "jobId": "a:1",
            "jobName": "arr",
            "status": "SUCCEEDED",
            "container": {"exitCode": 0},
            "arrayProperties": {"index": 1},
        },
        "arn:aws:batch:us-east-1:1:job-queue/q",
        "/aws/batch/job",
    )
    assert job.kind is JobKind.ARRAY_CHILD and job.exit_code == 0 and job.queue == "q"


def test_a_parent_summary_keeps_its_status_summary() -> None:
    """Batch's ListJobs summarizes an array parent's children: stat lists only those statuses."""
    job = job_from_summary(
        {
            "jobId": "a",
            "jobName": "arr",
            "status": "RUNNING",
            "arrayProperties": {"size": 5, "statusSummary": {"RUNNING": 2, "SUCCEEDED": 3}},
        },
        "q",
        "/aws/batch/job",
    )
    assert job.kind is JobKind.ARRAY_PARENT
    assert job.status_summary == {"RUNNING": 2, "SUCCEEDED": 3}


def test_in_parallel_keeps_order_and_uses_threads_only_when_allowed() -> None:
    import threading

    def where(item: int) -> tuple[int, str]:
        return item * 2, threading.current_thread().name

    here = threading.current_thread().name
    serial = in_parallel(where, [1, 2, 3], workers=1)
    assert [r for r, _ in serial] == [2, 4, 6]
    assert {t for _, t in serial} == {here}
    pooled = in_parallel(where, list(range(20)), workers=4)
    assert [r for r, _ in pooled] == [2 * i for i in range(20)]
    assert here not in {t for _, t in pooled}
    assert in_parallel(where, [], workers=4) == []

"""The environment of a local job (contract C1), checked on real jobs."""

from __future__ import annotations

from batchkit.models import Resources
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.environment import Placement, job_environment, node_address
from batchkit.providers.local.scheduler import Scheduler, process_only_selector
from tests.fixtures.local_engine import Engine, sh

HOST = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "USER": "me",
    "SECRET_TOKEN": "do-not-leak",
    "AWS_SECRET_ACCESS_KEY": "nor-this",
}


def test_base_then_request_then_batch_variables() -> None:
    env = job_environment(
        HOST,
        {"PCLUSTER_JOB_S3_URL": "s3://b/k/", "PATH": "/custom", "AWS_BATCH_JOB_ID": "spoof"},
        Placement(job_id="abc:3", attempt=2, array_index=3),
    )
    assert env == {
        "PATH": "/custom",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "USER": "me",
        "PCLUSTER_JOB_S3_URL": "s3://b/k/",
        "AWS_BATCH_JOB_ID": "abc:3",
        "AWS_BATCH_JQ_NAME": "local",
        "AWS_BATCH_CE_NAME": "local",
        "AWS_BATCH_JOB_ATTEMPT": "2",
        "AWS_BATCH_JOB_ARRAY_INDEX": "3",
    }


def test_multinode_variables() -> None:
    env = job_environment({}, {}, Placement("abc#1", 1, node_index=1, num_nodes=4, main_node=0))
    assert env["AWS_BATCH_JOB_NODE_INDEX"] == "1"
    assert env["AWS_BATCH_JOB_NUM_NODES"] == "4"
    assert env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "0"
    assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == "127.0.0.1"
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env
    # each node has an address of its own on the loopback network, and MPI stays on it
    assert env["BATCHKIT_NODE_ADDRESS"] == "127.0.0.2"
    assert env["OMPI_MCA_btl_tcp_if_include"] == env["OMPI_MCA_oob_tcp_if_include"] == "lo"


def test_node_n_is_at_127_0_0_n_plus_1_and_the_main_node_anywhere() -> None:
    assert [node_address(n) for n in (0, 1, 254, 255, 999)] == [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.255",
        "127.0.1.0",
        "127.0.3.232",
    ]
    env = job_environment({}, {}, Placement("abc#0", 1, node_index=0, num_nodes=3, main_node=2))
    assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == "127.0.0.3"
    assert env["BATCHKIT_NODE_ADDRESS"] == "127.0.0.1"
    # a job's own choice of MPI transport wins
    mine = job_environment(
        {},
        {"OMPI_MCA_btl": "self,vader,tcp"},
        Placement("a#0", 1, node_index=0, num_nodes=3, main_node=2),
    )
    assert mine["OMPI_MCA_btl"] == "self,vader,tcp"


def test_a_real_job_sees_exactly_its_environment(engine: Engine) -> None:
    engine.scheduler = Scheduler(
        engine.home,
        capacity=Capacity(2, 4096),
        clock=engine.clock,
        selector=process_only_selector,
        host_environment=HOST,
    )
    folder = "s3://batchkit-local/local/batch/job-env-1/"
    job = engine.submit(
        sh("env | sort", environment={"PCLUSTER_JOB_S3_URL": folder, "MINE": "a b 'c'"})
    )
    (done,) = engine.settle(job.job_id)
    lines = [line for line in engine.log(done) if not line.startswith(("PWD=", "SHLVL=", "_="))]
    stage = engine.home / "s3" / "batchkit-local" / "local" / "batch" / "job-env-1"
    assert lines == sorted(
        [
            "AWS_BATCH_CE_NAME=local",
            "AWS_BATCH_JOB_ATTEMPT=1",
            f"AWS_BATCH_JOB_ID={job.job_id}",
            "AWS_BATCH_JQ_NAME=local",
            f"BATCHKIT_JOB_STAGE_DIR={stage}",
            "HOME=/home/me",
            "LANG=C.UTF-8",
            "MINE=a b 'c'",
            f"PCLUSTER_JOB_S3_URL={folder}",
            "PATH=/usr/bin:/bin",
            "USER=me",
        ]
    )
    assert done.s3_folder_url == folder


def test_the_job_runs_in_its_own_working_directory(engine: Engine) -> None:
    job = engine.submit(sh("pwd; touch here", retry_attempts=2, resources=Resources(1, 64)))
    (done,) = engine.settle(job.job_id)
    (cwd,) = engine.log(done)
    expected = engine.home / "work" / job.job_id / "attempt-1"
    assert cwd == str(expected)
    assert (expected / "here").exists()

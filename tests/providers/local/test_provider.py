"""`LocalProvider` as the jobs/CLI layer sees it: validation like SubmitJob's, describe/list
shapes, idempotent submission, termination requests, queues and hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.errors import EngineError, JobNotFoundError, NotFoundError, UsageError
from batchkit.models import Dependency, DependencyType, JobKind, JobStatus, Resources
from batchkit.providers.local.provider import LocalProvider
from tests.fixtures.local_engine import Engine, sh

S = JobStatus


@pytest.fixture
def provider(isolated_environment: Path) -> LocalProvider:
    return LocalProvider(start_worker=False)


def test_identity_and_home_default_to_batchkit_home(
    provider: LocalProvider, isolated_environment: Path
) -> None:
    assert provider.home == isolated_environment
    assert (provider.cluster_name, provider.kind, provider.artifact_root) == (
        "local",
        "local",
        "local",
    )
    assert (
        provider.objects.url("local/batch/job-a-1/") == "s3://batchkit-local/local/batch/job-a-1/"
    )


def test_submit_records_the_job_as_batch_would_describe_it(provider: LocalProvider) -> None:
    folder = "s3://batchkit-local/local/batch/job-a-1/"
    job = provider.submit(
        sh(
            "echo hi",
            name="a",
            environment={"PCLUSTER_JOB_S3_URL": folder},
            resources=Resources(vcpus=2, memory=512),
            retry_attempts=3,
            timeout=120,
        )
    )
    assert job.status is S.SUBMITTED
    assert job.name == "a"
    assert job.queue == "local"
    assert job.job_definition == "batchkit-local:1"
    assert job.command == ["/bin/sh", "-c", "echo hi"]
    assert job.resources == Resources(2, 512, 0)
    assert (job.retry_attempts, job.timeout) == (3, 120)
    assert job.s3_folder_url == folder
    assert job.log_group == "/aws/batch/job"
    assert job.kind is JobKind.SINGLE
    assert len(job.job_id) == 36 and job.job_id.count("-") == 4


def test_array_and_multinode_jobs_have_children(provider: LocalProvider) -> None:
    array = provider.submit(sh("true", array_size=3))
    assert array.kind is JobKind.ARRAY_PARENT
    children = provider.list_children(array)
    assert [c.job_id for c in children] == array.child_ids()
    assert {c.kind for c in children} == {JobKind.ARRAY_CHILD}
    assert children[0].name == array.name and children[0].command == array.command
    gang = provider.submit(sh("true", nodes=2))
    assert gang.kind is JobKind.MNP_PARENT
    nodes = provider.describe_jobs(gang.child_ids())
    assert sorted(n.job_id for n in nodes) == gang.child_ids()
    assert {n.kind for n in nodes} == {JobKind.MNP_NODE}


def test_describe_leaves_unknown_ids_out(provider: LocalProvider) -> None:
    job = provider.submit(sh("true"))
    found = provider.describe_jobs(["nope", job.job_id, f"{job.job_id}:0"])
    assert [j.job_id for j in found] == [job.job_id]


def test_list_jobs_shows_top_level_jobs_by_status_and_queue(provider: LocalProvider) -> None:
    single = provider.submit(sh("true"))
    array = provider.submit(sh("true", array_size=2))
    listed = provider.list_jobs([S.SUBMITTED])
    assert [j.job_id for j in listed] == [single.job_id, array.job_id]
    assert provider.list_jobs([S.RUNNING]) == []
    assert provider.list_jobs([S.SUBMITTED], queue="other") == []
    assert len(provider.list_jobs([S.SUBMITTED], queue="local")) == 2


def test_client_token_makes_a_retried_submission_idempotent(provider: LocalProvider) -> None:
    first = provider.submit(sh("true", client_token="tok-1"))
    again = provider.submit(sh("true", client_token="tok-1"))
    other = provider.submit(sh("true", client_token="tok-2"))
    assert again.job_id == first.job_id
    assert other.job_id != first.job_id
    assert len(provider.list_jobs(list(S))) == 2


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"array_size": 1}, "array size"),
        ({"array_size": 10_001}, "array size"),
        ({"retry_attempts": 0}, "retry attempts"),
        ({"retry_attempts": 11}, "retry attempts"),
        ({"timeout": 59}, "timeout"),
        ({"timeout": 2**31}, "timeout"),
        ({"nodes": 1_001}, "node count"),
        ({"array_size": 2, "nodes": 2}, "both an array and a multi-node"),
        ({"resources": Resources(vcpus=0)}, "invalid resources"),
        ({"tags": {"batchkit:executor": "vm"}}, "unknown executor"),
        ({"depends_on": (Dependency(None, DependencyType.SEQUENTIAL),)}, "SEQUENTIAL"),
    ],
)
def test_invalid_submissions_are_refused_before_anything_is_recorded(
    provider: LocalProvider, fields: dict[str, object], words: str
) -> None:
    with pytest.raises(UsageError) as caught:
        provider.submit(sh("true", **fields))  # type: ignore[arg-type]
    assert words in str(caught.value)
    assert caught.value.hint
    assert provider.list_jobs(list(S)) == []


def test_unknown_queue_and_dependency_are_not_found(provider: LocalProvider) -> None:
    with pytest.raises(NotFoundError):
        provider.submit(sh("true", queue="gpu"))
    with pytest.raises(JobNotFoundError):
        provider.submit(sh("true", depends_on=(Dependency("no-such-job"),)))


def test_n_to_n_needs_arrays_of_the_same_size(provider: LocalProvider) -> None:
    array = provider.submit(sh("true", array_size=3))
    n_to_n = (Dependency(array.job_id, DependencyType.N_TO_N),)
    with pytest.raises(UsageError):
        provider.submit(sh("true", array_size=2, depends_on=n_to_n))
    with pytest.raises(UsageError):
        provider.submit(sh("true", depends_on=n_to_n))
    assert provider.submit(sh("true", array_size=3, depends_on=n_to_n)).depends_on == list(n_to_n)


def test_terminate_unknown_job_is_not_found(provider: LocalProvider) -> None:
    with pytest.raises(JobNotFoundError):
        provider.terminate_job("nope", "Terminated by the user")


def test_one_queue_named_local(provider: LocalProvider) -> None:
    (queue,) = provider.queues()
    assert (queue.name, queue.state, queue.status) == ("local", "ENABLED", "VALID")
    assert queue.arn.endswith("job-queue/local")
    assert queue.compute_environments == ("local",)
    assert provider.queues(["local"]) == [queue]
    assert provider.queues(["other"]) == []


def test_hosts_report_capacity_usage_and_executor(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = engine.submit(
        sh(f"while [ ! -e {gate} ]; do sleep 0.01; done", resources=Resources(1.5, 1000))
    )
    queued = engine.submit(sh("true", resources=Resources(1, 128)))
    engine.scheduler.tick()
    provider = LocalProvider(engine.home, start_worker=False, capacity=engine.scheduler.capacity)
    (host,) = provider.hosts()
    assert (host.registered_vcpus, host.registered_memory, host.registered_gpus) == (2, 4096, 0)
    assert (host.available_vcpus, host.available_memory) == (0.5, 3096)
    assert (host.running_jobs, host.pending_jobs) == (1, 1)
    assert host.private_ip == "127.0.0.1"
    assert host.executor
    gate.touch()
    engine.settle(job.job_id, queued.job_id)
    (host,) = provider.hosts()
    assert (host.available_vcpus, host.running_jobs, host.pending_jobs) == (2, 0, 0)


def test_an_unusable_home_is_an_engine_error(tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a directory")
    with pytest.raises(EngineError) as caught:
        LocalProvider(home, start_worker=False).list_jobs([S.RUNNING])
    assert "BATCHKIT_HOME" in (caught.value.hint or "")


def test_a_bad_capacity_variable_is_reported_before_a_worker_starts(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHKIT_LOCAL_VCPUS", "many")
    provider = LocalProvider()
    with pytest.raises(UsageError) as caught:
        provider.submit(sh("true"))
    assert "BATCHKIT_LOCAL_VCPUS" in str(caught.value)
    assert provider.spawned == []
    assert provider.list_jobs(list(S)) == []

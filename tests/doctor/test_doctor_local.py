"""The doctor on the real local engine: capacity, the worker, the Docker engine and images."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from batchkit.api import Cluster
from batchkit.doctor.findings import Verdict
from batchkit.models import JobStatus, Resources
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import worker_pid
from tests.fixtures.local_engine import Engine, sh, wait_until


def test_a_job_larger_than_the_machine_is_cannot_place_with_the_variable(engine: Engine) -> None:
    job = engine.submit(sh("true", resources=Resources(vcpus=8, memory=1024)))
    [failed] = engine.settle(job.job_id)
    assert failed.status is JobStatus.FAILED
    report = Cluster(engine.provider).doctor(job.job_id)
    lead = report.leading
    assert lead is not None and lead.rule == "failure" and lead.verdict is Verdict.PROBLEM
    assert "CannotPlaceJob" in lead.seen and "BATCHKIT_LOCAL_VCPUS" in (lead.fix or "")


def test_no_worker_running_leads(isolated_environment: Path) -> None:
    provider = LocalProvider(isolated_environment, start_worker=False)
    job = provider.submit(sh("true"))
    report = Cluster(provider).doctor(job.job_id)
    lead = report.leading
    assert lead is not None and lead.rule == "local-worker"
    assert "no worker runs" in lead.seen and "batchkit local worker" in (lead.fix or "")


def test_a_job_waits_for_capacity_held_by_a_running_job(
    background_provider: Callable[..., LocalProvider],
) -> None:
    provider = background_provider(capacity=Capacity(vcpus=2, memory=4096, gpus=0))
    busy = provider.submit(sh("sleep 20", resources=Resources(vcpus=2, memory=512)))
    wait_until(lambda: provider.describe_jobs([busy.job_id])[0].status is JobStatus.RUNNING)
    waiting = provider.submit(sh("true", name="second", resources=Resources(vcpus=2, memory=512)))
    wait_until(lambda: provider.describe_jobs([waiting.job_id])[0].status is JobStatus.RUNNABLE)
    report = Cluster(provider).doctor(waiting.job_id)
    [found] = [f for f in report.findings if f.rule == "local-capacity"]
    assert found.verdict is Verdict.WARNING
    assert "1 running jobs leave 0 vCPUs" in found.seen
    [worker] = [f for f in report.findings if f.rule == "local-worker"]
    assert worker.verdict is Verdict.OK
    assert not report.has_problem
    provider.terminate_job(busy.job_id, "test over")


def test_a_crashed_worker(background_provider: Callable[..., LocalProvider]) -> None:
    provider = background_provider()
    job = provider.submit(sh("sleep 3"))
    wait_until(lambda: provider.describe_jobs([job.job_id])[0].status is JobStatus.RUNNING)
    pid = worker_pid(provider.home)
    assert pid is not None and pid > 0 and any(p.pid == pid for p in provider.spawned)
    os.kill(pid, signal.SIGKILL)  # the worker this test started
    wait_until(lambda: worker_pid(provider.home) is None)
    report = Cluster(provider).doctor(job.job_id)
    lead = report.leading
    assert lead is not None and lead.rule == "local-worker" and lead.verdict is Verdict.PROBLEM
    assert "the worker that ran it stopped" in lead.seen
    cluster_report = Cluster(provider).doctor()
    assert any(f.rule == "local-worker" and "crashed" in f.seen for f in cluster_report.problems)


def test_a_missing_image(
    isolated_environment: Path, docker_engine: object, docker_host: str
) -> None:
    provider = LocalProvider(isolated_environment, start_worker=False)
    job = provider.submit(sh("true", image="batchkit-base/absent:never"))
    report = Cluster(provider).doctor(job.job_id)
    [found] = [f for f in report.findings if f.rule == "local-docker"]
    assert (
        found.verdict is Verdict.PROBLEM and "has no image batchkit-base/absent:never" in found.seen
    )


def test_no_docker_engine(isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{isolated_environment}/nowhere.sock")
    provider = LocalProvider(isolated_environment, start_worker=False)
    job = provider.submit(sh("true", image="batchkit-base/busybox:latest"))
    report = Cluster(provider).doctor(job.job_id)
    [found] = [f for f in report.findings if f.rule == "local-docker"]
    assert found.verdict is Verdict.WARNING and "no Docker engine answers" in found.seen


def test_dependencies_waiting_on_the_local_engine(isolated_environment: Path) -> None:
    from batchkit.models import Dependency

    provider = LocalProvider(isolated_environment, start_worker=False)
    first = provider.submit(sh("true", name="first"))
    second = provider.submit(sh("true", name="second", depends_on=(Dependency(first.job_id),)))
    report = Cluster(provider).doctor(second.job_id)
    [found] = [f for f in report.findings if f.rule == "dependencies"]
    assert f"{first.job_id} (first) SUBMITTED" in found.seen

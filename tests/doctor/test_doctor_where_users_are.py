"""The doctor where users already are: `sub --wait`/`--follow` and `Job.wait()` say why a job
stays RUNNABLE (once), `stat JOB` says why in one line, `Job.doctor()` returns the findings."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from batchkit.api import Cluster
from batchkit.cli.app import app
from batchkit.cli.context import CliEnv
from batchkit.jobs.progress import TextProgress
from batchkit.jobs.waiting import StuckWatch
from batchkit.models import Job, JobStatus
from batchkit.providers.aws.discovery import discover
from batchkit.providers.aws.provider import AwsProvider
from batchkit.providers.aws.ratelimit import RateLimiter
from batchkit.providers.aws.session import AwsSession, RetryPolicy
from tests.doctor.moto_setup import SeenBatch
from tests.fixtures.moto_server import SIMPLE_CONFIG, create_cluster

NOW = 1_800_000_000.0


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_tick: list[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in self.on_tick:
            hook(self.now)


def test_a_stuck_watch_fires_once_after_the_threshold() -> None:
    clock = Clock()
    fired: list[str] = []
    watch = StuckWatch(600, lambda job: fired.append(job.job_id), clock=clock)
    runnable = Job("j1", "x", JobStatus.RUNNABLE)
    watch.see(runnable)
    clock.sleep(599)
    watch.see(runnable)
    assert fired == []
    watch.see(Job("j1", "x", JobStatus.STARTING))  # a break starts the count again
    clock.sleep(10)
    watch.see(runnable)
    clock.sleep(599)
    watch.see(runnable)
    assert fired == []
    clock.sleep(1)
    watch.see(runnable)
    watch.see(runnable)
    assert fired == ["j1"]


class Stuck:
    """moto with a disabled compute environment behind the cluster's queue, and every job
    reported RUNNABLE (the gateway seam) until the clock passes `until`."""

    def __init__(self, tmp_path: Path, until: float = 700.0) -> None:
        create_cluster("pc-test")
        self.session = AwsSession(
            limiter=RateLimiter(sleep=lambda s: None),
            retry=RetryPolicy(sleep=lambda s: None, rng=random.Random(1)),
            workers=1,
            cluster="pc-test",
        )
        import boto3

        boto3.client("batch", region_name="us-east-1").update_compute_environment(
            computeEnvironment="pc-test-ce", state="DISABLED"
        )
        self.batch = SeenBatch(
            self.session, every={"status": JobStatus.RUNNABLE, "created_at": int(NOW * 1000)}
        )
        self.clock = Clock()
        self.clock.on_tick.append(self._release(until))
        _, info = discover(
            "pc-test", session_factory=lambda *a: self.session, cli_config=tmp_path / "x.cfg"
        )
        self.cluster = Cluster(
            AwsProvider(self.session, info, batch=self.batch),
            clock=lambda: NOW,
            monotonic=self.clock,
            sleep=self.clock.sleep,
        )

    def _release(self, until: float) -> Any:
        def release(now: float) -> None:
            if now >= until:
                self.batch.every = {}  # moto's own answer: SUCCEEDED

        return release

    def run(self, *args: str) -> Any:
        env = CliEnv(connect=lambda name, **kw: self.cluster, environ={})
        return CliRunner().invoke(app, list(args), obj=env)


@pytest.fixture
def stuck(tmp_path: Path) -> Iterator[Stuck]:
    with mock_aws(config=SIMPLE_CONFIG):
        yield Stuck(tmp_path)


@pytest.mark.parametrize("mode", ["--wait", "--follow"])
def test_sub_wait_says_why_once(stuck: Stuck, mode: str) -> None:
    result = stuck.run("sub", "-c", "pc-test", mode, "--", "true")
    assert result.exit_code == 0, result.output
    whys = [line for line in result.stderr.splitlines() if line.startswith("why ")]
    assert len(whys) == 1, result.stderr
    assert "the environment is DISABLED: it launches nothing" in whys[0]
    assert "fix: enable it" in whys[0]


def test_sub_wait_of_a_job_that_starts_soon_says_nothing(tmp_path: Path) -> None:
    with mock_aws(config=SIMPLE_CONFIG):
        quick = Stuck(tmp_path, until=300.0)
        result = quick.run("sub", "-c", "pc-test", "--wait", "--", "true")
    assert result.exit_code == 0 and "why " not in result.stderr


def test_job_wait_shows_the_finding_beside_the_progress(stuck: Stuck) -> None:
    handle = stuck.cluster.submit(["true"])
    stream = io.StringIO()
    handle.wait(progress=TextProgress(stream))
    lines = stream.getvalue().splitlines()
    whys = [line for line in lines if line.startswith(f"why {handle.job_id}: ")]
    assert len(whys) == 1 and "DISABLED" in whys[0]
    assert "SUCCEEDED" in lines[-1]


def test_job_doctor_returns_the_findings_with_html(stuck: Stuck) -> None:
    handle = stuck.cluster.submit(["true"])
    report = handle.doctor()
    assert report.has_problem and report.leading is not None
    assert report.leading.rule == "environment-state"
    html = report._repr_html_()
    assert html.startswith("<table>") and "the environment is DISABLED" in html


def test_stat_says_why_in_one_line(stuck: Stuck) -> None:
    handle = stuck.cluster.submit(["true"])
    result = stuck.run("stat", "-c", "pc-test", handle.job_id)
    assert result.exit_code == 0, result.output
    assert f"why {handle.job_id}: the environment is DISABLED" in result.stderr
    as_json = stuck.run("stat", "-c", "pc-test", "--json", handle.job_id)
    [job] = json.loads(as_json.stdout)
    assert job["why"]["rule"] == "environment-state"


def test_stat_says_why_a_failed_job_failed_in_one_line(stuck: Stuck) -> None:
    handle = stuck.cluster.submit(["true"])
    stuck.batch.jobs[handle.job_id] = {
        "status": JobStatus.FAILED,
        "exit_code": 127,
        "status_reason": "Essential container in task exited",
    }
    result = stuck.run("stat", "-c", "pc-test", handle.job_id)
    assert result.exit_code == 0, result.output
    [why] = [line for line in result.stderr.splitlines() if line.startswith("why ")]
    assert why.startswith(f"why {handle.job_id}: exit 127: the command is not found")
    assert "fix: check the command's path" in why
    # not the disabled environment: an ended job's queue is not what failed it
    assert "DISABLED" not in result.stderr
    as_json = stuck.run("stat", "-c", "pc-test", "--json", handle.job_id)
    [job] = json.loads(as_json.stdout)
    assert job["why"]["rule"] == "failure" and job["why"]["verdict"] == "problem"


def test_stat_of_a_job_failed_by_its_dependency_names_the_dependency(stuck: Stuck) -> None:
    first = stuck.cluster.submit(["false"], name="first")
    second = stuck.cluster.submit(["true"], name="second", depends_on=[first.job_id])
    stuck.batch.jobs[first.job_id] = {"status": JobStatus.FAILED, "exit_code": 1}
    stuck.batch.jobs[second.job_id] = {
        "status": JobStatus.FAILED,
        "status_reason": "Dependent Job failed",
    }
    result = stuck.run("stat", "-c", "pc-test", second.job_id)
    assert result.exit_code == 0, result.output
    [why] = [line for line in result.stderr.splitlines() if line.startswith("why ")]
    assert why.startswith(f"why {second.job_id}: a dependency failed, so this job fails too: ")
    assert f"{first.job_id} (first)" in why and f"batchkit doctor {first.job_id}" in why

"""Multi-node jobs and the queue they go to: refused for Fargate and warned about for Spot-only,
before anything is staged or sent; each submission gets its own launch key."""

from __future__ import annotations

import pytest

from batchkit.errors import ExitCode, UsageError
from batchkit.jobs.multinode import MultiNodeWarning
from batchkit.jobs.submission import LAUNCH_KEY_VARIABLE, Submitter
from batchkit.models import JobSpec, Resources
from tests.cli.conftest import Cli
from tests.jobs.fakes import FakeProvider


def submit(fake: FakeProvider, **fields: object) -> None:
    spec = JobSpec(name="j", command=("true",), **fields)  # type: ignore[arg-type]
    Submitter(fake, clock=lambda: 1.0, new_token=lambda: "t").submit(spec)


def test_a_multinode_job_for_a_fargate_queue_is_refused_before_any_call() -> None:
    fake = FakeProvider(capacities={"serverless": "FARGATE"})
    with pytest.raises(UsageError) as caught:
        submit(fake, queue="serverless", nodes=2)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "-n/--nodes 2: serverless runs on Fargate" in caught.value.message
    assert caught.value.hint and "--queue NAME" in caught.value.hint
    assert fake.calls == [] and fake.objects.items == {}
    # one node is fine there (in a size Fargate has: jobs.fargate checks that)
    submit(fake, queue="serverless", resources=Resources(vcpus=1, memory=2048))


def test_a_multinode_job_for_a_spot_only_queue_is_sent_with_a_warning() -> None:
    fake = FakeProvider(capacities={"cheap": "SPOT", "default": "EC2"})
    with pytest.warns(MultiNodeWarning, match="one reclaimed instance fails the whole 3-node job"):
        submit(fake, queue="cheap", nodes=3)
    assert fake.calls == ["submit"]


def test_each_multinode_submission_gets_a_fresh_launch_key_and_single_nodes_none() -> None:
    fake = FakeProvider()
    for _ in range(2):
        submit(fake, nodes=2)
    submit(fake)
    keys = [r.environment.get(LAUNCH_KEY_VARIABLE) for r in fake.requests]
    assert keys[0] and keys[1] and keys[0] != keys[1] and len(keys[0]) == 64
    assert keys[2] is None


def test_sub_prints_the_spot_warning_and_submits() -> None:
    cli = Cli(fake=FakeProvider(capacities={"cheap": "SPOT"}))
    result = cli.run("sub", "--queue", "cheap", "-n", "2", "true")
    assert result.exit_code == 0, result.output
    assert "warning: cheap runs on Spot instances only" in result.output
    refused = Cli(fake=FakeProvider(capacities={"default": "FARGATE"})).run(
        "sub", "-n", "2", "true"
    )
    assert refused.exit_code == 2
    assert "error: -n/--nodes 2: the default queue runs on Fargate" in refused.output

"""Real execution: moto's Docker-mode Batch runs the jobs `batchkit sub` submits in containers of
a local Docker engine, so status really progresses and the output is the container's own."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e_aws.conftest import Run
from tests.fixtures.moto_server import Cluster, create_cluster

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SUBMITTED = re.compile(r"Job ([0-9a-f-]{36}) \((.+)\) has been submitted\.")


@pytest.fixture
def docker_cluster(
    moto_endpoint: str,
    docker_engine: Any,
    docker_host: str,
    busybox_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cluster]:
    """The moto server switched to Docker-mode Batch (reset to simple mode by the next test)."""
    monkeypatch.setenv("MOTO_DOCKER_NETWORK_MODE", "host")  # only 127.0.0.1 traffic
    body = json.dumps({"batch": {"use_docker": True}}).encode()
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/config", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    yield create_cluster("pc-test", endpoint_url=moto_endpoint, image=busybox_image)
    # moto names a job's container `<jobName>-<jobId>` and may leave it behind (after a kill);
    # remove only this module's, never another session's on the shared engine.
    mine = r"^/?(hello|sleeper)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    for container in docker_engine.containers.list(all=True, filters={"name": mine}):
        container.remove(force=True)


def status_of(batchkit: Run, job_id: str) -> str:
    details = batchkit("stat", "-c", "pc-test", job_id)
    match = re.search(r"^status\s+: (\S+)", details.out, re.MULTILINE)
    assert match, details.out + details.err
    return match[1]


def test_a_job_really_runs_and_its_output_is_read_back(
    batchkit: Run, docker_cluster: Cluster
) -> None:
    sub = batchkit("sub", "-c", "pc-test", "-jn", "hello", "--wait", "--", "echo", "it's", "$(x)")
    assert sub.code == 0, sub.out + sub.err
    job_id = SUBMITTED.search(sub.out)[1]  # type: ignore[index]
    assert status_of(batchkit, job_id) == "SUCCEEDED"
    out = batchkit("out", "-c", "pc-test", job_id)
    assert out.code == 0, out.err
    assert [line.split(": ", 1)[1] for line in out.out.splitlines()] == ["it's $(x)"]


def test_kill_terminates_a_running_job(batchkit: Run, docker_cluster: Cluster) -> None:
    sub = batchkit("sub", "-c", "pc-test", "-jn", "sleeper", "--", "sleep", "60")
    job_id = SUBMITTED.search(sub.out)[1]  # type: ignore[index]
    deadline = time.monotonic() + 60
    while status_of(batchkit, job_id) != "RUNNING":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.5)
    kill = batchkit("kill", "-c", "pc-test", job_id)
    assert "termination request" in kill.out, kill.out + kill.err
    while status_of(batchkit, job_id) != "FAILED":
        assert time.monotonic() < deadline, "the job was not terminated"
        time.sleep(0.5)
    details = batchkit("stat", "-c", "pc-test", job_id)
    assert re.search(r"^statusReason\s+: Terminated by the user", details.out, re.MULTILINE)

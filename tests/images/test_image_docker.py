"""A real build of the Debian preset on the local Docker engine, and jobs in that image.

The build starts FROM the registry-free base image `batchkit-base/debian:bookworm` (contract C5)
and installs its packages from the Debian mirror over the host network, as `--local` builds do.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchkit.images.local import LocalImageBuilder
from batchkit.images.plan import BuildDone, BuildLogLine, ImageResult
from batchkit.images.presets import preset_recipe

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def debian_job_image(docker_engine: Any, debian_image: str) -> str:
    """batchkit's Debian image built on the local engine (cached by content hash)."""
    base = debian_image
    builder = LocalImageBuilder(docker_engine)
    plan = builder.plan(preset_recipe("debian", build_args={"BASE_IMAGE": base}))
    events = list(builder.build(plan))
    done = events[-1]
    assert isinstance(done, BuildDone), events[-5:]
    if not done.result.up_to_date:
        assert any(isinstance(e, BuildLogLine) for e in events)  # the build log was streamed
    assert done.result.image == f"batchkit/debian:{plan.content_hash}"
    assert done.result.digest and done.result.digest.startswith("sha256:")
    return done.result.image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(client: Any, image: str, command: list[str], **kwargs: Any) -> str:
    output = client.containers.run(
        image, command, network_mode="host", remove=True, stderr=True, **kwargs
    )
    return output.decode() if isinstance(output, bytes) else str(output)


def test_a_second_build_of_the_same_context_is_up_to_date(
    docker_engine: Any, debian_image: str, debian_job_image: str
) -> None:
    builder = LocalImageBuilder(docker_engine)
    plan = builder.plan(preset_recipe("debian", build_args={"BASE_IMAGE": debian_image}))
    events = list(builder.build(plan))
    assert len(events) == 1
    result: ImageResult = events[0].result  # type: ignore[union-attr]
    assert result.up_to_date and result.image == debian_job_image
    assert docker_engine.images.get("batchkit/debian:latest").id == result.digest


def test_the_image_has_its_tools_and_runs_jobs_as_a_non_root_user(
    docker_engine: Any, debian_job_image: str
) -> None:
    script = (
        "id -u; bash --version | head -n1; aws --version; mpirun --version | head -n1; "
        "python3 -c 'import boto3, cloudpickle; print(\"py-ok\")'; "
        "ls /root 2>&1 | head -n1; ls -a ~ | grep -c ssh || true"
    )
    out = run(docker_engine, debian_job_image, ["sh", "-c", script])
    lines = out.splitlines()
    assert lines[0] == "1000"
    assert "GNU bash" in out and "aws-cli/" in out and "Open MPI" in out and "py-ok" in out
    assert "Permission denied" in out  # not root
    assert lines[-1] == "0"  # no ~/.ssh: no keys baked in


def test_arguments_pass_through_the_entrypoint_byte_exact(
    docker_engine: Any, debian_job_image: str
) -> None:
    hostile = ["it's", "$(id)", "a b", "ünï"]
    out = run(
        docker_engine,
        debian_job_image,
        ["python3", "-c", "import sys; print(repr(sys.argv[1:]))", *hostile],
    )
    assert out.strip() == repr(hostile)


def test_two_containers_meet_and_mpirun_uses_the_hostfile(
    docker_engine: Any, debian_job_image: str
) -> None:
    env = {
        "AWS_BATCH_JOB_NUM_NODES": "2",
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1",
        "BATCHKIT_RENDEZVOUS_TIMEOUT": "60",
        "BATCHKIT_RENDEZVOUS_PORT": str(free_port()),  # host network: a port free on this host
    }
    script = (
        'echo "role=$BATCHKIT_NODE_ROLE slots=$BATCHKIT_NODE_SLOTS"; cat "$BATCHKIT_HOSTFILE"; '
        'if [ "$BATCHKIT_NODE_ROLE" = main ]; then mpirun -np 2 echo rank-ran; fi'
    )
    worker = docker_engine.containers.run(
        debian_job_image,
        ["sh", "-c", script],
        environment={**env, "AWS_BATCH_JOB_ID": "j#1", "AWS_BATCH_JOB_NODE_INDEX": "1"},
        network_mode="host",
        nano_cpus=1_000_000_000,  # 1 reserved vCPU: slots come from the CPU quota, not nproc
        detach=True,
    )
    try:
        main_out = run(
            docker_engine,
            debian_job_image,
            ["sh", "-c", script],
            environment={
                **env,
                "AWS_BATCH_JOB_ID": "j#0",
                "AWS_BATCH_JOB_NODE_INDEX": "0",
                "BATCHKIT_JOB_VCPUS": "1",
            },
        )
        assert worker.wait(timeout=120)["StatusCode"] == 0
        worker_out = worker.logs().decode()
    finally:
        worker.remove(force=True)
    assert "role=main slots=1" in main_out and "role=worker slots=1" in worker_out
    # both nodes live on 127.0.0.1 here: one hostfile line with their slots added up
    assert "127.0.0.1 slots=2" in main_out and "127.0.0.1 slots=2" in worker_out
    assert main_out.count("rank-ran") == 2


@pytest.fixture
def batchkit_cli(tmp_path: Path, docker_host: str) -> dict[str, str]:
    """The environment of a `batchkit` subprocess with a private home (its local worker exits
    by itself once idle)."""
    env = dict(os.environ)
    env.update({"BATCHKIT_HOME": str(tmp_path / "bk"), "HOME": str(tmp_path)})
    return env


def submit(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    batchkit = str(Path(sys.executable).parent / "batchkit")
    return subprocess.run(
        [batchkit, "sub", "-c", "local", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def test_a_job_and_a_two_node_job_run_in_the_image_through_batchkit_sub(
    batchkit_cli: dict[str, str], debian_job_image: str, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text(
        "python3 -c 'import cloudpickle, boto3; print(\"single-ok\")'\n"
    )
    single = submit(
        batchkit_cli, tmp_path, "--image", debian_job_image, "--wait", "-jn", "one", "-cf", "job.sh"
    )
    assert single.returncode == 0, single.stderr
    (tmp_path / "mnp.sh").write_text(
        'cat "$BATCHKIT_HOSTFILE"\n'
        'if [ "$BATCHKIT_NODE_ROLE" = main ]; then mpirun -np 2 echo rank-ran; fi\n'
    )
    began = time.monotonic()
    mnp = submit(
        batchkit_cli,
        tmp_path,
        "--image",
        debian_job_image,
        "--wait",
        "-n",
        "2",
        "-jn",
        "two",
        "-cf",
        "mnp.sh",
    )
    assert mnp.returncode == 0, mnp.stderr
    assert time.monotonic() - began < 240

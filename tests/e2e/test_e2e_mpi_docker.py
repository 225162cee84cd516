"""End to end on the local Docker engine: the `mpi` preset image (Open MPI, mpi4py), multi-node
jobs whose nodes are containers on the host network, each at its own loopback address; a plain
`mpirun -np K` on the main node starts ranks in every node's container through the launch agent.

The image is built once per session with `batchkit image build --preset mpi --local` on the
registry-free Debian base, bounded (BUILD_TIMEOUT_S) and cached: an unchanged build context is up
to date at once, and Docker's layer cache keeps the apt-get layer across script changes.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_e2e_mpi import ALLREDUCE, job_id_of, ranks_of, script
from tests.fixtures.docker_engine import BUILD_TIMEOUT_S, REPO
from tests.fixtures.local_engine import stop_workers, wait_until

BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def mpi_image(docker_engine: Any, debian_image: str) -> str:
    """`batchkit/mpi:latest`, built (or found up to date) once, one builder at a time."""
    lock_path = REPO / ".ci-work" / "mpi-image.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command = ["image", "build", "--preset", "mpi", "--local"]
            built = subprocess.run(
                [str(BIN / "batchkit"), *command, "--build-arg", f"BASE_IMAGE={debian_image}"],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the mpi preset did not build within {BUILD_TIMEOUT_S}s")
    assert built.returncode == 0, built.stderr[-2000:]
    return "mpi"


@pytest.fixture(autouse=True)
def engine_env(
    isolated_environment: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("BATCHKIT_LOCAL_VCPUS", "8")
    yield
    stop_workers(isolated_environment)


def batchkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "batchkit"), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(("nodes", "ranks"), [(2, 4), (3, 6)])
def test_mpirun_in_the_mpi_image_starts_ranks_in_every_node(
    tmp_path: Path, mpi_image: str, nodes: int, ranks: int
) -> None:
    run_sh = tmp_path / "run.sh"
    run_sh.write_text(script(ranks))
    done = batchkit("sub", "-n", str(nodes), "--image", mpi_image, "--wait", "-cf", str(run_sh))
    assert done.returncode == 0, (done.stdout, done.stderr)
    job_id = job_id_of(done.stdout)
    total = ranks * (ranks - 1) // 2
    per_node = ranks // nodes
    assert ranks_of(job_id) == [(r, r // per_node, total) for r in range(ranks)], batchkit(
        "out", job_id
    ).stdout
    job = json.loads(batchkit("stat", "--json", job_id).stdout)[0]
    assert job["status"] == "SUCCEEDED"


def test_a_node_container_killed_mid_run_fails_the_job_naming_the_node(
    tmp_path: Path, mpi_image: str, docker_engine: Any, isolated_environment: Path
) -> None:
    run_sh = tmp_path / "run.sh"
    run_sh.write_text(script(4, ALLREDUCE + "import time; time.sleep(600)\n"))
    done = batchkit("sub", "-n", "2", "--image", mpi_image, "-cf", str(run_sh))
    assert done.returncode == 0, done.stderr
    job_id = job_id_of(done.stdout)
    wait_until(lambda: len(ranks_of(job_id)) == 4, timeout=180, what="every rank to report")

    identity = isolated_environment / "work" / job_id / "node-1" / "attempt-1.identity.json"
    container = json.loads(identity.read_text())["identity"]["container_id"]
    docker_engine.containers.get(container).kill()
    killed_at = time.monotonic()

    def failed() -> bool:
        return json.loads(batchkit("stat", "--json", job_id).stdout)[0]["status"] == "FAILED"

    wait_until(failed, timeout=120, what="the job to fail")
    assert time.monotonic() - killed_at < 90  # the supervisor's grace is 15 s
    job = json.loads(batchkit("stat", "--json", job_id).stdout)[0]
    assert job["statusReason"] == (
        "Node 1 (127.0.0.2) was lost while the job ran (its connection closed)"
    )

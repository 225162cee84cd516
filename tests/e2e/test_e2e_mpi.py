"""End to end: real MPI across the nodes of a multi-node job on the local engine's process
executor, through the installed `batchkit` command. Each node has its own loopback address, the
job's environment names the hostfile and batchkit's launcher, and a plain `mpirun -np K` starts
ranks on every node (Open MPI and mpi4py on this machine: scripts/test installs them)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.local_engine import stop_workers, wait_until

BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI (mpirun) is not installed"),
    pytest.mark.slow,
]

ALLREDUCE = (  # inside single quotes in run.sh
    "from mpi4py import MPI; import os; c = MPI.COMM_WORLD\n"
    'print("rank", c.rank, "node", os.environ["AWS_BATCH_JOB_NODE_INDEX"], '
    '"sum", c.allreduce(c.rank), flush=True)\n'
)


def script(ranks: int, program: str = ALLREDUCE) -> str:
    """The issue's run.sh: the main node runs a plain mpirun; the other nodes run nothing."""
    return (
        'if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then\n'
        f"    mpirun -np {ranks} python3 -c '{program}'\n"
        "fi\n"
    )


@pytest.fixture(autouse=True)
def engine_env(isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pytest.importorskip("mpi4py")
    # the jobs' python3 is this interpreter (with mpi4py), found first on the job's PATH
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    # three 1-vCPU nodes on a 2-core CI machine (ranks share the cores, as oversubscribed)
    monkeypatch.setenv("BATCHKIT_LOCAL_VCPUS", "8")
    yield
    stop_workers(isolated_environment)


def batchkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "batchkit"), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def job_id_of(stdout: str) -> str:
    return stdout.splitlines()[0].split()[1]


def ranks_of(job_id: str) -> list[tuple[int, int, int]]:
    out = batchkit("out", "--raw", job_id)
    assert out.returncode == 0, out.stderr
    found = []
    for line in out.stdout.splitlines():
        words = line.split("] ", 1)[-1].split()
        if len(words) == 6 and words[0] == "rank":
            found.append((int(words[1]), int(words[3]), int(words[5])))
    return sorted(found)


@pytest.mark.parametrize(("nodes", "ranks"), [(2, 4), (3, 6)])
def test_mpirun_starts_ranks_on_every_node(tmp_path: Path, nodes: int, ranks: int) -> None:
    run_sh = tmp_path / "run.sh"
    run_sh.write_text(script(ranks))
    done = batchkit("sub", "-n", str(nodes), "--wait", "-cf", str(run_sh))
    assert done.returncode == 0, (done.stdout, done.stderr)
    job_id = job_id_of(done.stdout)
    total = ranks * (ranks - 1) // 2
    per_node = ranks // nodes
    assert ranks_of(job_id) == [(r, r // per_node, total) for r in range(ranks)], batchkit(
        "out", job_id
    ).stdout
    stat = json.loads(batchkit("stat", "--json", job_id).stdout)[0]
    assert stat["status"] == "SUCCEEDED"


def test_a_node_killed_mid_run_fails_the_job_naming_the_node(
    tmp_path: Path, isolated_environment: Path
) -> None:
    program = ALLREDUCE + "import time; time.sleep(600)\n"
    run_sh = tmp_path / "run.sh"
    run_sh.write_text(script(4, program))
    done = batchkit("sub", "-n", "2", "-cf", str(run_sh))
    assert done.returncode == 0, done.stderr
    job_id = job_id_of(done.stdout)
    wait_until(lambda: len(ranks_of(job_id)) == 4, timeout=120, what="every rank to report")

    # node 1 dies: its process group (launch agent, MPI daemon) is killed
    identity = isolated_environment / "work" / job_id / "node-1" / "attempt-1.identity.json"
    os.killpg(json.loads(identity.read_text())["identity"]["pgid"], signal.SIGKILL)
    killed_at = time.monotonic()

    def final() -> bool:
        return json.loads(batchkit("stat", "--json", job_id).stdout)[0]["status"] == "FAILED"

    wait_until(final, timeout=90, what="the job to fail")
    # bounded: well within the supervisor's grace (15 s) plus a few polls
    assert time.monotonic() - killed_at < 60
    job = json.loads(batchkit("stat", "--json", job_id).stdout)[0]
    assert (
        job["statusReason"]
        == "Node 1 (127.0.0.2) was lost while the job ran (its connection closed)"
    )
    out = batchkit("out", "--raw", job_id).stdout
    assert "batchkit-entrypoint: Node 1 (127.0.0.2) was lost" in out


def test_a_node_that_hangs_silently_fails_the_job_after_the_heartbeat_bound(
    tmp_path: Path, isolated_environment: Path
) -> None:
    """A node that stops answering without closing anything (a frozen instance: here SIGSTOP)
    is declared lost after BATCHKIT_NODE_TIMEOUT seconds (default 30) without a heartbeat."""
    program = ALLREDUCE + "import time; time.sleep(600)\n"
    run_sh = tmp_path / "run.sh"
    run_sh.write_text(script(4, program))
    done = batchkit("sub", "-n", "2", "-cf", str(run_sh))
    assert done.returncode == 0, done.stderr
    job_id = job_id_of(done.stdout)
    wait_until(lambda: len(ranks_of(job_id)) == 4, timeout=120, what="every rank to report")

    identity = isolated_environment / "work" / job_id / "node-1" / "attempt-1.identity.json"
    os.killpg(json.loads(identity.read_text())["identity"]["pgid"], signal.SIGSTOP)

    def final() -> bool:
        return json.loads(batchkit("stat", "--json", job_id).stdout)[0]["status"] == "FAILED"

    wait_until(final, timeout=120, what="the job to fail")  # 30 s of silence + 15 s of grace
    job = json.loads(batchkit("stat", "--json", job_id).stdout)[0]
    assert job["statusReason"] == "Node 1 (127.0.0.2) was lost while the job ran (silent for 30s)"

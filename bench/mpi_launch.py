"""Multi-node MPI launch on the local engine: time from submission to all ranks running, against
`mpirun` of the same program on one node.

For 2, 4 and 8 nodes, `batchkit sub -n N` (the installed command, process executor) runs a job
whose main node calls a plain `mpirun -np 2N python3 prog.py`; every rank writes the wall-clock
time at which it is running (after MPI_Init) into the shared working directory (-w). "All ranks
running" is the latest of those times minus the moment `batchkit sub` was started. Side by side,
`mpirun -np 2N python3 prog.py` started directly on this machine (one node, no batchkit): the
launch overhead is the difference. Each row is the median of --repeat runs.

    .venv/bin/python bench/mpi_launch.py [--nodes 2 4 8] [--repeat 3]

Needs Open MPI and mpi4py (scripts/test installs them). The engine gets BATCHKIT_LOCAL_VCPUS
large enough for 8 one-vCPU nodes, whatever the machine has: ranks share its cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.providers.local.worker import worker_pid

BIN = Path(sys.executable).parent
PROGRAM = (
    "from mpi4py import MPI\n"
    "import os, time\n"
    "c = MPI.COMM_WORLD\n"
    "with open(f'up-{c.rank}', 'w') as f:\n"
    "    f.write(repr(time.time()))\n"
    "c.Barrier()\n"
)
RUN_SH = """\
if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then
    mpirun -np "$1" python3 prog.py
fi
"""


def all_up(workdir: Path, ranks: int, started: float) -> float:
    times = [float((workdir / f"up-{rank}").read_text()) for rank in range(ranks)]
    return max(times) - started


def one_node(workdir: Path, ranks: int) -> float:
    """`mpirun` of the program on this machine alone, as a user would run it without batchkit."""
    env = {
        **os.environ,
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    for stale in workdir.glob("up-*"):
        stale.unlink()
    started = time.time()
    subprocess.run(
        ["mpirun", "-np", str(ranks), sys.executable, "prog.py"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return all_up(workdir, ranks, started)


def through_batchkit(workdir: Path, nodes: int, ranks: int) -> float:
    for stale in workdir.glob("up-*"):
        stale.unlink()
    started = time.time()
    flags = ["-n", str(nodes), "-w", str(workdir), "--wait", "--executor", "process"]
    done = subprocess.run(
        [str(BIN / "batchkit"), "sub", *flags, "-cf", str(workdir / "run.sh"), str(ranks)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        job_id = done.stdout.split()[1] if done.stdout else ""
        out = subprocess.run(
            [str(BIN / "batchkit"), "out", job_id], capture_output=True, text=True, check=False
        )
        raise SystemExit(f"the {nodes}-node job failed:\n{done.stderr}\n{out.stdout[-3000:]}")
    return all_up(workdir, ranks, started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("mpirun") is None:
        raise SystemExit("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)")

    with tempfile.TemporaryDirectory(prefix="batchkit-bench-mpi-") as tmp:
        home = Path(tmp) / "home"
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        (workdir / "prog.py").write_text(PROGRAM)
        (workdir / "run.sh").write_text(RUN_SH)
        os.environ.update(
            {
                "BATCHKIT_HOME": str(home),
                "BATCHKIT_LOCAL_VCPUS": str(max(args.nodes)),
                "PATH": f"{BIN}:{os.environ['PATH']}",  # the jobs' python3 has mpi4py
            }
        )
        rows = []
        try:
            through_batchkit(workdir, 2, 2)  # warm up: the engine's worker starts
            for nodes in args.nodes:
                ranks = 2 * nodes
                local = [one_node(workdir, ranks) for _ in range(args.repeat)]
                batch = [through_batchkit(workdir, nodes, ranks) for _ in range(args.repeat)]
                rows.append((nodes, ranks, statistics.median(local), statistics.median(batch)))
        finally:
            pid = worker_pid(home)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)

    print(f"{'nodes':>5}  {'ranks':>5}  {'mpirun, 1 node':>15}  {'batchkit sub -n':>16}  overhead")
    for nodes, ranks, local, batch in rows:
        print(
            f"{nodes:>5}  {ranks:>5}  {local:>13.2f} s  {batch:>14.2f} s  {batch - local:>6.2f} s"
        )
    print(
        "\nall ranks running = the latest rank's first time stamp after MPI_Init, from the start "
        "of `mpirun` or of `batchkit sub`; overhead = the difference (median of "
        f"{args.repeat} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

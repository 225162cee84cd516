"""Benchmark of the local engine's scheduler on the process executor.

Runs, in one fresh engine home, a 1,000-child array of `true` and 200 independent `true` jobs, and
side by side the same number of `true` processes started one after another with `subprocess`.
The scheduling overhead per job is (engine wall time - plain spawn time) / jobs: what the engine
adds on top of starting the processes themselves. Goal: at most 15 ms per job on 2 cores.

    .venv/bin/python bench/local_engine.py [--array 1000] [--singles 200]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.models import JobStatus, SubmitRequest
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import worker_pid

TRUE = ("true",)


def spawn_baseline(count: int) -> float:
    """Seconds to run `count` `true` processes one after another with subprocess."""
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(TRUE, check=True)
    return time.perf_counter() - started


def wait_final(provider: LocalProvider, ids: list[str], period: float = 0.02) -> None:
    pending = list(ids)
    while pending:
        jobs = provider.describe_jobs(pending)
        pending = [j.job_id for j in jobs if not j.status.is_final]
        if pending:
            time.sleep(period)


def run_array(provider: LocalProvider, size: int) -> tuple[float, JobStatus]:
    started = time.perf_counter()
    job = provider.submit(SubmitRequest(name="bench-array", command=TRUE, array_size=size))
    wait_final(provider, [job.job_id])
    wall = time.perf_counter() - started
    return wall, provider.describe_jobs([job.job_id])[0].status


def run_singles(provider: LocalProvider, count: int) -> tuple[float, JobStatus]:
    started = time.perf_counter()
    ids = [
        provider.submit(SubmitRequest(name=f"bench-{i}", command=TRUE)).job_id for i in range(count)
    ]
    wait_final(provider, ids)
    wall = time.perf_counter() - started
    statuses = {j.status for j in provider.describe_jobs(ids)}
    return wall, JobStatus.SUCCEEDED if statuses == {JobStatus.SUCCEEDED} else JobStatus.FAILED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--array", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as tmp:
        home = Path(tmp)
        provider = LocalProvider(home, idle_exit=10)
        try:
            # Warm up: bring the worker up so its start-up is not counted.
            warm = provider.submit(SubmitRequest(name="warm-up", command=TRUE))
            wait_final(provider, [warm.job_id])
            rows = []
            for label, count, runner in (
                (f"array of {args.array} `true`", args.array, run_array),
                (f"{args.singles} independent `true`", args.singles, run_singles),
            ):
                wall, status = runner(provider, count)
                baseline = spawn_baseline(count)
                rows.append((label, count, wall, baseline, status))
        finally:
            pid = worker_pid(home)
            if pid and pid > 0:
                os.kill(pid, signal.SIGTERM)
            for process in provider.spawned:
                process.wait(timeout=10)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    header = (
        f"{'workload':<30} {'jobs':>6} {'wall s':>8} {'jobs/s':>8} "
        f"{'spawn s':>8} {'overhead ms/job':>16} {'status':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, count, wall, baseline, status in rows:
        overhead = (wall - baseline) / count * 1000
        print(
            f"{label:<30} {count:>6} {wall:>8.2f} {count / wall:>8.1f} "
            f"{baseline:>8.2f} {overhead:>16.2f} {status.value:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

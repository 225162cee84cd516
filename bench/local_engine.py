"""Benchmark of the local engine's scheduler on the process executor.

Runs, in one fresh engine home, arrays of `true` (`--array`, several sizes) and `--singles`
independent `true` jobs, each followed by the same number of `true` processes started one after
another with `subprocess` (interleaved). Per workload: jobs/s, the scheduling overhead per job
((engine wall - plain spawn wall) / jobs), the worker's CPU per job (from /proc/<pid>/stat, so
the submitter's and the jobs' own CPU are not counted) and its resident memory afterwards.
Goals (issue 12): >= 600 jobs/s for a 10,000-child array; worker CPU <= 1.5 ms a job, flat from
1,000 to 10,000 children; worker RSS flat.

    .venv/bin/python bench/local_engine.py [--array 1000 10000] [--singles 200]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from batchkit.models import JobStatus, SubmitRequest
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import worker_pid

TRUE = ("true",)
Runner = Callable[[LocalProvider, int], tuple[float, JobStatus]]


def spawn_baseline(count: int) -> float:
    """Seconds to run `count` `true` processes one after another with subprocess."""
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(TRUE, check=True)
    return time.perf_counter() - started


def worker_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
    parser.add_argument("--array", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as tmp:
        home = Path(tmp)
        provider = LocalProvider(home, idle_exit=30)
        try:
            # Warm up: bring the worker up so its start-up is not counted.
            warm = provider.submit(SubmitRequest(name="warm-up", command=TRUE))
            wait_final(provider, [warm.job_id])
            pid = worker_pid(home)
            assert pid is not None and pid > 0, "no worker"
            rows = []
            workloads: list[tuple[str, int, Runner]] = [
                (f"array of {size:,} `true`", size, run_array) for size in args.array
            ]
            workloads.append((f"{args.singles} independent `true`", args.singles, run_singles))
            for label, count, runner in workloads:
                cpu = worker_cpu_s(pid)
                wall, status = runner(provider, count)
                cpu = worker_cpu_s(pid) - cpu
                rss = worker_rss_mb(pid)
                baseline = spawn_baseline(count)
                rows.append((label, count, wall, baseline, cpu, rss, status))
        finally:
            pid = worker_pid(home)
            if pid and pid > 0:
                os.kill(pid, signal.SIGTERM)
            for process in provider.spawned:
                process.wait(timeout=10)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    header = (
        f"{'workload':<28} {'jobs':>6} {'wall s':>7} {'jobs/s':>7} {'spawn s':>8} "
        f"{'overhead ms/job':>15} {'worker CPU ms/job':>17} {'worker RSS MB':>13} {'status':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, count, wall, baseline, cpu, rss, status in rows:
        overhead = (wall - baseline) / count * 1000
        print(
            f"{label:<28} {count:>6} {wall:>7.2f} {count / wall:>7.1f} {baseline:>8.2f} "
            f"{overhead:>15.2f} {cpu / count * 1000:>17.2f} {rss:>13.1f} {status.value:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

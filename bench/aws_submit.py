"""500 submissions on one moto server: jobs/s of batchkit (Python API, and its CLI in a loop)
vs a loop of awsbsub.

    .venv/bin/python bench/aws_submit.py [--jobs 500] [--cli-jobs 40] [--workers 8]

Each CLI submission is a new process (interpreter start-up, stack lookup, S3 upload, SubmitJob),
so the CLI loops run `--cli-jobs` submissions and report their rate; the API submits all
`--jobs` from one process with a thread pool under the shared rate limiter.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import boto3
from aws_moto import (
    awsbatch_cli_bin,
    batchkit_exe,
    bench_environment,
    create_cluster,
    moto_server,
    table,
    timed,
)


def count_jobs(queue: str) -> int:
    batch = boto3.client("batch")
    return sum(
        len(page["jobSummaryList"])
        for page in batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus="SUCCEEDED")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--cli-jobs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with moto_server() as server:
        env = bench_environment(server.endpoint)
        cluster = create_cluster("bench", endpoint_url=server.endpoint)
        rows: list[list[object]] = []

        from batchkit.api import connect
        from batchkit.models import JobSpec

        bk = connect("bench")
        before = server.app.snapshot()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            jobs = list(
                pool.map(
                    lambda i: bk.submit(JobSpec(name=f"api-{i}", script=b"echo hi\n")),
                    range(args.jobs),
                )
            )
        seconds = time.perf_counter() - start
        calls = sum((server.app.snapshot() - before).values())
        rows.append(
            [
                f"batchkit API, {args.workers} threads",
                len(jobs),
                f"{seconds:.2f}",
                f"{len(jobs) / seconds:.1f}",
                calls,
            ]
        )

        # The two CLI loops run interleaved, one submission each in turn, so that a busy moment
        # of a shared machine hits both alike.
        bin_dir = awsbatch_cli_bin()
        loops: list[tuple[str, Callable[[int], list[str]]]] = [
            (
                "batchkit sub (loop)",
                lambda i: [batchkit_exe(), "sub", "-c", "bench", "-jn", f"cli-{i}"],
            )
        ]
        if bin_dir is not None:
            loops.append(
                (
                    "awsbsub (loop)",
                    lambda i: [str(bin_dir / "awsbsub"), "-c", "bench", "-jn", f"awsb-{i}"],
                )
            )
        totals = {label: [0.0, 0, 0] for label, _ in loops}
        for i in range(args.cli_jobs):
            for label, argv_of in loops:
                run = timed(server, label, argv_of(i), env, stdin="echo hi\n")
                totals[label][0] += run.seconds
                totals[label][1] += run.calls
                totals[label][2] += run.code == 0
        for label, (total, calls, ok) in totals.items():
            rows.append([label, ok, f"{total:.2f}", f"{ok / total:.1f}", calls])
        expected = args.jobs + sum(int(r[1]) for r in rows[1:])
        print(
            f"submissions of a piped script (moto server; API: {args.jobs} jobs, CLI loops: "
            f"{args.cli_jobs} each, scaled down because every one is a new process)"
        )
        print(table(["submitter", "jobs", "wall s", "jobs/s", "API calls"], rows))
        print(f"jobs in the queue: {count_jobs(cluster.job_queue)} (expected {expected})")
        if bin_dir is None:
            print("awsbatch-cli not installed: set BATCHKIT_AWSBATCH_CLI_BIN (see scripts/test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

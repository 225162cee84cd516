"""`batchkit out` vs `awsbout` on a 200,000-line log stream on one moto server: lines printed,
lines per second, API calls.

    .venv/bin/python bench/aws_out.py [--lines 200000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import boto3
from aws_moto import (
    awsbatch_cli_bin,
    batchkit_exe,
    bench_environment,
    best_of,
    create_cluster,
    moto_server,
    put_log_lines,
    table,
    timed,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with moto_server() as server:
        env = bench_environment(server.endpoint)
        cluster = create_cluster("bench", endpoint_url=server.endpoint)
        job_id = boto3.client("batch").submit_job(
            jobName="chatty", jobQueue=cluster.job_queue, jobDefinition=cluster.job_definition
        )["jobId"]
        stream = f"{cluster.job_definition_name}/default/{job_id}"
        start = time.perf_counter()
        put_log_lines("/aws/batch/job", stream, args.lines, text="output line {i}")
        filled = time.perf_counter() - start
        runs = [
            best_of(
                args.repeat,
                lambda: timed(
                    server, "batchkit out", [batchkit_exe(), "out", "-c", "bench", job_id], env
                ),
            )
        ]
        bin_dir = awsbatch_cli_bin()
        if bin_dir is not None:
            runs.append(
                best_of(
                    args.repeat,
                    lambda: timed(
                        server, "awsbout", [str(bin_dir / "awsbout"), "-c", "bench", job_id], env
                    ),
                )
            )
        rows = []
        for run in runs:
            lines = [line for line in run.stdout.splitlines() if "output line" in line]
            first = lines[0].rsplit(" ", 1)[-1] if lines else "-"
            rows.append(
                [
                    run.label,
                    len(lines),
                    f"{len(lines) / args.lines:.0%}",
                    first,
                    f"{run.seconds:.2f}",
                    f"{len(lines) / run.seconds:,.0f}" if run.seconds else "-",
                    run.calls_by_operation.get("GetLogEvents", 0),
                ]
            )
        print(
            f"out of one {args.lines:,}-line stream (moto server; filled in {filled:.1f} s; "
            f"median of {args.repeat})"
        )
        print(
            table(
                [
                    "command",
                    "lines",
                    "of stream",
                    "first line",
                    "wall s",
                    "lines/s",
                    "GetLogEvents",
                ],
                rows,
            )
        )
        if bin_dir is None:
            print("awsbatch-cli not installed: set BATCHKIT_AWSBATCH_CLI_BIN (see scripts/test)")
        print(
            "notes: awsbout starts at the last 10,000 events (limit=10000, startFromHead=False) "
            "and never prints what came before; batchkit prints the stream from its head."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`batchkit stat -s ALL -e` vs `awsbstat -s ALL -e` over 5,000 jobs (a 1,000-child array and a
4-node MNP job among them), on one moto server: wall time and API calls (counted by the server).

    .venv/bin/python bench/aws_stat.py [--singles 3998] [--array 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time

import boto3
from aws_moto import (
    Run,
    Server,
    awsbatch_cli_bin,
    batchkit_exe,
    bench_environment,
    create_cluster,
    median_run,
    moto_server,
    table,
    timed,
)


def populate(cluster_queue: str, definition: str, mnp: str, singles: int, array: int) -> str:
    """Submit the jobs; return the array job's id."""
    batch = boto3.client("batch")
    for i in range(singles):
        batch.submit_job(jobName=f"single-{i}", jobQueue=cluster_queue, jobDefinition=definition)
    array_id = batch.submit_job(
        jobName="big-array",
        jobQueue=cluster_queue,
        jobDefinition=definition,
        arrayProperties={"size": array},
    )["jobId"]
    batch.submit_job(
        jobName="mpi",
        jobQueue=cluster_queue,
        jobDefinition=mnp,
        nodeOverrides={"numNodes": 4, "nodePropertyOverrides": [{"targetNodes": "0:"}]},
    )
    return str(array_id)


def provider_rows(server: Server, array_id: str) -> list[list[object]]:
    """The children of the array through the provider API, complete and as summaries."""
    from batchkit.providers.aws import open_provider

    provider = open_provider("bench")
    [parent] = provider.describe_jobs([array_id])
    rows: list[list[object]] = []
    for label, method in (
        ("API list_children(ARRAY)", provider.list_children),
        ("API list_child_summaries(ARRAY)", provider.list_child_summaries),
    ):
        before = server.app.snapshot()
        start = time.perf_counter()
        children = method(parent)
        seconds = time.perf_counter() - start
        delta = server.app.snapshot() - before
        calls = ", ".join(f"{k}={v}" for k, v in sorted(delta.items()))
        rows.append([label, f"{seconds:.2f}", sum(delta.values()), len(children), calls])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=3998)
    parser.add_argument("--array", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="added to every AWS call, as a round trip to AWS would (0: moto's own speed)",
    )
    args = parser.parse_args()
    with moto_server(aws_list_jobs=True) as server:
        env = bench_environment(server.endpoint)
        cluster = create_cluster("bench", endpoint_url=server.endpoint)
        array_id = populate(
            cluster.job_queue,
            cluster.job_definition,
            cluster.job_definition_mnp,
            args.singles,
            args.array,
        )
        server.app.latency = args.latency_ms / 1000  # for the measured commands only
        bin_dir = awsbatch_cli_bin()
        tools = [("batchkit stat", [batchkit_exe(), "stat"])]
        if bin_dir is not None:
            tools.append(("awsbstat", [str(bin_dir / "awsbstat")]))
        commands = [
            (name, shown, [*argv, "-c", "bench", *extra])
            for shown, extra in (
                ("-s ALL -e", ["-s", "ALL", "-e"]),
                ("-s ALL", ["-s", "ALL"]),
                ("ARRAY_ID", [array_id]),
            )
            for name, argv in tools
        ]
        # Interleaved (each command once per round), so that load from elsewhere on the
        # machine falls on every command alike.
        samples: dict[tuple[str, str], list[Run]] = {
            (name, shown): [] for name, shown, _ in commands
        }
        for _ in range(args.repeat):
            for name, shown, argv in commands:
                samples[name, shown].append(timed(server, f"{name} {shown}", argv, env))
        runs = {key: median_run(found) for key, found in samples.items()}
        rows = []
        for (_name, shown), run in runs.items():
            baseline = runs.get(("awsbstat", shown))
            ratio = f"{run.seconds / baseline.seconds:.2f}x" if baseline else "-"
            shown_rows = max(0, len(run.stdout.splitlines()) - 2)
            calls = ", ".join(f"{k}={v}" for k, v in sorted(run.calls_by_operation.items()))
            rows.append([run.label, f"{run.seconds:.2f}", ratio, run.calls, shown_rows, calls])
        rows.extend([*row[:2], "-", *row[2:]] for row in provider_rows(server, array_id))
        total = args.singles + 1 + args.array + 1
        print(
            f"stat over {total:,} jobs: {args.singles:,} single jobs, a {args.array:,}-child "
            f"array and a 4-node MNP job (moto server, simple Batch, ListJobs answering as AWS "
            f"does, {args.latency_ms:g} ms added to each call; median of {args.repeat})"
        )
        print(
            table(
                ["command", "wall s", "vs awsbstat", "API calls", "rows", "calls by operation"],
                rows,
            )
        )
        if bin_dir is None:
            print("awsbatch-cli not installed: set BATCHKIT_AWSBATCH_CLI_BIN (see scripts/test)")
        print(
            "notes: ListJobs goes through a shim that makes moto answer as AWS does (top-level "
            "jobs only, a parent's arrayProperties with its statusSummary, pages of 1,000), so "
            "each tool makes the calls it would make on AWS. awsbstat -e describes every parent "
            "and then every child (100 ids a call, one call after another); batchkit lists a "
            "big array's children by status (ListJobs, 1,000 a page, only the statuses the "
            "parent counts) and describes small arrays and MNP nodes, whichever takes fewer "
            "calls. moto keeps numNodes=1 for MNP jobs and creates no node jobs, so neither "
            "tool expands the MNP job. `stat ARRAY_ID` lists the children for the table; `-d` "
            "describes them. Wall time includes each CLI's start-up; API rows are in-process."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

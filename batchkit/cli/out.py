"""`batchkit out` (≡ `awsbout`): print a job's output."""

from __future__ import annotations

from typing import Annotated

import typer

from batchkit.cli.context import (
    ClusterOption,
    DebugOption,
    JsonOption,
    LogLevelOption,
    ProfileOption,
    RegionOption,
    session,
)


def out(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(metavar="JOB_ID", help="Job id (array child id:i, MNP node id#n).")
    ],
    head: Annotated[
        int | None, typer.Option("-hd", "--head", metavar="N", help="Only the first N lines.")
    ] = None,
    tail: Annotated[
        int | None, typer.Option("-t", "--tail", metavar="N", help="Only the last N lines.")
    ] = None,
    stream: Annotated[
        bool, typer.Option("-s", "--stream", help="Follow the output until the job ends.")
    ] = False,
    stream_period: Annotated[
        int | None,
        typer.Option(
            "-sp",
            "--stream-period",
            metavar="SECONDS",
            help="Seconds between polls with -s (default 5).",
        ),
    ] = None,
    attempt: Annotated[
        str | None,
        typer.Option(
            "--attempt",
            metavar="N|all",
            help="A retried job: attempt N (from 1) or all of them in order (default: the latest).",
        ),
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the bare messages, no times.")] = False,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Print a job's output: all of it, its head or tail, or follow it.

    For an array or multi-node parent, its children's output is shown, each line labelled with
    the child id. A retried job shows its latest attempt unless --attempt says otherwise.
    """
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import logprint, output
        from batchkit.jobs.logtail import LogBatch
        from batchkit.jobs.validation import check_out_flags, parse_attempt

        check_out_flags(head, tail, stream, stream_period)
        chosen = parse_attempt(attempt)
        cluster_obj = cli.connect(cluster, profile=profile, region=region)
        printed = False
        for item in cluster_obj.log_batches(
            job_id,
            head=head,
            tail=tail,
            follow=stream,
            period=float(stream_period or 5),
            attempt=chosen,
        ):
            if isinstance(item, LogBatch):
                if json_:
                    for line in item.lines():
                        term.json_line(logprint.log_json(line))
                elif item.events:
                    printed = True
                    term.data(logprint.log_block(item, raw=raw))
                continue
            if json_:
                value = logprint.log_json(item)
                if value is not None:
                    term.json_line(value)
                continue
            printed = True
            text, is_data = logprint.log_line(item, raw=raw)
            if is_data:
                term.data(text)
            else:
                term.message(text)
        if not printed and not json_:
            term.message(output.no_events(cluster_obj.describe(job_id)))

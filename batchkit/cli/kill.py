"""`batchkit kill` (≡ `awsbkill`): cancel or terminate jobs."""

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
    as_awsbatch_cli,
    session,
)
from batchkit.errors import ExitCode


def kill(
    ctx: typer.Context,
    job_ids: Annotated[
        list[str], typer.Argument(metavar="JOB_ID", help="Jobs to cancel or terminate.")
    ],
    reason: Annotated[
        str,
        typer.Option("-r", "--reason", metavar="TEXT", help="Why (shown as the status reason)."),
    ] = "Terminated by the user",
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Cancel jobs that have not started and terminate running ones. Exit 3 if an id is unknown."""
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import output

        results = cli.connect(cluster, profile=profile, region=region).kill(job_ids, reason)
        if json_:
            term.json(
                [
                    {
                        "jobId": r.job_id,
                        "outcome": r.outcome.value,
                        "status": r.status.value if r.status else None,
                    }
                    for r in results
                ]
            )
        missing = []
        for result in results:
            text, is_error = output.kill_message(result)
            if is_error:
                missing.append(result.job_id)
            elif not json_:
                term.data(text)
        if missing:
            term.message(output.jobs_not_found(missing, awsbatch_cli=as_awsbatch_cli(ctx)))
            raise typer.Exit(int(ExitCode.NOT_FOUND))

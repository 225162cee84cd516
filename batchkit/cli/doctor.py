"""`batchkit doctor`: why a job waits or failed, and what to change."""

from __future__ import annotations

from typing import Annotated

import typer

from batchkit.cli.context import (
    ClusterOption,
    DebugOption,
    JsonOption,
    ProfileOption,
    RegionOption,
    session,
)
from batchkit.errors import ExitCode


def doctor(
    ctx: typer.Context,
    job_id: Annotated[
        str | None,
        typer.Argument(metavar="JOB_ID", help="The job to diagnose (default: the whole cluster)."),
    ] = None,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Without JOB_ID: diagnose jobs RUNNABLE or STARTING for longer than this "
            "(600, 10m, 2h).",
        ),
    ] = "10m",
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Say why a job is stuck or failed, and what to change.

    With JOB_ID: the job, its queue, the queue's compute environments and what they depend on
    (instance types, maxvCpus, subnets and routes, security groups, dependencies, the end of the
    failing attempt's log). Without: every queue and compute environment, and every job RUNNABLE
    or STARTING for longer than --older-than. Findings are listed most likely cause first.
    Read-only. Exit 0 when nothing is wrong, 1 when a problem is found.
    """
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import findings
        from batchkit.doctor.runner import parse_age

        age = parse_age(older_than)  # checked before any call
        report = cli.connect(cluster, profile=profile, region=region).doctor(job_id, older_than=age)
        if json_:
            term.json(report.to_dict())
        else:
            term.data(findings.report_text(report, colour=term.colour))
        if report.has_problem:
            raise typer.Exit(int(ExitCode.JOB_FAILED))

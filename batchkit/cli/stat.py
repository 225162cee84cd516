"""`batchkit stat` (≡ `awsbstat`): show jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

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
from batchkit.models import ACTIVE_STATUSES, Job, JobStatus

if TYPE_CHECKING:
    from batchkit.doctor.findings import Finding

DEFAULT_STATUSES = ",".join(status.value for status in ACTIVE_STATUSES)


def stat(
    ctx: typer.Context,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="JOB_ID", help="Jobs to show (with their children)."),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "-s",
            "--status",
            metavar="STATUSES",
            help=f"Comma list of statuses, or ALL (default: {DEFAULT_STATUSES}).",
        ),
    ] = None,
    expand_children: Annotated[
        bool, typer.Option("-e", "--expand-children", help="Show array and MNP children.")
    ] = False,
    details: Annotated[bool, typer.Option("-d", "--details", help="One block per job.")] = False,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", metavar="QUEUE", help="List this queue only (default: every queue)."
        ),
    ] = None,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show the jobs of the cluster's queues by status, or the jobs given by id."""
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import output
        from batchkit.jobs.validation import parse_statuses

        statuses = parse_statuses(status or DEFAULT_STATUSES)
        cluster_obj = cli.connect(cluster, profile=profile, region=region)
        missing: list[str] = []
        if job_ids:
            found = cluster_obj.jobs_by_ids(job_ids, details=details or json_)
            jobs, missing = found.jobs, found.missing
            show_details = details or (len(job_ids) == 1 and found.single_simple)
        else:
            jobs = cluster_obj.jobs(
                statuses, expand=expand_children, queue=queue, details=details or json_
            )
            show_details = details
        alias = as_awsbatch_cli(ctx)
        # for jobs asked by id: the doctor's one-line "why" of a RUNNABLE, PENDING or FAILED job
        # (not as awsbstat, whose output stays awsbstat's)
        why = (
            {job.job_id: cluster_obj.why(job) for job in _explainable(jobs)}
            if job_ids and not alias
            else {}
        )
        if json_:
            term.json([_with_why(output.job_json(job), why.get(job.job_id)) for job in jobs])
        elif show_details:
            term.data(output.job_details(jobs))
        elif jobs or not missing or alias:  # awsbstat prints its (empty) table regardless
            term.data(output.job_table(jobs, term))
        if not json_:
            for job_id, finding in why.items():
                if finding is not None:
                    term.message(finding.why(job_id))
        if missing:
            term.message(output.jobs_not_found(missing, awsbatch_cli=alias))
            raise typer.Exit(int(ExitCode.NOT_FOUND))


WHY_LIMIT = 10
"""`stat` explains at most this many jobs (each RUNNABLE one costs two calls)."""


def _explainable(jobs: Sequence[Job]) -> list[Job]:
    wanted = (JobStatus.RUNNABLE, JobStatus.PENDING, JobStatus.FAILED)
    top = [job for job in jobs if job.status in wanted and not job.id.is_child]
    return top[:WHY_LIMIT]


def _with_why(data: dict[str, Any], finding: Finding | None) -> dict[str, Any]:
    return {**data, "why": finding.to_dict()} if finding is not None else data

"""`batchkit sub` (≡ `awsbsub`): submit a job."""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

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
from batchkit.errors import ExitCode
from batchkit.models import JobStatus

if TYPE_CHECKING:
    from batchkit.api import Cluster
    from batchkit.cli.output import Terminal
    from batchkit.models import Job


class Executor(StrEnum):
    auto = "auto"
    process = "process"
    docker = "docker"


CONTEXT_SETTINGS = {"allow_interspersed_args": False}


def sub(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND",
            help="The command and its arguments (or, with -cf, a local script and its "
            "arguments). Without one, a script piped on stdin is run.",
            show_default=False,
        ),
    ] = None,
    job_name: Annotated[
        str | None,
        typer.Option(
            "-jn", "--job-name", metavar="NAME", help="Job name (default from the command)."
        ),
    ] = None,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    command_file: Annotated[
        bool,
        typer.Option("-cf", "--command-file", help="COMMAND is a local file to stage and run."),
    ] = False,
    working_dir: Annotated[
        str | None,
        typer.Option(
            "-w", "--working-dir", metavar="DIR", help="Run in this directory (created if needed)."
        ),
    ] = None,
    parent_working_dir: Annotated[
        str | None,
        typer.Option(
            "-pw",
            "--parent-working-dir",
            metavar="DIR",
            help="Run in DIR/job-<id> (created if needed).",
        ),
    ] = None,
    input_file: Annotated[
        list[str] | None,
        typer.Option(
            "-if", "--input-file", metavar="FILE", help="A file to copy into the working directory."
        ),
    ] = None,
    vcpus: Annotated[
        float, typer.Option("-p", "--vcpus", metavar="N", help="vCPUs (per node).")
    ] = 1,
    memory: Annotated[
        int | None,
        typer.Option(
            "-m",
            "--memory",
            metavar="MIB",
            help="Memory in MiB (per node); default 128, on Fargate the least it offers for -p.",
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "-e",
            "--env",
            metavar="NAMES|all",
            help="Variables to export: a comma list of names, or all.",
        ),
    ] = None,
    env_blacklist: Annotated[
        str | None,
        typer.Option(
            "-eb", "--env-blacklist", metavar="NAMES", help="With -e all: names not to export."
        ),
    ] = None,
    retry_attempts: Annotated[
        int, typer.Option("-r", "--retry-attempts", metavar="N", help="Attempts, 1 to 10.")
    ] = 1,
    timeout: Annotated[
        int | None,
        typer.Option(
            "-t", "--timeout", metavar="SECONDS", help="Seconds per attempt, at least 60."
        ),
    ] = None,
    nodes: Annotated[
        int,
        typer.Option(
            "-n", "--nodes", metavar="N", help="Nodes; more than 1 makes a multi-node job."
        ),
    ] = 1,
    array_size: Annotated[
        int | None,
        typer.Option("-a", "--array-size", metavar="N", help="Array children, 2 to 10,000."),
    ] = None,
    depends_on: Annotated[
        list[str] | None,
        typer.Option(
            "-d",
            "--depends-on",
            metavar="SPEC",
            help="jobId=<id>[,type=N_TO_N|SEQUENTIAL]; repeat (or separate with ;), up to 20.",
        ),
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", metavar="N", help="GPUs (per node).")] = 0,
    image: Annotated[
        str | None, typer.Option("--image", metavar="IMAGE", help="Container image to run in.")
    ] = None,
    executor: Annotated[
        Executor,
        typer.Option("--executor", help="Local engine: run in a process or a Docker container."),
    ] = Executor.auto,
    queue: Annotated[
        str | None,
        typer.Option("-q", "--queue", metavar="QUEUE", help="Job queue (default: the cluster's)."),
    ] = None,
    spot_retry: Annotated[
        bool,
        typer.Option(
            "--spot-retry",
            help="AWS: retry only attempts whose Spot host was reclaimed (3 attempts unless "
            "-r gives more); accepted and without effect on the local engine.",
        ),
    ] = False,
    share: Annotated[
        str | None,
        typer.Option(
            "--share",
            metavar="ID",
            help="Fair-share queues: the share identifier the job belongs to (required there).",
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            "--priority",
            metavar="N",
            help="Fair-share queues: priority within the share, 0 to 9999 (higher first).",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the end; exit 0 if it succeeded, 1 if not.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Print the output as it runs (implies --wait).")
    ] = False,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Submit a job: a command, a script (-cf) or a script on stdin.

    Options go before the command: `batchkit sub -p 2 ls -la` runs `ls -la`.
    """
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import output
        from batchkit.config import load_user_config
        from batchkit.jobs.flags import SubmitFlags, prepare

        flags = SubmitFlags(
            argv=tuple(command or ()),
            job_name=job_name,
            command_file=command_file,
            working_dir=working_dir,
            parent_working_dir=parent_working_dir,
            input_files=tuple(input_file or ()),
            vcpus=vcpus,
            memory=memory,
            gpus=gpus,
            env=",".join(env) if env else None,
            env_blacklist=env_blacklist,
            retry_attempts=retry_attempts,
            timeout=timeout,
            nodes=nodes,
            array_size=array_size,
            depends_on=tuple(depends_on or ()),
            image=image,
            queue=queue,
            executor=executor.value,
            spot_retry=spot_retry,
            share=share,
            priority=priority,
        )
        blacklist = load_user_config().env_blacklist if flags.env_blacklist is None else None
        # Without a command, a piped stdin is the script. With an inline command, an empty or
        # closed stdin (CI, cron) is no script and the command runs; one holding data is
        # ambiguous. `-cf` names its script: stdin is left alone.
        piped = cli.stdin_kind() in ("pipe", "file")
        if not flags.argv:
            stdin_has_script = piped
        else:
            stdin_has_script = piped and not flags.command_file and cli.stdin_has_data()
        prepared = prepare(  # every check runs here, before any cluster is contacted
            flags,
            environ=cli.environ,
            stdin_has_script=stdin_has_script,
            read_stdin=cli.read_stdin,
            default_blacklist=blacklist,
        )
        for warning in prepared.warnings:
            term.message(output.warning(warning))
        from batchkit.jobs.multinode import MultiNodeWarning

        cluster_obj = cli.connect(cluster, profile=profile, region=region)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MultiNodeWarning)
            job = cluster_obj.submit(prepared.spec)
        for item in caught:
            if issubclass(item.category, MultiNodeWarning):
                term.message(output.warning(str(item.message)))
            else:
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        if not json_:
            term.data(output.submitted(job))
        if not (wait or follow):
            if json_:
                term.json(output.job_json(job))
            return
        try:
            final = _block(cluster_obj, term, job, follow=follow, json_=json_)
        except KeyboardInterrupt:
            term.message(
                f"job {job.job_id} keeps running: see it with `batchkit stat {job.job_id}`, "
                f"stop it with `batchkit kill {job.job_id}`"
            )
            raise
        if json_:
            term.json(output.job_json(final))
        if final.status is not JobStatus.SUCCEEDED:
            raise typer.Exit(int(ExitCode.JOB_FAILED))


def _block(cluster: Cluster, term: Terminal, job: Job, *, follow: bool, json_: bool) -> Job:
    """--wait: the status on stderr at each change (one line rewritten on a terminal);
    --follow: the output on stdout as it comes, then the final status on stderr."""
    from batchkit.cli.logprint import log_line
    from batchkit.cli.output import failure_reason, progress
    from batchkit.jobs.logtail import AttemptStart

    # a job still RUNNABLE after a while: the doctor's leading finding, once, on stderr
    stuck = cluster.stuck_watch(lambda finding: term.message(finding.why(job.job_id)))
    final = job
    if follow:
        for item in cluster.logs(job.job_id, follow=True, period=1.0, stuck=stuck):
            text, is_data = log_line(item, raw=False)
            if is_data and not json_:
                term.data(text)
            elif isinstance(item, AttemptStart):  # a retry began
                term.message(text)
        final = cluster.describe(job.job_id)
        term.message(progress(final))
    else:
        for final in cluster.watch(job.job_id, stuck=stuck):
            term.status(progress(final))
        term.end_status()
    reason = failure_reason(final)
    if reason:
        term.message(reason)
    return final

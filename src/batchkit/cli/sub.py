"""`batchkit sub` (≡ `awsbsub`): submit a job."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchkit.cli.context import ClusterOption, DebugOption, JsonOption, session

if TYPE_CHECKING:
    from batchkit.api import Cluster
    from batchkit.cli.output import Terminal
    from batchkit.models import Job


class Executor(StrEnum):
    auto = "auto"
    process = "process"
    docker = "docker"


CONTEXT_SETTINGS = {"allow_interspersed_args": False}


def default_job_name(command: str | None, from_stdin: bool) -> str:
    """awsbsub's rule: `STDIN` for a piped script, else the command's base name with every run of
    non-word characters turned into `_` (`my.sh` → `my_sh`), cut to Batch's 128 characters."""
    if from_stdin or not command:
        return "STDIN"
    return re.sub(r"\W+", "_", Path(command).name, flags=re.ASCII)[:128] or "job"


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
        int, typer.Option("-m", "--memory", metavar="MIB", help="Memory in MiB (per node).")
    ] = 128,
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
        typer.Option("--queue", metavar="QUEUE", help="Job queue (default: the cluster's)."),
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
    """Submit a job: an inline command, a local script (-cf), or a script piped on stdin.

    Options go before the command: `batchkit sub -p 2 ls -la` runs `ls -la`.
    """
    with session(ctx, debug) as (cli, term):
        from batchkit.cli.output import job_json
        from batchkit.config import load_user_config
        from batchkit.jobs import validation
        from batchkit.jobs.staging import select_environment
        from batchkit.jobs.submission import EXECUTOR_TAG, read_command_file
        from batchkit.models import JobSpec, Resources

        argv = list(command or [])
        env_flag = ",".join(env) if env else None
        validation.check_env_flags(env_flag, env_blacklist)
        validation.check_working_dirs(working_dir, parent_working_dir)
        kind = cli.stdin_kind()
        from_stdin = not argv and kind in ("pipe", "file")
        if argv and kind in ("pipe", "file") and not command_file:
            raise _usage(
                "a command was given and a script is waiting on stdin",
                "pass the command, or pipe a script, not both (add `< /dev/null` to run the "
                "command)",
            )
        if command_file and not argv:
            raise _usage("-cf/--command-file needs the path of a script", "e.g. -cf ./run.sh")
        script: bytes | None = None
        arguments: tuple[str, ...] = ()
        inline: tuple[str, ...] = ()
        if command_file:
            script, arguments = read_command_file(argv[0]), tuple(argv[1:])
        elif from_stdin:
            script = cli.read_stdin()
        else:
            inline = tuple(argv)
        blacklist = (
            [n.strip() for n in env_blacklist.split(",") if n.strip()]
            if env_blacklist is not None
            else load_user_config().env_blacklist
        )
        selection = select_environment(env_flag, cli.environ, blacklist)
        for name in selection.missing:
            term.message(f"warning: -e {name}: not set here, not exported")
        for name, why in selection.refused:
            term.message(f"warning: -e {name}: not exported ({why})")
        spec = JobSpec(
            name=job_name or default_job_name(argv[0] if argv else None, from_stdin),
            command=inline,
            script=script,
            script_name=Path(argv[0]).name if command_file else None,
            arguments=arguments,
            working_dir=working_dir,
            parent_working_dir=parent_working_dir,
            input_files=tuple(input_file or ()),
            env=selection.variables,
            resources=Resources(vcpus=vcpus, memory=memory, gpus=gpus),
            image=image,
            queue=queue,
            array_size=array_size,
            nodes=nodes,
            depends_on=validation.parse_dependencies(depends_on or ()),
            retry_attempts=retry_attempts,
            timeout=timeout,
            tags={EXECUTOR_TAG: executor.value},
        )
        validation.validate_spec(spec)  # before connecting: a typo needs no credentials
        validation.check_inputs(spec)
        cluster_obj = cli.connect(cluster)
        job = cluster_obj.submit(spec)
        if not json_:
            term.data(_submitted(job))
        if not (wait or follow):
            if json_:
                term.json(job_json(job))
            return
        final = _block(cluster_obj, term, job, follow=follow, json_=json_)
        if json_:
            term.json(job_json(final))
        if final.status.value != "SUCCEEDED":
            raise typer.Exit(1)


def _submitted(job: Job) -> str:
    from batchkit.cli.output import submitted

    return submitted(job)


def _block(cluster: Cluster, term: Terminal, job: Job, *, follow: bool, json_: bool) -> Job:
    """--wait: progress lines on stderr; --follow: the output on stdout as it comes."""
    from batchkit.cli.output import log_line, progress

    if follow:
        for item in cluster.logs(job.job_id, follow=True, period=1.0):
            text, is_data = log_line(item, raw=False)
            if is_data and not json_:
                term.data(text)
        final = cluster.describe(job.job_id)
    else:
        final = job
        for final in cluster.watch(job.job_id):
            term.message(progress(final))
    if follow:
        term.message(progress(final))
    if final.status.value != "SUCCEEDED" and final.status_reason:
        term.message(f"reason: {final.status_reason}")
    return final


def _usage(message: str, hint: str) -> Exception:
    from batchkit.errors import UsageError

    return UsageError(message, hint=hint)

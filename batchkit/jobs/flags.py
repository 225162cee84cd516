"""awsbsub's flags, turned into a validated `JobSpec`.

The command line (and any other front end that speaks awsbsub, such as a notebook magic) fills a
`SubmitFlags` with what was typed; `prepare` decides what runs (inline command, `-cf` file or a
script on stdin, as awsbsub does), reads the files, selects the environment, parses `-d`, names the
job, and validates it all, so that a mistake is reported before any cluster is contacted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from msgspec import Struct

from batchkit.errors import UsageError
from batchkit.jobs import fairshare, validation
from batchkit.jobs.staging import select_environment
from batchkit.jobs.submission import read_command_file
from batchkit.models import EXECUTOR_TAG, SPOT_RETRY_TAG, JobSpec, Resources

DEFAULT_MEMORY_MIB = 128
"""awsbsub's `-m` default: enough for a shell script."""


class SubmitFlags(Struct, frozen=True):
    """What was typed after `sub` (awsbsub's flags plus batchkit's), before reading anything."""

    argv: tuple[str, ...] = ()
    script: bytes | None = None  # a script given as text (a notebook cell): argv are its arguments
    job_name: str | None = None
    command_file: bool = False
    working_dir: str | None = None
    parent_working_dir: str | None = None
    input_files: tuple[str, ...] = ()
    vcpus: float = 1
    memory: int | None = None  # None: DEFAULT_MEMORY_MIB (on Fargate, the least size above it)
    gpus: int = 0
    env: str | None = None
    env_blacklist: str | None = None
    retry_attempts: int = 1
    timeout: int | None = None
    nodes: int = 1
    array_size: int | None = None
    depends_on: tuple[str, ...] = ()
    image: str | None = None
    queue: str | None = None
    executor: str = "auto"
    spot_retry: bool = False
    share: str | None = None
    priority: int | None = None


class PreparedJob(Struct, frozen=True):
    spec: JobSpec
    warnings: tuple[str, ...] = ()


def default_job_name(command: str | None, from_stdin: bool) -> str:
    """awsbsub's rule: `STDIN` for a piped script, else the command's base name with every run of
    non-word characters turned into `_` (`my.sh` → `my_sh`). Unlike awsbsub, the result always
    passes Batch's rule: ASCII only, starting with a letter or digit, at most 128 characters."""
    if from_stdin or not command:
        return "STDIN"
    name = re.sub(r"\W+", "_", Path(command).name, flags=re.ASCII).lstrip("_")
    return name[:128] or "job"


def job_tags(executor: str | None, *, spot_retry: bool) -> dict[str, str]:
    """The batchkit tags of a submission: the local executor preference (None: the default) and
    the opt-in spot retry policy."""
    tags = {} if executor is None else {EXECUTOR_TAG: executor}
    if spot_retry:
        tags[SPOT_RETRY_TAG] = "true"
    return tags


def prepare(
    flags: SubmitFlags,
    *,
    environ: Mapping[str, str],
    stdin_has_script: bool = False,
    read_stdin: Callable[[], bytes] = bytes,
    default_blacklist: Sequence[str] | None = None,
) -> PreparedJob:
    """The job `flags` describe. `stdin_has_script`: stdin is a pipe or a file that holds a script
    (an inline command and a script together are refused; without a command, it must not be
    blank; `-cf` ignores stdin); `default_blacklist`: the user config's `env_blacklist` (None:
    awsbsub's list)."""
    validation.check_env_flags(flags.env, flags.env_blacklist)
    validation.check_working_dirs(flags.working_dir, flags.parent_working_dir)
    argv = flags.argv
    if flags.command_file and not argv:
        raise UsageError("-cf/--command-file needs the path of a script", hint="e.g. -cf ./run.sh")
    if argv and stdin_has_script and not flags.command_file and flags.script is None:
        raise UsageError(
            "a command was given and a script is waiting on stdin",
            hint="pass the command, or pipe a script, not both "
            "(add `< /dev/null` to run the command)",
        )
    from_stdin = not argv and stdin_has_script and flags.script is None
    script: bytes | None = None
    arguments: tuple[str, ...] = ()
    inline: tuple[str, ...] = ()
    if flags.script is not None:
        if flags.command_file:
            raise UsageError(
                "-cf/--command-file cannot be used with a script given as text",
                hint="the text is the script: leave out -cf",
            )
        script, arguments = flags.script, argv
    elif flags.command_file:
        script, arguments = read_command_file(argv[0]), argv[1:]
    elif from_stdin:
        script = read_stdin()
        if not script.strip():
            raise UsageError(
                "no command given and the script on stdin is empty",
                hint="pipe a script (e.g. echo date | batchkit sub) or give a command "
                "(batchkit sub echo hi)",
            )
    else:
        inline = argv
    blacklist = (
        [name.strip() for name in flags.env_blacklist.split(",") if name.strip()]
        if flags.env_blacklist is not None
        else default_blacklist
    )
    selection = select_environment(flags.env, environ, blacklist)
    warnings = [f"-e {name}: not set here, not exported" for name in selection.missing]
    warnings += [f"-e {name}: not exported ({why})" for name, why in selection.refused]
    spec = JobSpec(
        name=flags.job_name
        if flags.job_name is not None  # an empty -jn is refused, not replaced
        else default_job_name(argv[0] if argv else None, from_stdin or flags.script is not None),
        command=inline,
        script=script,
        script_name=Path(argv[0]).name if flags.command_file else None,
        arguments=arguments,
        working_dir=flags.working_dir,
        parent_working_dir=flags.parent_working_dir,
        input_files=flags.input_files,
        env=selection.variables,
        resources=Resources(
            vcpus=flags.vcpus,
            memory=DEFAULT_MEMORY_MIB if flags.memory is None else flags.memory,
            gpus=flags.gpus,
        ),
        image=flags.image,
        queue=flags.queue,
        array_size=flags.array_size,
        nodes=flags.nodes,
        depends_on=validation.parse_dependencies(flags.depends_on),
        retry_attempts=flags.retry_attempts,
        timeout=flags.timeout,
        tags=job_tags(flags.executor, spot_retry=flags.spot_retry),
        share=flags.share,
        priority=flags.priority,
        memory_default=flags.memory is None,
    )
    validation.validate_spec(spec)
    fairshare.check_share_flags(spec)
    validation.check_inputs(spec)
    return PreparedJob(spec, tuple(warnings))

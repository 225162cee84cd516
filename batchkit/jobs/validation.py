"""Every check on what a user typed, before anything is uploaded or submitted.

Each failure is a `UsageError` (exit 2) whose message names the flag and whose hint says how to fix
it. The limits are AWS Batch's own (SubmitJob), so a job that passes here is not rejected later by
the service for its shape; the local engine enforces the same limits so both behave alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from batchkit.errors import UsageError
from batchkit.limits import (
    MAX_ARRAY_SIZE,
    MAX_DEPENDENCIES,
    MAX_NODES,
    MAX_RETRY_ATTEMPTS,
    MAX_TIMEOUT_SECONDS,
    MIN_ARRAY_SIZE,
    MIN_MEMORY_MIB,
    MIN_RETRY_ATTEMPTS,
    MIN_TIMEOUT_SECONDS,
)
from batchkit.models import EXECUTOR_TAG, Dependency, DependencyType, JobSpec, JobStatus

# AWS Batch's own limits, each with the page it comes from, live in `batchkit.limits` (shared with
# the local engine's admission and the AWS payload); they stay importable from here. Below are the
# bounds that are batchkit's own reading of what Batch can place and what CloudWatch Logs returns.

# A job is placed on one instance (one per node): a request larger than the largest EC2 instance
# type (u7in-32tb.224xlarge: 896 vCPUs, 32 TiB; p2.16xlarge: 16 GPUs) could never be placed, and
# Batch would leave it RUNNABLE forever ("Jobs stuck in a RUNNABLE status", AWS Batch User Guide).
MAX_VCPUS = 896
MAX_MEMORY_MIB = 32 * 1024 * 1024
MAX_GPUS = 16
# GetLogEvents returns at most 10,000 events a call (CloudWatch Logs API reference, `limit`).
MAX_LOG_LINES = 10_000
MAX_STREAM_PERIOD = 3_600

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEPENDENCY_KEYS = ("jobId", "type")


def validate_spec(spec: JobSpec) -> None:
    """Check a complete job specification; raise `UsageError` at the first problem."""
    if not _JOB_NAME.match(spec.name):
        raise UsageError(
            f"-jn/--job-name {spec.name!r} is not a valid job name",
            hint="use up to 128 letters, digits, hyphens or underscores, "
            "starting with a letter or digit",
        )
    if spec.command and spec.script is not None:
        raise UsageError(
            "both a command and a script were given",
            hint="pass a command, a command file (-cf) or a script on stdin, not several",
        )
    if not spec.command and spec.script is None:
        raise UsageError(
            "no command given",
            hint="add a command (`batchkit sub echo hi`), a file with -cf, or pipe a script",
        )
    if spec.command and spec.arguments:
        raise UsageError(
            "arguments are only for scripts", hint="put them after the command instead"
        )
    check_working_dirs(spec.working_dir, spec.parent_working_dir)
    for name in spec.env:
        if not _ENV_NAME.match(name):
            raise UsageError(
                f"-e/--env: {name!r} is not a valid environment variable name",
                hint="names are letters, digits and underscores, not starting with a digit",
            )
    if spec.tags.get(EXECUTOR_TAG) == "docker" and not spec.image:
        raise UsageError(
            "--executor docker needs --image",
            hint="name the image to run in (--image IMAGE), or drop --executor docker",
        )
    _check_resources(spec)
    _check_shape(spec)


def _check_resources(spec: JobSpec) -> None:
    vcpus = spec.resources.vcpus
    if not (math.isfinite(vcpus) and vcpus > 0):
        raise UsageError(
            f"-p/--vcpus must be positive, got {vcpus:g}", hint="ask for at least 1 vCPU (-p 1)"
        )
    if vcpus > MAX_VCPUS:
        raise UsageError(
            f"-p/--vcpus must be at most {MAX_VCPUS}, got {vcpus:g}",
            hint=f"no EC2 instance has more than {MAX_VCPUS} vCPUs; split the work (-a or -n)",
        )
    if not MIN_MEMORY_MIB <= spec.resources.memory <= MAX_MEMORY_MIB:
        raise UsageError(
            f"-m/--memory must be between {MIN_MEMORY_MIB} and {MAX_MEMORY_MIB} MiB, "
            f"got {spec.resources.memory}",
            hint="memory is in MiB: -m 2048 asks for 2 GiB",
        )
    if not 0 <= spec.resources.gpus <= MAX_GPUS:
        raise UsageError(
            f"--gpus must be between 0 and {MAX_GPUS}, got {spec.resources.gpus}",
            hint=f"no EC2 instance has more than {MAX_GPUS} GPUs; use --gpus 1 or more",
        )
    if not MIN_RETRY_ATTEMPTS <= spec.retry_attempts <= MAX_RETRY_ATTEMPTS:
        raise UsageError(
            f"-r/--retry-attempts must be between {MIN_RETRY_ATTEMPTS} and {MAX_RETRY_ATTEMPTS}, "
            f"got {spec.retry_attempts}",
            hint="1 means a single attempt, no retry",
        )
    if spec.timeout is not None and spec.timeout < MIN_TIMEOUT_SECONDS:
        raise UsageError(
            f"-t/--timeout must be at least {MIN_TIMEOUT_SECONDS} seconds, got {spec.timeout}",
            hint="AWS Batch does not accept shorter attempt timeouts",
        )
    if spec.timeout is not None and spec.timeout > MAX_TIMEOUT_SECONDS:
        raise UsageError(
            f"-t/--timeout must be at most {MAX_TIMEOUT_SECONDS} seconds, got {spec.timeout}",
            hint="leave -t out for no timeout",
        )


def _check_shape(spec: JobSpec) -> None:
    if not 1 <= spec.nodes <= MAX_NODES:
        raise UsageError(
            f"-n/--nodes must be between 1 and {MAX_NODES}, got {spec.nodes}",
            hint="-n 1 (the default) is a normal job; -n 2 or more a multi-node parallel job",
        )
    if spec.array_size is not None:
        if not MIN_ARRAY_SIZE <= spec.array_size <= MAX_ARRAY_SIZE:
            raise UsageError(
                f"-a/--array-size must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE}, "
                f"got {spec.array_size}",
                hint="leave -a out for a single job",
            )
        if spec.nodes > 1:
            raise UsageError(
                "-a/--array-size cannot be combined with -n/--nodes greater than 1",
                hint="AWS Batch has no multi-node array jobs; submit one or the other",
            )
    if len(spec.depends_on) > MAX_DEPENDENCIES:
        raise UsageError(
            f"-d/--depends-on: {len(spec.depends_on)} dependencies given, "
            f"at most {MAX_DEPENDENCIES} are allowed",
            hint="make a single job depend on the others and depend on that one",
        )
    for dep in spec.depends_on:
        if dep.job_id is None and spec.array_size is None:
            raise UsageError(
                "-d/--depends-on type=SEQUENTIAL without a jobId needs -a/--array-size",
                hint="it makes the children of an array run one after another",
            )


def check_working_dirs(working_dir: str | None, parent_working_dir: str | None) -> None:
    if working_dir is not None and parent_working_dir is not None:
        raise UsageError(
            "-w/--working-dir and -pw/--parent-working-dir cannot be used together",
            hint="-w DIR runs in DIR; -pw DIR runs in DIR/job-<id>; pick one",
        )
    flags = (
        ("-w/--working-dir", "-w", working_dir),
        ("-pw/--parent-working-dir", "-pw", parent_working_dir),
    )
    for flag, short, value in flags:
        if value is not None and (not value or "\0" in value):
            raise UsageError(f"{flag} must be a non-empty path", hint=f"e.g. {short} /tmp/run1")


def check_env_flags(env: str | None, env_blacklist: str | None) -> None:
    if env_blacklist is not None and (env or "").strip().lower() != "all":
        raise UsageError(
            "-eb/--env-blacklist is only allowed with -e all",
            hint="with a list of names, just leave the unwanted ones out of -e",
        )


def check_command_file(path: str) -> Path:
    """`-cf`: the command must be a local file. Returns its path."""
    return _existing_file(
        path,
        "-cf/--command-file",
        "give the path of a local script; without -cf the command runs as typed",
    )


def check_input_file(path: str) -> Path:
    return _existing_file(
        path,
        "-if/--input-file",
        "input files are uploaded by their base name; directories are not supported",
    )


def _existing_file(path: str, flag: str, hint: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{flag}: {path!r} is not a file", hint=hint)
    return file


def check_inputs(spec: JobSpec) -> None:
    """`-if`: every input file exists, and no two land on the same name in the job folder (nor on
    the name of a file staged from memory)."""
    for path in spec.input_files:
        check_input_file(path)
    reserved = [f"{spec.name}{suffix}" for suffix in (".sh", ".env.sh", ".args")]
    for name in spec.staged_files:
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise UsageError(
                f"staged file name {name!r} is not a plain file name",
                hint="staged files land in the job folder by name: use a base name like data.bin",
            )
        if name in reserved:
            raise UsageError(
                f"staged file {name!r} would overwrite the job's own {name}",
                hint="rename the staged file or pick another job name",
            )
    check_input_names(spec.input_files, [*reserved, *spec.staged_files])


def check_input_names(paths: Sequence[str], reserved: Sequence[str]) -> None:
    """Input files land in one folder by base name: two with the same name would clash, and one
    named like the job's own script or env file would overwrite it."""
    seen: dict[str, str] = {}
    for path in paths:
        base = Path(path).name
        if base in reserved:
            raise UsageError(
                f"-if/--input-file: {path!r} would overwrite the job's own {base}",
                hint="rename the file or pick another job name with -jn",
            )
        if base in seen:
            raise UsageError(
                f"-if/--input-file: {seen[base]!r} and {path!r} have the same name {base!r}",
                hint="input files are staged by base name; rename one of them",
            )
        seen[base] = path


def parse_attempt(text: str | None) -> int | Literal["all"] | None:
    """`out --attempt`: a number from 1, or `all`."""
    if text is None:
        return None
    word = text.strip().lower()
    choice: object = "all" if word == "all" else int(word) if word.isdigit() else text
    return check_attempt(choice)


def check_attempt(choice: object) -> int | Literal["all"]:
    """An attempt choice is `all` or a number from 1 (as `AWS_BATCH_JOB_ATTEMPT`)."""
    if choice == "all":
        return "all"
    in_range = isinstance(choice, int) and 1 <= choice <= MAX_RETRY_ATTEMPTS
    if in_range and isinstance(choice, int) and not isinstance(choice, bool):
        return choice
    raise UsageError(
        f"--attempt must be a number from 1 to {MAX_RETRY_ATTEMPTS} or all, got {choice!r}",
        hint="e.g. --attempt 1 (the first attempt) or --attempt all",
    )


def check_out_flags(
    head: int | None, tail: int | None, stream: bool, stream_period: int | None
) -> None:
    if head is not None and (tail is not None or stream):
        raise UsageError(
            "-hd/--head cannot be combined with -t/--tail or -s/--stream",
            hint="use --head N alone, or --tail N with or without --stream",
        )
    for flag, value in (("-hd/--head", head), ("-t/--tail", tail)):
        if value is not None and not 1 <= value <= MAX_LOG_LINES:
            raise UsageError(
                f"{flag} must be between 1 and {MAX_LOG_LINES}, got {value}",
                hint=f"e.g. {flag} 20; without -hd/-t every line is printed",
            )
    if stream_period is not None:
        if not stream:
            raise UsageError(
                "-sp/--stream-period is only allowed with -s/--stream",
                hint="add -s to follow the output",
            )
        if not 1 <= stream_period <= MAX_STREAM_PERIOD:
            raise UsageError(
                f"-sp/--stream-period must be between 1 and {MAX_STREAM_PERIOD} seconds, "
                f"got {stream_period}",
                hint="the default is 5",
            )


def parse_statuses(text: str) -> list[JobStatus]:
    """awsbstat's `-s`: a comma list of statuses (any case) or ALL."""
    try:
        return JobStatus.parse_list(text)
    except ValueError as err:
        raise UsageError(f"-s/--status: {err}", hint="e.g. -s RUNNING,FAILED or -s ALL") from None


def statuses_of(value: str | JobStatus | Sequence[str | JobStatus]) -> list[JobStatus]:
    """The API's `status=`: a status, a comma list as `-s` takes it, or a sequence of either."""
    if isinstance(value, JobStatus):
        return [value]
    if isinstance(value, str):
        return parse_statuses(value)
    return parse_statuses(",".join(s.value if isinstance(s, JobStatus) else s for s in value))


def parse_dependencies(values: Sequence[str]) -> tuple[Dependency, ...]:
    """Parse every `-d` value into dependencies.

    Each value holds one or more `;`-separated groups (awsbsub's documented form), a group being
    `jobId=<id>[,type=N_TO_N|SEQUENTIAL]` (keys in any order, `,` or space between them), or just
    `<id>`. `-d` may be repeated; at most 20 dependencies in all.
    """
    deps: list[Dependency] = []
    for value in values:
        for group in value.split(";"):
            if group.strip():
                deps.append(_parse_dependency_group(group.strip()))
    if len(deps) > MAX_DEPENDENCIES:
        raise UsageError(
            f"-d/--depends-on: {len(deps)} dependencies given, at most {MAX_DEPENDENCIES} allowed",
            hint="make a single job depend on the others and depend on that one",
        )
    return tuple(deps)


def _parse_dependency_group(group: str) -> Dependency:
    if "=" not in group:
        if re.search(r"[\s,]", group):
            raise _bad_dependency(group)
        return Dependency(job_id=group)
    fields: dict[str, str] = {}
    for item in re.split(r"[\s,]+", group):
        key, sep, value = item.partition("=")
        if not sep or key not in _DEPENDENCY_KEYS or not value or key in fields:
            raise _bad_dependency(group)
        fields[key] = value
    dep_type: DependencyType | None = None
    if "type" in fields:
        try:
            dep_type = DependencyType(fields["type"].upper())
        except ValueError:
            raise UsageError(
                f"-d/--depends-on: unknown dependency type {fields['type']!r}",
                hint="the type is N_TO_N or SEQUENTIAL (both only for array jobs), or leave it out",
            ) from None
    job_id = fields.get("jobId")
    if job_id is None and dep_type is not DependencyType.SEQUENTIAL:
        raise _bad_dependency(group)
    return Dependency(job_id=job_id, type=dep_type)


def _bad_dependency(group: str) -> UsageError:
    return UsageError(
        f"-d/--depends-on: cannot parse {group!r}",
        hint="use -d jobId=<id>[,type=N_TO_N|SEQUENTIAL]; repeat -d (or separate with ';') "
        f"for up to {MAX_DEPENDENCIES} jobs",
    )

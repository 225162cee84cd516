"""The job folder in S3, as awsbsub lays it out, and the environment a job is given.

    <artifact_root>/batch/job-<name>-<epoch_ms>/
        <name>.sh        the command file or stdin script (script mode)
        <name>.env.sh    `export NAME=<shlex.quote(value)>` lines (`-e`)
        <name>.args      the argv, when it is too large for SubmitJob (see `jobs.wrapper`)
        <input files>    by base name (`-if`)

Planning is pure: `plan_staging` turns a `JobSpec` and the bytes of its input files into the objects
to upload and the container command; `jobs.submission` does the uploading.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from batchkit.errors import UsageError
from batchkit.jobs.wrapper import WrapperMode, WrapperOptions, args_file_body, wrapper_argv
from batchkit.models import JobSpec

#: awsbsub never forwards these, whatever `-e` says.
ALWAYS_SKIPPED_PREFIXES = ("PCLUSTER_", "AWS_BATCH_", "LESS_TERMCAP_")
#: `-e all` also leaves these out (awsbsub skipped every AWS_ variable).
ALL_SKIPPED_PREFIXES = (*ALWAYS_SKIPPED_PREFIXES, "AWS_")
#: `-e all` never forwards a variable whose name contains one of these, unless named explicitly.
SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "KEY")
#: awsbsub's default `--env-blacklist` for `-e all`.
DEFAULT_ENV_BLACKLIST = (
    "HOME",
    "LD_LIBRARY_PATH",
    "PATH",
    "PWD",
    "TERM",
    "TERMCAP",
    "USER",
    "VCPUS",
)

#: SubmitJob rejects container overrides above 30 KiB; past this many bytes of command the argv
#: travels in the job folder instead.
MAX_INLINE_COMMAND_BYTES = 20 * 1024

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class EnvSelection:
    """What `-e` selected: the variables to stage, the names asked for but unset, and the names
    asked for explicitly but never forwarded (with the reason)."""

    variables: dict[str, str]
    missing: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()


def select_environment(
    env: str | None,
    environ: Mapping[str, str],
    blacklist: Iterable[str] | None = None,
) -> EnvSelection:
    """awsbsub's `-e`: a comma list of names, or `all` (minus the blacklist).

    `all` skips PCLUSTER_*, AWS_*, LESS_TERMCAP_*, bash functions, anything that looks like a
    secret (`*SECRET*`, `*TOKEN*`, `*PASSWORD*`, `*KEY*`) and the blacklist. A name given
    explicitly is forwarded even if it looks like a secret: the user asked for it by name.
    """
    if env is None or not env.strip():
        return EnvSelection({})
    names = [n.strip() for n in env.split(",") if n.strip()]
    if any(n.lower() == "all" for n in names):
        denied = {n.upper() for n in (DEFAULT_ENV_BLACKLIST if blacklist is None else blacklist)}
        explicit = [n for n in names if n.lower() != "all"]
        chosen = {
            name: value
            for name, value in environ.items()
            if _forwardable(name, value)
            and not name.upper().startswith(ALL_SKIPPED_PREFIXES)
            and not any(marker in name.upper() for marker in SECRET_MARKERS)
            and name.upper() not in denied
        }
        extra = _select_named(explicit, environ)
        return EnvSelection({**chosen, **extra.variables}, extra.missing, extra.refused)
    return _select_named(names, environ)


def _select_named(names: Iterable[str], environ: Mapping[str, str]) -> EnvSelection:
    variables: dict[str, str] = {}
    missing: list[str] = []
    refused: list[tuple[str, str]] = []
    for name in names:
        if not _IDENTIFIER.match(name):
            raise UsageError(
                f"-e/--env: {name!r} is not a valid environment variable name",
                hint="give a comma list of names, e.g. -e FOO,BAR, or -e all",
            )
        if name.upper().startswith(ALWAYS_SKIPPED_PREFIXES):
            refused.append((name, "set by the cluster for every job"))
        elif name not in environ:
            missing.append(name)
        elif not _forwardable(name, environ[name]):
            refused.append((name, "a shell function"))
        else:
            variables[name] = environ[name]
    return EnvSelection(variables, tuple(missing), tuple(refused))


def _forwardable(name: str, value: str) -> bool:
    return bool(_IDENTIFIER.match(name)) and not value.startswith("() {")


def render_env_file(variables: Mapping[str, str]) -> bytes:
    """`<name>.env.sh`: one `export NAME=<quoted value>` line per variable, sourced by sh."""
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in variables.items()]
    return "".join(lines).encode("utf-8", "surrogateescape")


def job_folder_key(artifact_root: str, name: str, epoch_ms: int) -> str:
    root = artifact_root.strip("/")
    prefix = f"{root}/" if root else ""
    return f"{prefix}batch/job-{name}-{epoch_ms}/"


@dataclass(frozen=True)
class StagedObject:
    key: str
    body: bytes


@dataclass(frozen=True)
class StagingPlan:
    """What to upload and the command to submit.

    awsbsub also wrote an empty "folder" object (`<folder>/`); nothing ever reads it, a
    directory-backed store cannot hold it, and an inline job with nothing staged then needs no
    upload at all, so batchkit does not write it."""

    folder_key: str
    objects: tuple[StagedObject, ...]
    command: tuple[str, ...]
    files: dict[str, int] = field(default_factory=dict)

    @property
    def needs_fetch(self) -> bool:
        return bool(self.files)


def plan_staging(
    spec: JobSpec,
    *,
    artifact_root: str,
    epoch_ms: int,
    input_files: Mapping[str, bytes] | None = None,
) -> StagingPlan:
    """Lay out the job folder of `spec` and build its wrapper command.

    `input_files` maps base names to contents (read by the caller). A job fetches its folder only
    when something was staged in it.
    """
    folder = job_folder_key(artifact_root, spec.name, epoch_ms)
    files: dict[str, bytes] = dict(input_files or {})
    if spec.script is not None:
        mode, argv = WrapperMode.SCRIPT, tuple(spec.arguments)
        files[f"{spec.name}.sh"] = spec.script
    else:
        mode, argv = WrapperMode.INLINE, tuple(spec.command)
    if spec.env:
        files[f"{spec.name}.env.sh"] = render_env_file(spec.env)
    args_file = _command_size(argv) > MAX_INLINE_COMMAND_BYTES
    if args_file:
        files[f"{spec.name}.args"] = args_file_body(argv)
    options = WrapperOptions.for_dirs(
        mode,
        spec.name,
        working_dir=spec.working_dir,
        parent_working_dir=spec.parent_working_dir,
        fetch=bool(files),
        args_file=args_file,
    )
    objects = tuple(StagedObject(folder + name, body) for name, body in files.items())
    return StagingPlan(
        folder_key=folder,
        objects=objects,
        command=tuple(wrapper_argv(options, argv)),
        files={name: len(body) for name, body in files.items()},
    )


def _command_size(argv: tuple[str, ...]) -> int:
    return len(json.dumps(list(argv)).encode("utf-8"))

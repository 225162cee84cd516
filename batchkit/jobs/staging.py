"""The job folder in S3, as awsbsub lays it out, and the environment a job is given.

    <artifact_root>/batch/job-<name>-<epoch_ms>/
        <name>.sh        the command file or stdin script (script mode)
        <name>.env.sh    `export NAME=<shlex.quote(value)>` lines (`-e`)
        <name>.args      the argv, when it is too large for SubmitJob (see `jobs.wrapper`)
        <input files>    by base name (`-if`)

The script, the variables and the arguments also travel inside the SubmitJob request whenever
they fit (`inline_budget`), so that a job fetches its folder only for input files or what
is too large: an image then needs nothing but /bin/sh.

Planning is pure: `plan_staging` turns a `JobSpec` and the bytes of its input files into the objects
to upload and the container command; `jobs.submission` does the uploading.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping

from msgspec import Struct, field

from batchkit.errors import UsageError
from batchkit.jobs.wrapper import (
    SCRIPT_VARIABLE,
    WrapperMode,
    WrapperOptions,
    args_file_body,
    wrapper_argv,
)
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

#: AWS Batch refuses a SubmitJob request larger than 30 KiB ("Maximum job payload size (for
#: SubmitJob API operations)", AWS Batch service quotas). The wrapper command and whatever travels
#: inline (the arguments, the script, the `-e` variables) share it with the job's name, tags and
#: dependencies (`inline_budget`) and with what the submitter and the provider add, for which
#: `RESERVED_BYTES` is kept: queue and definition ARNs, PCLUSTER_JOB_S3_URL, the region, the
#: image, resource requirements, the retry strategy, the client token.
SUBMIT_JOB_PAYLOAD_BYTES = 30 * 1024
RESERVED_BYTES = 3 * 1024


def inline_budget(spec: JobSpec) -> int:
    """The bytes of the request left for the wrapper command and what travels inline."""
    extras = {
        "jobName": spec.name,
        "tags": dict(spec.tags),
        "dependsOn": [dep.to_api() for dep in spec.depends_on],
    }
    return SUBMIT_JOB_PAYLOAD_BYTES - RESERVED_BYTES - _json_size(extras)


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvSelection(Struct, frozen=True):
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


class StagedObject(Struct, frozen=True):
    key: str
    body: bytes


class StagingPlan(Struct, frozen=True):
    """What to upload, the command to submit and the variables it needs.

    The folder holds everything in awsbsub's layout (awsbatch-cli and `stat -d` read it), but the
    job fetches it only when it must (`needs_fetch`: input files, or content too large to travel
    in the request, named by `fetch_reason`). awsbsub also wrote an empty "folder" object
    (`<folder>/`); nothing ever reads it, a directory-backed store cannot hold it, and an inline
    job with nothing staged then needs no upload at all, so batchkit does not write it."""

    folder_key: str
    objects: tuple[StagedObject, ...]
    command: tuple[str, ...]
    files: dict[str, int] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    fetch_reason: str = ""

    @property
    def needs_fetch(self) -> bool:
        return bool(self.fetch_reason)


def plan_staging(
    spec: JobSpec,
    *,
    artifact_root: str,
    epoch_ms: int,
    input_files: Mapping[str, bytes] | None = None,
) -> StagingPlan:
    """Lay out the job folder of `spec` and build its wrapper command.

    `input_files` maps base names to contents (read by the caller). The script, the `-e`
    variables and the arguments travel inside the request while they fit `inline_budget` (the
    largest moves to the folder first); input files always need the folder.
    """
    folder = job_folder_key(artifact_root, spec.name, epoch_ms)
    files: dict[str, bytes] = dict(input_files or {})
    fetched = [_fetch_reason(name) for name in files]
    if spec.script is not None:
        mode, argv = WrapperMode.SCRIPT, tuple(spec.arguments)
        files[f"{spec.name}.sh"] = spec.script
    else:
        mode, argv = WrapperMode.INLINE, tuple(spec.command)
    if spec.env:
        files[f"{spec.name}.env.sh"] = render_env_file(spec.env)
    moved = _Inline.of(spec, argv).moved()
    fetched.extend(moved.values())
    if ARGS_PIECE in moved:
        files[f"{spec.name}.args"] = args_file_body(argv)
    options = WrapperOptions.for_dirs(
        mode,
        spec.name,
        working_dir=spec.working_dir,
        parent_working_dir=spec.parent_working_dir,
        fetch=bool(fetched),
        args_file=ARGS_PIECE in moved,
    )
    env = spec.env if ENV_PIECE not in moved else {}
    environment = {}
    if spec.script is not None and SCRIPT_PIECE not in moved:
        environment[SCRIPT_VARIABLE] = spec.script.decode("utf-8")
    objects = tuple(StagedObject(folder + name, body) for name, body in files.items())
    return StagingPlan(
        folder_key=folder,
        objects=objects,
        command=tuple(wrapper_argv(options, argv, env)),
        files={name: len(body) for name, body in files.items()},
        environment=environment,
        fetch_reason=_join(fetched),
    )


ARGS_PIECE = "the arguments"
ENV_PIECE = "the -e variables"
SCRIPT_PIECE = "the script"


def _fetch_reason(input_file: str) -> str:
    return f"input file {input_file}"


def _join(reasons: list[str]) -> str:
    return ", ".join(dict.fromkeys(reasons))


class _Inline(Struct, frozen=True):
    """The bytes each movable piece takes in the request (None: it cannot travel there)."""

    base: int
    sizes: dict[str, int | None]
    budget: int

    @classmethod
    def of(cls, spec: JobSpec, argv: tuple[str, ...]) -> _Inline:
        empty = WrapperOptions(WrapperMode.INLINE, spec.name)
        sizes: dict[str, int | None] = {
            ARGS_PIECE: _json_size(list(argv)) if all(argv) else None,
            ENV_PIECE: _json_size([f"{k}={v}" for k, v in spec.env.items()]) if spec.env else 0,
            SCRIPT_PIECE: 0,
        }
        if spec.script is not None:
            text = _text(spec.script)
            sizes[SCRIPT_PIECE] = None if text is None else _json_size(text)
        return cls(_json_size(wrapper_argv(empty, ())), sizes, inline_budget(spec))

    def moved(self) -> dict[str, str]:
        """The pieces that go to the folder, with the reason: those that cannot travel inline
        (an empty argument: AWS Batch refuses "" in a command; bytes that are not UTF-8 text; a
        NUL), then the largest ones until the rest fits."""
        moved = {
            piece: f"{piece}, which cannot travel in the SubmitJob request (not UTF-8 text, "
            "or an empty argument)"
            for piece, size in self.sizes.items()
            if size is None
        }
        left = {p: s for p, s in self.sizes.items() if s is not None and s > 0}
        while left and self.base + sum(left.values()) > self.budget:
            largest = max(left, key=lambda p: left[p])
            moved[largest] = f"{largest}, too large for the SubmitJob request"
            del left[largest]
        return moved


def _text(body: bytes) -> str | None:
    """`body` as text that can travel in a JSON request and an environment variable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


def _json_size(value: object) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:  # a surrogate escape: not UTF-8, cannot travel
        return SUBMIT_JOB_PAYLOAD_BYTES + 1

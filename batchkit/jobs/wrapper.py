"""The one job wrapper (contract C2): every submission mode becomes the same container command.

    ["/bin/sh", "-c", WRAPPER_SH, "batchkit-job",
     MODE, NAME, FETCH, ARGS_FILE, WORKDIR_KIND, WORKDIR, [NAME=VALUE …], "--", *argv]

`WRAPPER_SH` is a constant POSIX sh script: user data only ever travels as positional parameters
and environment variables, never inside the script text, so arguments reach the job byte-exact,
whatever they contain. It needs nothing from the image but /bin/sh and mkdir/mv/chmod, unless the
job must fetch its folder. The script

1. makes and enters the working directory: `job-$AWS_BATCH_JOB_ID` (default, relative to the start
   directory), `-w DIR`, or `-pw DIR` (→ `DIR/job-$AWS_BATCH_JOB_ID`);
2. when FETCH is 1 (input files, or content too large to travel in the SubmitJob request),
   fetches the staged job folder: from `$BATCHKIT_JOB_STAGE_DIR` (local engine), else
   `aws s3 sync "$PCLUSTER_JOB_S3_URL" .`, else an inline boto3 download with python3, else exits
   127 naming the image (`$BATCHKIT_JOB_IMAGE`) and the fix;
3. writes `NAME.sh` from `$BATCHKIT_JOB_SCRIPT` when the script travelled in the request (to a
   private name, made executable, then renamed: the nodes of a multi-node job sharing a `-w`
   directory each replace it whole, so none ever runs one that is not yet executable);
4. `export`s each `NAME=VALUE` word (`-e`, when it travelled in the request);
5. when ARGS_FILE is 1, sources `NAME.args` (a `set -- …` line built with `shlex.quote`), which is
   how a command too large for SubmitJob's 30 KiB overrides still arrives intact;
6. sources the fetched `NAME.env.sh` (`-e` too large to travel in the request);
7. `exec ./NAME.sh "$@"` (script mode: `-cf` or a stdin script) or `exec "$@"` (inline mode).

awsbsub's bugs are gone by construction: `-e`, `-w`, `-pw` and `-if` work in every mode, and no path
is ever pasted unquoted into a shell string.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from enum import StrEnum

from msgspec import Struct

from batchkit.models import JOB_IMAGE_VARIABLE

PROGRAM = "batchkit-job"

_FETCH_PY = """\
import os, sys
import boto3
url = sys.argv[1]
bucket, _, prefix = url[len("s3://"):].partition("/")
s3 = boto3.client("s3")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        rel = item["Key"][len(prefix):]
        if rel and not rel.endswith("/"):
            os.makedirs(os.path.dirname(rel) or ".", exist_ok=True)
            s3.download_file(bucket, item["Key"], rel)
"""

WRAPPER_SH = (
    """\
_batchkit_mode=$1 _batchkit_name=$2 _batchkit_fetch=$3 _batchkit_argsfile=$4
_batchkit_wdkind=$5 _batchkit_wd=$6
shift 6
_batchkit_die() {
    _batchkit_code=$1
    shift
    printf '%s: %s\\n' "$0" "$*" >&2
    exit "$_batchkit_code"
}
_batchkit_jobdir="job-${AWS_BATCH_JOB_ID:-$$}"
case $_batchkit_wdkind in
    default) _batchkit_dir=$_batchkit_jobdir ;;
    dir) _batchkit_dir=$_batchkit_wd ;;
    parent) _batchkit_dir=$_batchkit_wd/$_batchkit_jobdir ;;
    *) _batchkit_die 2 "unknown working directory kind: $_batchkit_wdkind" ;;
esac
mkdir -p -- "$_batchkit_dir" || _batchkit_die 1 "cannot create working directory $_batchkit_dir"
cd -- "$_batchkit_dir" || _batchkit_die 1 "cannot enter working directory $_batchkit_dir"
if [ "$_batchkit_fetch" = 1 ]; then
    if [ -n "${BATCHKIT_JOB_STAGE_DIR-}" ]; then
        cp -R -- "$BATCHKIT_JOB_STAGE_DIR"/. . ||
            _batchkit_die 1 "cannot copy the job folder from $BATCHKIT_JOB_STAGE_DIR"
    elif [ -z "${PCLUSTER_JOB_S3_URL-}" ]; then
        _batchkit_die 1 "PCLUSTER_JOB_S3_URL is not set: cannot fetch the job folder"
    elif command -v aws >/dev/null 2>&1; then
        aws s3 sync --only-show-errors "$PCLUSTER_JOB_S3_URL" . ||
            _batchkit_die 1 "cannot download $PCLUSTER_JOB_S3_URL with the aws CLI"
    elif command -v python3 >/dev/null 2>&1 && python3 -c 'import boto3' >/dev/null 2>&1; then
        python3 -c '"""
    + _FETCH_PY
    + """' "$PCLUSTER_JOB_S3_URL" ||
            _batchkit_die 1 "cannot download $PCLUSTER_JOB_S3_URL with boto3"
    else
        _batchkit_die 127 "cannot download $PCLUSTER_JOB_S3_URL:" \\
            "the image ${BATCHKIT_JOB_IMAGE:-of this job} has neither the aws CLI nor python3" \\
            "with boto3, which this job needs (${BATCHKIT_JOB_FETCH_REASON:-its job folder})." \\
            "Fix: use an image with the aws CLI or python3 and boto3 (e.g. the al2023 preset:" \\
            "batchkit image build --preset al2023), or submit without what needs the folder"
    fi
fi
if [ -n "${BATCHKIT_JOB_SCRIPT+set}" ]; then
    printf '%s' "$BATCHKIT_JOB_SCRIPT" >"./.$_batchkit_name.sh.$$" &&
        chmod +x "./.$_batchkit_name.sh.$$" &&
        mv -f -- "./.$_batchkit_name.sh.$$" "./$_batchkit_name.sh" ||
        _batchkit_die 1 "cannot write $_batchkit_name.sh"
    unset BATCHKIT_JOB_SCRIPT
fi
unset BATCHKIT_JOB_FETCH_REASON BATCHKIT_JOB_IMAGE
readonly _batchkit_mode _batchkit_name _batchkit_argsfile _batchkit_fetch
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    export "$1" || _batchkit_die 1 "cannot set the environment variable ${1%%=*}"
    shift
done
if [ "${1-}" = "--" ]; then shift; fi
if [ "$_batchkit_argsfile" = 1 ]; then
    . "./$_batchkit_name.args" || _batchkit_die 1 "cannot read $_batchkit_name.args"
fi
if [ "$_batchkit_fetch" = 1 ] && [ -f "./$_batchkit_name.env.sh" ]; then
    . "./$_batchkit_name.env.sh" || _batchkit_die 1 "cannot read $_batchkit_name.env.sh"
fi
case $_batchkit_mode in
    script)
        chmod +x "./$_batchkit_name.sh" 2>/dev/null
        exec "./$_batchkit_name.sh" "$@"
        ;;
    inline) exec "$@" ;;
    *) _batchkit_die 2 "unknown mode: $_batchkit_mode" ;;
esac
"""
)

#: The script of a script-mode job, when it travels inside the SubmitJob request: the wrapper
#: writes it to `NAME.sh` itself (printf is a shell builtin), so the image needs no S3 client.
SCRIPT_VARIABLE = "BATCHKIT_JOB_SCRIPT"
#: Set when the job must fetch its folder: the image, and what needs the folder, for the error
#: an image without an S3 client gets.
IMAGE_VARIABLE = JOB_IMAGE_VARIABLE
FETCH_REASON_VARIABLE = "BATCHKIT_JOB_FETCH_REASON"


class WrapperMode(StrEnum):
    INLINE = "inline"  # argv is the command and its arguments, run as typed
    SCRIPT = "script"  # argv are the arguments of the staged NAME.sh


class WorkdirKind(StrEnum):
    DEFAULT = "default"  # job-$AWS_BATCH_JOB_ID under the start directory
    DIR = "dir"  # -w DIR
    PARENT = "parent"  # -pw DIR → DIR/job-$AWS_BATCH_JOB_ID


class WrapperOptions(Struct, frozen=True):
    mode: WrapperMode
    name: str
    fetch: bool = False
    args_file: bool = False
    workdir_kind: WorkdirKind = WorkdirKind.DEFAULT
    workdir: str = ""

    @classmethod
    def for_dirs(
        cls,
        mode: WrapperMode,
        name: str,
        *,
        working_dir: str | None,
        parent_working_dir: str | None,
        fetch: bool,
        args_file: bool = False,
    ) -> WrapperOptions:
        if working_dir is not None:
            kind, path = WorkdirKind.DIR, working_dir
        elif parent_working_dir is not None:
            kind, path = WorkdirKind.PARENT, parent_working_dir
        else:
            kind, path = WorkdirKind.DEFAULT, ""
        return cls(mode, name, fetch or args_file, args_file, kind, path)


def wrapper_argv(
    options: WrapperOptions, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """The container command for `argv` (the inline command, or the script's arguments) and the
    variables `env` (`-e`), each a `NAME=value` word the wrapper `export`s: data, never shell
    text. With `options.args_file` the argv is not on the command line: stage
    `args_file_body(argv)` as `NAME.args` instead."""
    return [
        "/bin/sh",
        "-c",
        WRAPPER_SH,
        PROGRAM,
        options.mode.value,
        options.name,
        "1" if options.fetch else "0",
        "1" if options.args_file else "0",
        options.workdir_kind.value,
        # AWS Batch refuses an empty string in a command (ContainerOverrides, Batch API Reference)
        options.workdir or ".",
        *(f"{name}={value}" for name, value in (env or {}).items()),
        "--",
        *(() if options.args_file else argv),
    ]


def args_file_body(argv: Sequence[str]) -> bytes:
    """`NAME.args`: one `set -- …` line that restores `argv` exactly when sourced by sh."""
    words = ["set", "--", *(shlex.quote(arg) for arg in argv)]
    return (" ".join(words) + "\n").encode("utf-8", "surrogateescape")


def user_command(command: Sequence[str]) -> list[str]:
    """What the user asked to run, recovered from a container command: the inline argv, or
    `./NAME.sh ARGS…` for a script. A command that is not batchkit's wrapper is returned as is."""
    fixed = 10  # /bin/sh -c SCRIPT PROGRAM MODE NAME FETCH ARGS_FILE KIND DIR [NAME=VALUE…] --
    if len(command) <= fixed or list(command[:2]) != ["/bin/sh", "-c"] or command[3] != PROGRAM:
        return list(command)
    rest = list(command[fixed:])
    if "--" not in rest:
        return list(command)
    mode, name, args_file = command[4], command[5], command[7]
    argv = rest[rest.index("--") + 1 :]
    if args_file == "1":
        argv = [f"<arguments in {name}.args>"]
    return [f"./{name}.sh", *argv] if mode == WrapperMode.SCRIPT.value else argv

"""The one job wrapper (contract C2): every submission mode becomes the same container command.

    ["/bin/sh", "-c", WRAPPER_SH, "batchkit-job",
     MODE, NAME, FETCH, ARGS_FILE, WORKDIR_KIND, WORKDIR, "--", *argv]

`WRAPPER_SH` is a constant POSIX sh script: user data only ever travels as positional parameters,
never inside the script text, so arguments reach the job byte-exact, whatever they contain. The
script

1. makes and enters the working directory: `job-$AWS_BATCH_JOB_ID` (default, relative to the start
   directory), `-w DIR`, or `-pw DIR` (→ `DIR/job-$AWS_BATCH_JOB_ID`);
2. when FETCH is 1, fetches the staged job folder: from `$BATCHKIT_JOB_STAGE_DIR` (local engine),
   else `aws s3 sync "$PCLUSTER_JOB_S3_URL" .`, else an inline boto3 download with python3, else
   exits 127 saying why;
3. when ARGS_FILE is 1, sources `NAME.args` (a `set -- …` line built with `shlex.quote`), which is
   how a command too large for SubmitJob's 30 KiB overrides still arrives intact;
4. sources `NAME.env.sh` if it was staged (`-e`);
5. `exec ./NAME.sh "$@"` (script mode: `-cf` or a stdin script) or `exec "$@"` (inline mode).

awsbsub's bugs are gone by construction: `-e`, `-w`, `-pw` and `-if` work in every mode, and no path
is ever pasted unquoted into a shell string.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

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
if [ "${1-}" = "--" ]; then shift; fi
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
            "the image has neither the aws CLI nor python3 with boto3"
    fi
fi
readonly _batchkit_mode _batchkit_name _batchkit_argsfile
if [ "$_batchkit_argsfile" = 1 ]; then
    . "./$_batchkit_name.args" || _batchkit_die 1 "cannot read $_batchkit_name.args"
fi
if [ -f "./$_batchkit_name.env.sh" ]; then
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


class WrapperMode(StrEnum):
    INLINE = "inline"  # argv is the command and its arguments, run as typed
    SCRIPT = "script"  # argv are the arguments of the staged NAME.sh


class WorkdirKind(StrEnum):
    DEFAULT = "default"  # job-$AWS_BATCH_JOB_ID under the start directory
    DIR = "dir"  # -w DIR
    PARENT = "parent"  # -pw DIR → DIR/job-$AWS_BATCH_JOB_ID


@dataclass(frozen=True)
class WrapperOptions:
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


def wrapper_argv(options: WrapperOptions, argv: Sequence[str]) -> list[str]:
    """The container command for `argv` (the inline command, or the script's arguments). With
    `options.args_file` the argv is not on the command line: stage `args_file_body(argv)` as
    `NAME.args` instead."""
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
        options.workdir,
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
    fixed = 11  # /bin/sh -c SCRIPT PROGRAM MODE NAME FETCH ARGS_FILE KIND DIR --
    if len(command) < fixed or list(command[:2]) != ["/bin/sh", "-c"] or command[3] != PROGRAM:
        return list(command)
    mode, name, args_file, argv = command[4], command[5], command[7], list(command[fixed:])
    if args_file == "1":
        argv = [f"<arguments in {name}.args>"]
    return [f"./{name}.sh", *argv] if mode == WrapperMode.SCRIPT.value else argv

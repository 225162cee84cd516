"""`%%batchkit`: submit a notebook cell as a job script, with the flags of `batchkit sub`.

    %load_ext batchkit
    %%batchkit -p 2 -m 1024 --wait
    echo "hello from $AWS_BATCH_JOB_ID"

The cell is the script (like a script piped to `batchkit sub`); words after `--` on the magic line
are its arguments. Without `--wait`/`--follow` the cell's value is the job handle (shown as a status
card). `--wait` shows a progress bar, then prints the job's output; `--follow` prints the output as
it comes. Errors print as `error:`/`hint:` lines, as the CLI does, instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn, TextIO

from msgspec import Struct, field

from batchkit.errors import BatchkitError, UsageError
from batchkit.jobs.progress import auto_progress

if TYPE_CHECKING:
    from batchkit.api import Cluster
    from batchkit.handles import Job
    from batchkit.models import JobSpec

DEFAULT_NAME = "cell"


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"%%batchkit: {message}", hint="see `%%batchkit --help`")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _HelpShown(message or "")


class _HelpShown(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The flags of `batchkit sub` that make sense for a cell (the cell is the script)."""
    parser = _Parser(
        prog="%%batchkit",
        description="Submit this cell as a job script (the flags of `batchkit sub`).",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("-jn", "--job-name", metavar="NAME", help=f"job name (default {DEFAULT_NAME})")
    add("-c", "--cluster", metavar="NAME", help="cluster (default: the configured one, or local)")
    add("-w", "--working-dir", metavar="DIR", help="run in this directory")
    add("-pw", "--parent-working-dir", metavar="DIR", help="run in DIR/job-<id>")
    add("-if", "--input-file", metavar="FILE", action="append", default=[], help="stage a file")
    add("-p", "--vcpus", type=float, default=1, metavar="N", help="vCPUs (per node)")
    add(
        "-m",
        "--memory",
        type=int,
        metavar="MIB",
        help="memory in MiB (per node; default 128, on Fargate the least it offers for -p)",
    )
    add("-e", "--env", metavar="NAMES|all", action="append", help="variables to export")
    add("-eb", "--env-blacklist", metavar="NAMES", help="with -e all: names not to export")
    add("-r", "--retry-attempts", type=int, default=1, metavar="N", help="attempts, 1 to 10")
    add("-t", "--timeout", type=int, metavar="SECONDS", help="seconds per attempt, at least 60")
    add("-n", "--nodes", type=int, default=1, metavar="N", help="nodes (multi-node when > 1)")
    add("-a", "--array-size", type=int, metavar="N", help="array children, 2 to 10,000")
    add("-d", "--depends-on", action="append", default=[], help="jobId=<id>[,type=...]")
    add("--gpus", type=int, default=0, metavar="N", help="GPUs (per node)")
    add("--image", metavar="IMAGE", help="container image to run in")
    add("--executor", choices=("auto", "process", "docker"), default="auto")
    add("-q", "--queue", metavar="QUEUE", help="job queue (default: the cluster's)")
    add("--spot-retry", action="store_true", help="AWS: retry only when a Spot host is reclaimed")
    add("--share", metavar="ID", help="fair-share queues: the share the job belongs to")
    add("--priority", type=int, metavar="N", help="fair-share queues: priority in the share")
    add("--wait", action="store_true", help="wait, then print the output")
    add("--follow", action="store_true", help="print the output as it comes")
    add("arguments", nargs="*", help="arguments of the script (after --)")
    return parser


class CellMagic(Struct):
    """The `%%batchkit` magic with its collaborators (tests replace `connect` and the streams)."""

    connect: Callable[[str | None], Cluster] = field(default=lambda name: _connect(name))
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    out: TextIO | None = None
    err: TextIO | None = None

    def __call__(self, line: str, cell: str) -> Job | None:
        try:
            return self.run(line, cell)
        except _HelpShown as shown:
            self._err.write(str(shown))
            return None
        except BatchkitError as error:
            self._err.write(f"error: {error.message}\n")
            if error.hint:
                self._err.write(f"hint: {error.hint}\n")
            return None

    @property
    def _out(self) -> TextIO:
        return self.out or sys.stdout

    @property
    def _err(self) -> TextIO:
        return self.err or sys.stderr

    def run(self, line: str, cell: str) -> Job:
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise UsageError(
                f"%%batchkit: {err}", hint="check the quotes on the magic line"
            ) from None
        if "-h" in words or "--help" in words:
            raise _HelpShown(build_parser().format_help())
        options = build_parser().parse_args(words)
        spec = self._spec(options, cell)
        cluster = self.connect(options.cluster)
        handle = cluster.job(cluster.submit(spec))
        if not (options.wait or options.follow):
            return handle
        self._err.write(f"Job {handle.job_id} ({handle.name}) has been submitted.\n")
        if options.follow:
            for event in handle.logs(follow=True):
                self._out.write(_label(event.job_id, handle.job_id) + event.message + "\n")
            handle.refresh()
        else:
            handle.wait(progress=auto_progress(self._err))
            for event in handle.logs():
                self._out.write(_label(event.job_id, handle.job_id) + event.message + "\n")
        final = handle.info
        if final.status.value != "SUCCEEDED":
            reason = f": {final.status_reason}" if final.status_reason else ""
            self._err.write(f"job {final.job_id} {final.status.value}{reason}\n")
        return handle

    def _spec(self, options: argparse.Namespace, cell: str) -> JobSpec:
        """The cell as a script job, through the same flag handling as `batchkit sub`."""
        from batchkit.jobs.flags import SubmitFlags, prepare

        if not cell.strip():
            raise UsageError("the cell is empty", hint="write the script in the cell body")
        flags = SubmitFlags(
            argv=tuple(options.arguments),
            script=cell.encode(),
            job_name=DEFAULT_NAME if options.job_name is None else options.job_name,
            working_dir=options.working_dir,
            parent_working_dir=options.parent_working_dir,
            input_files=tuple(options.input_file),
            vcpus=options.vcpus,
            memory=options.memory,
            gpus=options.gpus,
            env=",".join(options.env) if options.env else None,
            env_blacklist=options.env_blacklist,
            retry_attempts=options.retry_attempts,
            timeout=options.timeout,
            nodes=options.nodes,
            array_size=options.array_size,
            depends_on=tuple(options.depends_on),
            image=options.image,
            queue=options.queue,
            executor=options.executor,
            spot_retry=options.spot_retry,
            share=options.share,
            priority=options.priority,
        )
        blacklist = None
        if options.env_blacklist is None:  # as `sub`: the user config's list, else awsbsub's
            from batchkit.config import load_user_config

            blacklist = load_user_config().env_blacklist
        prepared = prepare(flags, environ=self.environ, default_blacklist=blacklist)
        for warning in prepared.warnings:
            self._err.write(f"warning: {warning}\n")
        return prepared.spec


def _label(source: str | None, job_id: str) -> str:
    return "" if source in (None, job_id) else f"[{source}] "


def _connect(name: str | None) -> Cluster:
    from batchkit.api import connect

    return connect(name)

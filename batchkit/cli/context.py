"""What a command needs from the outside world, in one replaceable object.

The real `CliEnv` connects to clusters through `batchkit.api.connect`, reads the process
environment and stdin. Tests pass their own through
`CliRunner.invoke(app, args, obj=CliEnv(...))`, with a fake provider behind `connect`.
"""

from __future__ import annotations

import fcntl
import os
import select
import stat
import struct
import sys
import termios
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

import typer
from msgspec import Struct, field

from batchkit.cli.errors import boundary

if TYPE_CHECKING:
    from batchkit.api import Cluster
    from batchkit.cli.output import Terminal

StdinKind = Literal["tty", "pipe", "file", "none"]


class Connector(Protocol):
    """How a command reaches its cluster (replaced by tests)."""

    def __call__(
        self, cluster: str | None, *, profile: str | None = None, region: str | None = None
    ) -> Cluster: ...


def _connect(
    cluster: str | None, *, profile: str | None = None, region: str | None = None
) -> Cluster:
    from batchkit.api import connect

    return connect(cluster, profile=profile, region=region)


def _stdin_kind() -> StdinKind:
    """A pipe or a regular file on stdin is a script (as awsbsub); a terminal, /dev/null or a
    closed stdin is not."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return "none"
    if os.isatty(fd):
        return "tty"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "pipe"
    if stat.S_ISREG(mode):
        return "file"
    return "none"


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


#: How long `sub COMMAND` waits for a piped stdin to show whether it holds a script.
STDIN_GRACE_SECONDS = 0.2


def stdin_has_data(fd: int | None = None, *, grace: float = STDIN_GRACE_SECONDS) -> bool:
    """Whether stdin (a pipe, socket or file) holds any bytes, without consuming them (so a
    `while read …; do batchkit sub …; done` loop keeps its input). An empty or closed stdin (CI,
    cron, `true |`) holds nothing; neither does a pipe held open that stays silent for `grace`
    seconds (a parent process that never writes)."""
    fd = sys.stdin.fileno() if fd is None else fd
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)
    ready, _, _ = select.select([fd], [], [], grace)
    if not ready:
        return False
    try:  # readable with nothing to read is the end of the pipe
        (waiting,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))
    except OSError:
        return bool(os.read(fd, 1))
    return bool(waiting > 0)


class CliEnv(Struct):
    connect: Connector = _connect
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin_kind: Callable[[], StdinKind] = _stdin_kind
    read_stdin: Callable[[], bytes] = _read_stdin
    stdin_has_data: Callable[[], bool] = stdin_has_data

    @classmethod
    def of(cls, ctx: typer.Context) -> CliEnv:
        """The injected environment, or the real one."""
        obj = ctx.find_object(CliEnv)
        return obj if obj is not None else cls()


def as_awsbatch_cli(ctx: typer.Context) -> bool:
    """Whether the command runs as one of awsbatch-cli's aliases (`awsbstat`, `awsbkill`, …),
    whose messages scripts may parse."""
    return (ctx.find_root().info_name or "").startswith("awsb")


@contextmanager
def session(ctx: typer.Context, debug: bool) -> Iterator[tuple[CliEnv, Terminal]]:
    """What every command body runs in: the error boundary, its environment and its terminal."""
    with boundary(debug):
        from batchkit.cli.output import Terminal

        yield CliEnv.of(ctx), Terminal()


# Options every command takes (awsbatch-cli's `-c/--cluster`, plus batchkit's --json and --debug).
ClusterOption = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--cluster",
        metavar="NAME",
        help="Cluster name (default: default_cluster in ~/.batchkit/config.yaml, else local).",
        envvar="BATCHKIT_CLUSTER",
        show_envvar=False,
    ),
]
LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "-ll",
        "--log-level",
        hidden=True,
        help="Accepted for awsbatch-cli compatibility; batchkit writes no log file.",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="PROFILE",
        help="AWS profile (default: the cluster's in config.yaml, else the AWS chain).",
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION",
        help="AWS region (default: the cluster's in config.yaml, else the AWS chain).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]

"""The `batchkit` command line: a Typer app whose commands parse, call the API, render, exit.

Start-up is kept fast: this module imports only Typer and the small command modules; the API,
the providers, boto3, rich and PyYAML are imported inside the commands that need them. A call
builds only the command it names (`LazyGroup`), and the sub-apps (`SUBAPPS`, where other areas
plug in theirs, one line each) are imported only when their command runs. The console scripts
(`batchkit.cli.console`) run with the garbage collector paused until the command is built
(`batchkit.cli.startup`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer.models import CommandInfo

from batchkit.cli.coercion import PlainCommand, PlainGroup
from batchkit.cli.completion import (
    InstallCompletionOption,
    ShowCompletionOption,
    answer_shell,
    optional_shell,
)
from batchkit.cli.startup import resume_collection

#: The commands of `batchkit` itself, in the order --help lists them: the module and function of
#: each. The group imports and builds one when a call names it (`command_info`): Typer works out
#: a command's parameters from its signature, and building every command for every call would
#: cost about 40 ms of start-up, importing every command's module a few more.
COMMANDS: dict[str, tuple[str, str]] = {
    "sub": ("batchkit.cli.sub", "sub"),
    "stat": ("batchkit.cli.stat", "stat"),
    "out": ("batchkit.cli.out", "out"),
    "kill": ("batchkit.cli.kill", "kill"),
    "queues": ("batchkit.cli.queues", "queues"),
    "hosts": ("batchkit.cli.queues", "hosts"),
    "doctor": ("batchkit.cli.doctor", "doctor"),
}

#: Sub-apps, imported on first use: command name → (module with a Typer `app`, one-line help).
#: Other areas plug theirs in here (one line each).
SUBAPPS: dict[str, tuple[str, str]] = {
    "local": ("batchkit.cli.local", "The local engine: its worker, and how jobs will run."),
    "cluster": ("batchkit.cli.cluster", "Create, update, delete and inspect clusters."),
    "image": ("batchkit.cli.image", "Build container images and list them."),
}


def command_info(name: str) -> CommandInfo:
    """Typer's record of the command `name` (one of `COMMANDS`): its callback, imported now, and
    the settings its module declares (`CONTEXT_SETTINGS`)."""
    module_name, function = COMMANDS[name]
    module = importlib.import_module(module_name)
    return CommandInfo(
        name,
        cls=PlainCommand,
        callback=getattr(module, function),
        context_settings=getattr(module, "CONTEXT_SETTINGS", None),
    )


def _evaluate_annotations(callback: Callable[..., Any] | None) -> None:
    """Evaluate the callback's annotations once, in place. Ours are strings (`from __future__
    import annotations`), each an `Annotated[..., typer.Option(...)]` to compile and run, and
    Typer evaluates every one four times while it builds a command (it reads the signature
    twice, each time with `inspect.signature(eval_str=True)` and `get_type_hints`): about 5 ms
    of `sub`'s start-up."""
    if callback is not None:
        callback.__annotations__ = typing.get_type_hints(callback, include_extras=True)


class LazyGroup(PlainGroup):
    """`batchkit`: builds each of its `COMMANDS` and imports each of its `SUBAPPS` when a call
    first names it; --help lists them all (which builds the commands, not the sub-apps)."""

    def _lazy(self) -> dict[str, tuple[str, str]]:
        return {
            name: entry
            for name, entry in SUBAPPS.items()
            if name not in self.commands and importlib.util.find_spec(entry[0]) is not None
        }

    def list_commands(self, ctx: Any) -> list[str]:
        built = [name for name in super().list_commands(ctx) if name not in COMMANDS]
        return [*COMMANDS, *built, *self._lazy()]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return list(super().parse_args(ctx, optional_shell(args)))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.command(cmd_name)

    def command(self, cmd_name: str) -> Any:
        """The command `cmd_name`, built or imported on first use (None: there is none)."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:
            info = command_info(cmd_name)
            _evaluate_annotations(info.callback)
            command = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
        else:
            entry = self._lazy().get(cmd_name)
            if entry is None:
                return None
            command = typer.main.get_command(importlib.import_module(entry[0]).app)
            command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and self.command(args[0]) is None:
            # Not a command: Typer suggests the closest of those built, so build them all.
            for name in self.list_commands(ctx):
                self.command(name)
        resolved = super().resolve_command(ctx, args)
        resume_collection()  # the command is built; what it runs collects garbage as usual
        return resolved

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        lazy = self._lazy()
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in lazy:
                rows.append((name, lazy[name][1]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="batchkit",
    cls=LazyGroup,
    help="Run batch jobs on AWS Batch, or the same jobs on this machine (-c local).\n\n"
    "awsbsub, awsbstat, awsbout, awsbkill, awsbqueues and awsbhosts are aliases of "
    "sub, stat, out, kill, queues and hosts.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,  # ours take the shell as a value (batchkit.cli.completion)
)


def _print_version(value: bool) -> None:
    if value:
        from batchkit.version import __version__

        typer.echo(f"batchkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            expose_value=False,
            callback=_print_version,
            help="Print batchkit's version and exit.",
        ),
    ] = False,
    show_completion: ShowCompletionOption = None,
    install_completion: InstallCompletionOption = None,
) -> None:
    """The options of `batchkit` itself (each acts and exits)."""


def _group() -> LazyGroup:
    """The click group of `batchkit`, none of its commands built yet."""
    _evaluate_annotations(app.registered_callback.callback if app.registered_callback else None)
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    return group


def main(argv: Sequence[str] | None = None, prog_name: str = "batchkit") -> None:
    """The `batchkit` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    group = _group()
    answer_shell(prog_name)
    group.main(args=args, prog_name=prog_name, standalone_mode=True)


def main_command(name: str, prog_name: str, argv: Sequence[str] | None = None) -> None:
    """Run one command as a program of its own (`awsbsub` is `batchkit sub`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = _group().command(name)
    resume_collection()
    command.main(args=args, prog_name=prog_name, standalone_mode=True)

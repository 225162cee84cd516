"""The `batchkit` command line: a Typer app whose commands parse, call the API, render, exit.

Start-up is kept fast: this module imports only Typer and the small command modules; the API,
the providers, boto3, rich and PyYAML are imported inside the commands that need them. Other
areas plug in their own Typer sub-apps through `SUBAPPS` (one line each); those are imported only
when their command runs, so `batchkit --help` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any

import typer

from batchkit.cli import doctor, kill, local, out, queues, stat, sub
from batchkit.cli.coercion import PlainCommand, PlainGroup
from batchkit.cli.completion import (
    InstallCompletionOption,
    ShowCompletionOption,
    answer_shell,
    optional_shell,
)

#: Sub-apps owned by other areas: command name → (module with a Typer `app`, one-line help).
SUBAPPS: dict[str, tuple[str, str]] = {
    "cluster": ("batchkit.cli.cluster", "Create, update, delete and inspect clusters."),
    "image": ("batchkit.cli.image", "Build container images and list them."),
}


class LazyGroup(PlainGroup):
    """A group whose `SUBAPPS` are imported on first use, and listed in --help without it."""

    def _lazy(self) -> dict[str, tuple[str, str]]:
        return {
            name: entry
            for name, entry in SUBAPPS.items()
            if name not in self.commands and importlib.util.find_spec(entry[0]) is not None
        }

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *self._lazy()]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return list(super().parse_args(ctx, optional_shell(args)))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = self._lazy().get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(entry[0])
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        lazy = self._lazy()
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in lazy:
                rows.append((name, lazy[name][1]))
                continue
            command = super().get_command(ctx, name)
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


app.command("sub", cls=PlainCommand, context_settings=sub.CONTEXT_SETTINGS)(sub.sub)
app.command("stat", cls=PlainCommand)(stat.stat)
app.command("out", cls=PlainCommand)(out.out)
app.command("kill", cls=PlainCommand)(kill.kill)
app.command("queues", cls=PlainCommand)(queues.queues)
app.command("hosts", cls=PlainCommand)(queues.hosts)
app.command("doctor", cls=PlainCommand)(doctor.doctor)
app.add_typer(local.app, name="local")


def _evaluate_annotations(callbacks: Iterable[Callable[..., Any] | None]) -> None:
    """Evaluate the callbacks' annotations once, in place. Ours are strings (`from __future__
    import annotations`), each an `Annotated[..., typer.Option(...)]` to compile and run, and
    Typer evaluates every one four times while it builds a command (it reads the signature
    twice, each time with `inspect.signature(eval_str=True)` and `get_type_hints`): about 5 ms
    of `sub`'s start-up."""
    for callback in callbacks:
        if callback is not None:
            hints = typing.get_type_hints(callback, include_extras=True)
            callback.__annotations__ = hints


def _build(commands: Sequence[Any]) -> Any:
    """The click group of the root callback and `commands` (Typer's CommandInfo)."""
    root = app.registered_callback.callback if app.registered_callback else None
    _evaluate_annotations([root, *(command.callback for command in commands)])
    return typer.main.get_command(app)


def _group_for(args: Sequence[str]) -> Any:
    """The click group for this call. Typer works out every command's parameters from its
    signature (type hints) when it builds the group; when the call names one of the plain
    commands, only that one is built (start-up). Any other call gets the whole group."""
    chosen = [c for c in app.registered_commands if args and c.name == args[0]]
    if not chosen:
        return _build(app.registered_commands)
    every, groups = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = chosen, []
    try:
        return _build(chosen)
    finally:
        app.registered_commands, app.registered_groups = every, groups


def main(argv: Sequence[str] | None = None, prog_name: str = "batchkit") -> None:
    """The `batchkit` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = _group_for(args)
    answer_shell(prog_name)
    command.main(args=args, prog_name=prog_name, standalone_mode=True)


def main_command(name: str, prog_name: str, argv: Sequence[str] | None = None) -> None:
    """Run one command as a program of its own (`awsbsub` is `batchkit sub`)."""
    group = _build(app.registered_commands)
    assert isinstance(group, LazyGroup)
    args = list(sys.argv[1:] if argv is None else argv)
    group.commands[name].main(args=args, prog_name=prog_name, standalone_mode=True)

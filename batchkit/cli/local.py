"""`batchkit local …`: the local engine's own commands."""

from __future__ import annotations

from typing import Annotated

import typer

from batchkit.cli.coercion import PlainCommand, PlainGroup
from batchkit.cli.context import DebugOption, JsonOption
from batchkit.cli.errors import boundary

MAX_IDLE_EXIT_SECONDS = 86_400
"""--idle-exit's upper bound: a day (a worker meant to stay up longer leaves the flag out)."""

app = typer.Typer(
    name="local",
    cls=PlainGroup,
    help="The local engine: its worker, and how jobs will run.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,  # `batchkit` has the completion options
)


@app.command(cls=PlainCommand)
def worker(
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            metavar="SECONDS",
            help="Stop after this many idle seconds, at most 86400 (default: never).",
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Run the local engine's worker in the foreground until Ctrl-C (or --idle-exit).

    Jobs submitted with `-c local` start a worker in the background by themselves; run this to
    watch the worker, or to keep one alive.
    """
    with boundary(debug):
        from batchkit.config import batchkit_home
        from batchkit.errors import UsageError
        from batchkit.providers.local.worker import serve

        if idle_exit is not None and not 0 <= idle_exit <= MAX_IDLE_EXIT_SECONDS:
            raise UsageError(
                f"--idle-exit must be between 0 and {MAX_IDLE_EXIT_SECONDS} seconds (a day), "
                f"got {idle_exit:g}",
                hint="e.g. --idle-exit 60, or leave it out to run until Ctrl-C",
            )
        serve(batchkit_home(), idle_exit=idle_exit)


@app.command(cls=PlainCommand)
def doctor(json_: JsonOption = False, debug: DebugOption = False) -> None:
    """Say how local jobs will run: as local processes, or in Docker containers."""
    with boundary(debug):
        from batchkit.cli import output
        from batchkit.config import batchkit_home
        from batchkit.providers.local.selection import selector_for

        term = output.Terminal()
        home = batchkit_home()
        report = {"home": str(home), **selector_for(home).doctor().to_dict()}
        if json_:
            term.json(report)
        else:
            term.data(output.doctor_report(report))

"""`batchkit local …`: the local engine's own commands."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from batchkit.cli.context import DebugOption
from batchkit.cli.errors import boundary

app = typer.Typer(
    name="local",
    help="The local engine: run its worker in the foreground, check what it can run.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def worker(
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            metavar="SECONDS",
            help="Stop after this many idle seconds (default: never).",
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
        from batchkit.providers.local.worker import serve

        serve(batchkit_home(), idle_exit=idle_exit)


@app.command()
def doctor(
    image: Annotated[
        str | None,
        typer.Option("--image", metavar="IMAGE", help="Check for jobs that name this image."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Say how local jobs will run: as local processes, or in Docker containers."""
    with boundary(debug):
        from batchkit.cli.output import Terminal
        from batchkit.config import batchkit_home

        term = Terminal()
        term.data(f"home: {batchkit_home()}")
        if importlib.util.find_spec("batchkit.providers.local.selection") is None:
            term.data("executor: process (jobs run as local processes; Docker is not used)")
            return
        from batchkit.providers.local.selection import select_executor

        for label, wanted in (("jobs without --image", None), ("jobs with --image", image)):
            if label.endswith("--image") and wanted is None:
                wanted = "batchkit-base/busybox:latest"
            executor, notice = select_executor(wanted, "auto")
            term.data(f"{label}: {executor.name}" + (f" ({notice})" if notice else ""))

"""`batchkit --show-completion [SHELL]` and `--install-completion [SHELL]`: bash, zsh and fish.

The scripts are Typer's (the functions behind its own completion options, which batchkit
replaces to take the shell as a value): each asks `batchkit` itself for the completions of the
words typed so far (`_BATCHKIT_COMPLETE=complete_<shell>`), so they follow the commands and flags
of the installed version. Without a shell named, it is the one `$SHELL` names; batchkit does not
guess from the processes around it, so the answer is the same in a terminal, a script or a test.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Annotated, Any

import typer

SHELLS = ("bash", "zsh", "fish")
_HELP_SHELL = "[bash|zsh|fish]"
_OPTIONS = ("--show-completion", "--install-completion")


def _shell(named: str) -> str:
    from batchkit.errors import UsageError

    shell = named or PurePath(os.environ.get("SHELL", "")).name
    if shell in SHELLS:
        return shell
    if named:
        raise UsageError(f"unsupported shell {named!r}", hint=f"name one of: {', '.join(SHELLS)}")
    raise UsageError(
        f"cannot tell your shell from SHELL={os.environ.get('SHELL', '')!r}",
        hint="name it: --show-completion bash (or zsh, fish)",
    )


def complete_var(prog_name: str) -> str:
    """The environment variable through which a shell asks `prog_name` for completions."""
    return "_{}_COMPLETE".format(prog_name.replace("-", "_").upper())


def _target(ctx: typer.Context, value: str) -> tuple[str, str, str]:
    """The program name, its completion variable and the shell (usage errors shown here)."""
    from batchkit.cli.errors import boundary

    prog = ctx.find_root().info_name or "batchkit"
    with boundary(False):
        return prog, complete_var(prog), _shell(value)


def _show(ctx: typer.Context, _param: Any, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import get_completion_script

    prog, variable, shell = _target(ctx, value)
    typer.echo(get_completion_script(prog_name=prog, complete_var=variable, shell=shell))
    raise typer.Exit()


def _install(ctx: typer.Context, _param: Any, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import install

    prog, variable, shell = _target(ctx, value)
    _, path = install(shell=shell, prog_name=prog, complete_var=variable)
    typer.echo(f"{shell} completion installed in {path}", err=True)
    typer.echo("It takes effect in the next shell you start.", err=True)
    raise typer.Exit()


ShowCompletionOption = Annotated[
    str | None,
    typer.Option(
        "--show-completion",
        metavar=_HELP_SHELL,
        is_eager=True,
        expose_value=False,
        callback=_show,
        help="Print the completion script for SHELL (default: $SHELL's).",
    ),
]
InstallCompletionOption = Annotated[
    str | None,
    typer.Option(
        "--install-completion",
        metavar=_HELP_SHELL,
        is_eager=True,
        expose_value=False,
        callback=_install,
        help="Install completion for SHELL (default: $SHELL's) in its start-up files.",
    ),
]


def optional_shell(args: list[str]) -> list[str]:
    """`args` with an empty shell ($SHELL's) after a completion option that names none (it is
    last, or an option follows): the options take a value, and Click has no optional values."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg in _OPTIONS and (i + 1 == len(args) or args[i + 1].startswith("-")):
            out.append("")
    return out


def answer_shell(prog_name: str) -> None:
    """When a shell asks for completions (its variable is set), register the completion classes
    the scripts talk to; Click then answers and exits. Otherwise do nothing (and import nothing)."""
    if os.environ.get(complete_var(prog_name)):
        from typer._completion_classes import completion_init

        completion_init()

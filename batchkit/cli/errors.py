"""The one error boundary of the command line.

* `BatchkitError` → `error: <message>` and `hint: <hint>` on stderr, exit with its `ExitCode`.
* A flag Click cannot parse (`-m abc`, an unknown option) → the same two lines, exit 2.
* Ctrl-C → exit 130 (`ExitCode.INTERRUPTED`).
* A closed stdout (`batchkit out JOB | head`) → exit quietly.
* Anything else is a bug: one line, a hint to re-run with `--debug`, exit 6 (`ExitCode.ENGINE`).
  Tracebacks are printed only with `--debug`, and never with local variables.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from batchkit.errors import BatchkitError, ExitCode

#: Click's UsageError, as the Click that Typer runs defines it (Typer exports only its
#: BadParameter subclass, and may carry its own copy of Click).
_USAGE_ERROR: type[Exception] = next(
    kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError"
)


class FlagError(typer.BadParameter):
    """A flag Click could not parse, shown as batchkit shows every error: `error:`, `hint:`."""

    exit_code = int(ExitCode.USAGE)

    def __init__(self, message: str, command_path: str) -> None:
        super().__init__(message)
        self.command_path = command_path

    def show(self, file: Any = None) -> None:
        print(f"error: {self.message}", file=sys.stderr)
        print(f"hint: see `{self.command_path} --help`", file=sys.stderr)


@contextmanager
def flag_errors(command_path: str) -> Iterator[None]:
    """Turn Click's usage errors into `FlagError`s (not a bare group's "show the help")."""
    try:
        yield
    except _USAGE_ERROR as err:
        if isinstance(err, FlagError) or type(err).__name__ == "NoArgsIsHelpError":
            raise
        context = getattr(err, "ctx", None)
        path = context.command_path if context is not None else command_path or "batchkit"
        raise FlagError(getattr(err, "format_message", err.__str__)(), path) from None


@contextmanager
def boundary(debug: bool = False) -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except BatchkitError as err:
        if debug:
            traceback.print_exc(file=sys.stderr)
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        raise typer.Exit(int(err.exit_code)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(int(ExitCode.OK)) from None
    except Exception as err:
        if debug:
            traceback.print_exc(file=sys.stderr)
        detail = str(err).splitlines()[0] if str(err) else ""
        print(
            f"error: unexpected {type(err).__name__}" + (f": {detail}" if detail else ""),
            file=sys.stderr,
        )
        if not debug:
            print("hint: re-run with --debug to see the traceback, and report it", file=sys.stderr)
        raise typer.Exit(int(ExitCode.ENGINE)) from None


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

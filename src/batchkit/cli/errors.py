"""The one error boundary of the command line.

* `BatchkitError` → `error: <message>` and `hint: <hint>` on stderr, exit with its `ExitCode`.
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

import typer

from batchkit.errors import BatchkitError, ExitCode


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

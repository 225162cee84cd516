"""The console scripts pause garbage collection for start-up only: the command they run, and
any other caller of the CLI, collects as usual."""

from __future__ import annotations

import ast
import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from batchkit.cli import startup

# What the collector looks like while the command runs (its callback) and at exit.
PROBE = """
import atexit, gc, sys
import batchkit.cli.app as app
seen = []
command = app.LazyGroup.command
def spy(self, name):
    built = command(self, name)
    if built is None or getattr(built, "watched", False):
        return built
    built.watched, callback = True, built.callback
    def watched(*args, **kwargs):
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return callback(*args, **kwargs)
    built.callback = watched
    return built
app.LazyGroup.command = spy
atexit.register(lambda: sys.__stderr__.write(f"SEEN {{seen}}\\n"))
sys.argv = [{script!r}, *{args!r}]
getattr(__import__("batchkit.cli.console").cli.console, {script!r})()
"""


def _run_console(script: str, *args: str) -> list[tuple[bool, int]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(script=script, args=list(args))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    seen: list[tuple[bool, int]] = ast.literal_eval(
        proc.stderr.strip().splitlines()[-1].removeprefix("SEEN ")
    )
    return seen


@pytest.mark.parametrize(("script", "args"), [("batchkit", ["stat"]), ("awsbstat", [])])
def test_the_command_runs_with_the_collector_on_and_start_up_frozen(
    isolated_environment: object, script: str, args: list[str]
) -> None:
    [(enabled, frozen)] = _run_console(script, *args)
    assert enabled
    assert frozen > 10_000  # Typer, the modules and their classes: never visited again


@pytest.fixture
def collector_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    startup._paused = False
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_resume_turns_on_only_what_pause_turned_off(collector_state: None) -> None:
    gc.enable()
    startup.pause_collection()
    assert not gc.isenabled()
    startup.resume_collection()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0

    gc.disable()  # a caller that turned the collector off itself keeps it off
    startup.pause_collection()
    startup.resume_collection()
    assert not gc.isenabled()


def test_the_cli_in_process_leaves_the_collector_alone(
    collector_state: None, isolated_environment: object
) -> None:
    from typer.testing import CliRunner

    from batchkit.cli.app import app

    gc.enable()
    result = CliRunner().invoke(app, ["stat"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0

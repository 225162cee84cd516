"""Cold start: `batchkit --help` and `batchkit stat` (local) load none of the heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import batchkit
from batchkit.cli.coercion import converter_for
from batchkit.cli.sub import Executor

HEAVY = ("boto3", "botocore", "pydantic", "rich", "yaml", "docker")
PROBE = """
import atexit, sys
atexit.register(lambda: sys.__stderr__.write("LOADED " + " ".join(
    m for m in {heavy!r} if m in sys.modules) + "\\n"))
from batchkit.cli.app import main
main({args!r})
"""


@pytest.mark.parametrize("args", [["--help"], ["stat"], ["stat", "--help"], ["sub", "--help"]])
def test_no_heavy_import(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, args=args)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    assert loaded == "LOADED", loaded


def test_plain_converters() -> None:
    convert, _ = converter_for(int | None)
    assert convert("12") == 12
    convert, label = converter_for(list[str] | None)
    assert convert("x") == "x"
    convert, label = converter_for(Executor)
    assert convert("docker") is Executor.docker
    assert "auto, process, docker" in label
    assert converter_for(dict[str, str]) is None


def test_submitting_to_the_local_engine_loads_neither_the_scheduler_nor_package_metadata(
    isolated_environment: object,
) -> None:
    """`sub` on the local engine inserts a row and makes sure a worker runs: what schedules,
    runs and versions jobs is the worker's to import, not every submitter's."""
    worker_only = (
        "batchkit.providers.local.scheduler",
        "batchkit.providers.local.attempts",
        "batchkit.providers.local.process_executor",
        "importlib.metadata",
        "batchkit.computemodel",  # instance and Fargate tables: a Fargate queue's, the doctor's
        "batchkit.jobs.logtail",  # what reads logs (out, sub -w)
        "logging",  # the worker logs; the submitter only spawns it
        "secrets",  # the launch key is os.urandom's
        "batchkit.jobs.query",  # stat's listings
        "batchkit.jobs.kill",
        "batchkit.jobs.waiting",  # sub --wait's
        "batchkit.providers.local.logs",  # the log store: a submitter reads no log
        "batchkit.logmodel",  # log events and pages
        "batchkit.clustermodel",  # queues, hosts and subscriptions
        "batchkit.cli.stat",  # the other commands' modules
        "batchkit.cli.out",
        "batchkit.cli.doctor",
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY + worker_only, args=["sub", "true"])],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    assert loaded == "LOADED", loaded


COMMAND_NAMES = ["sub", "stat", "out", "kill", "queues", "hosts", "doctor"]


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_a_call_builds_only_the_command_it_names(name: str) -> None:
    import click

    from batchkit.cli.app import _group

    group = _group()
    with click.Context(group, info_name="batchkit") as ctx:
        _, command, _ = group.resolve_command(ctx, [name, "--help"])

    assert command is not None
    assert list(group.commands) == [name]


HELP_BOTH_WAYS = """
import click, typer
from batchkit.cli.app import COMMANDS, _group, command_info

def help_of(command, name):
    with click.Context(command, info_name=name) as ctx:
        return command.get_help(ctx)

# Typer's own build first (the annotations still strings), then the lazy group's
plain = {}
for name in COMMANDS:
    info = command_info(name)
    app = typer.Typer(rich_markup_mode=None, add_completion=False)
    app.command(name, cls=info.cls, context_settings=info.context_settings)(info.callback)
    plain[name] = help_of(typer.main.get_command(app), name)
group = _group()
print(all(help_of(group.command(name), name) == text for name, text in plain.items()))
"""


def test_a_command_built_by_the_group_has_the_help_typer_gives_it() -> None:
    """The group evaluates a command's annotations before Typer builds it (start-up): the
    command is the one Typer builds from the annotations as written."""
    proc = subprocess.run(
        [sys.executable, "-c", HELP_BOTH_WAYS], capture_output=True, text=True, timeout=60
    )

    assert proc.stdout.strip() == "True", proc.stderr


def test_an_unknown_command_gets_the_closest_ones_suggested() -> None:
    from typer.testing import CliRunner

    from batchkit.cli.app import app

    result = CliRunner().invoke(app, ["locl"])

    assert result.exit_code == 2
    assert "Did you mean 'local'?" in result.output


def test_the_aws_provider_loads_neither_the_compute_model_nor_image_records() -> None:
    """Every command on an AWS cluster imports the AWS provider: the compute model (the doctor's
    instance, subnet and Fargate tables) and the image records are imported by the calls that
    return them."""
    probe = (
        "import sys, batchkit.providers.aws.provider\n"
        "print(' '.join(m for m in ('batchkit.computemodel', 'batchkit.providers.images')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    assert proc.stdout.strip() == ""


def test_records_are_structs_not_dataclasses() -> None:
    """Every record is a `msgspec.Struct`: Python 3.11 compiles each generated method of a
    dataclass when the class is created, about 0.7 ms a class here, and `sub` alone went through
    two dozen of them (20 ms of its start-up)."""
    package = Path(batchkit.__file__).parent
    users = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if "dataclasses" in names or (
                isinstance(node, ast.ImportFrom) and node.module == "dataclasses"
            ):
                users.append(str(path.relative_to(package)))
    assert users == [], f"use msgspec.Struct instead of a dataclass in {users}"

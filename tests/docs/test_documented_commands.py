"""Every command line in README.md, docs/ and examples/ is one the CLI accepts.

Each is parsed by Click's own parser for its command path, so a documented command or flag that
does not exist fails here. Those that can run on this machine (the local engine, no placeholders,
no AWS cluster, no image, no missing file) are run through the installed `batchkit`, in document
order, in a fresh directory and a fresh local engine, and must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer.main

from batchkit.cli.app import app
from batchkit.models import JobStatus
from tests.docs.commands import ROOT, DocCommand, commands, documents

ALIASES = {f"awsb{name}": name for name in ("sub", "stat", "out", "kill", "queues", "hosts")}
RUNNABLE = {("sub",), ("stat",), ("queues",), ("hosts",), ("local", "doctor"), ("cluster", "init")}
RUNNABLE |= {("cluster", "template"), ("--help",), ("--version",)}
_WORDS = {"ALL", *(status.value for status in JobStatus)}
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(…)?$")
COMPLETION = ("--install-completion", "--show-completion")
_NOT_HERE = {"-c", "--cluster", "--image", "--executor", "-a", "--array-size", "-n", "--nodes"}
ALL = commands()


def parse(argv: Sequence[str]) -> tuple[tuple[str, ...], Any, dict[str, Any], list[str]]:
    """(command path, command, options, positional arguments) as Click parses `argv`; raises
    Click's usage errors (no such command, no such option, a missing value)."""
    program, *args = argv
    if program in ALIASES:
        args = [ALIASES[program], *args]
    command: Any = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="batchkit")
    path: list[str] = []
    while hasattr(command, "get_command") and args and not args[0].startswith("-"):
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        if sub is None:
            raise AssertionError(f"no command {' '.join([*path, name])!r}")
        path.append(name)
        settings = sub.context_settings or {}
        command, ctx = sub, sub.context_class(sub, info_name=name, parent=ctx, **settings)
    if not path and args and args[0] in COMPLETION:
        # Typer's completion options take an optional shell name, outside Click's parser
        assert args[1:] in ([], ["bash"], ["zsh"], ["fish"]), args
        return ("completion",), command, {}, args[1:]
    parser = command.make_parser(ctx)
    options, positional, _ = parser.parse_args(args=list(args))
    if not path and args:
        path.append(args[0])  # `batchkit --version`
    return tuple(path), command, options, positional


@pytest.mark.parametrize("doc", ALL, ids=str)
def test_the_cli_accepts_the_documented_command(doc: DocCommand) -> None:
    try:
        parse(doc.argv)
    except Exception as err:  # Click's NoSuchOption, BadOptionUsage, …
        pytest.fail(f"{doc}: {type(err).__name__}: {getattr(err, 'message', err)}")


def test_the_docs_show_many_commands_and_the_example_config_names_a_real_flag() -> None:
    assert len(ALL) > 150
    example = [d for d in ALL if d.source.startswith("examples/batchkit.yaml")]
    assert ("batchkit", "sub", "-q", "NAME") in [d.argv for d in example]


def test_a_flag_that_does_not_exist_fails_the_parse() -> None:
    with pytest.raises(Exception, match="No such option"):
        parse(("batchkit", "sub", "--no-such-flag", "true"))
    with pytest.raises(AssertionError, match="no command 'cluster frobnicate'"):
        parse(("batchkit", "cluster", "frobnicate"))


def runnable(doc: DocCommand, cwd: Path) -> bool:
    path, _, options, _ = parse(doc.argv)
    tokens = doc.argv[1:]
    if path not in RUNNABLE:
        return False
    for flag, value in zip(tokens, [*tokens[1:], ""], strict=False):
        if flag in _NOT_HERE and not (flag in ("-c", "--cluster") and value == "local"):
            return False
    if any(c in t for t in tokens for c in "$<>…") or "..." in " ".join(tokens):
        return False
    if any(_PLACEHOLDER.match(t) and t not in _WORDS for t in tokens):
        return False
    files = [t for t in tokens if t.startswith("./") or re.search(r"\.(sh|py|yaml|csv|txt)$", t)]
    if any(not (cwd / f).exists() for f in files):
        return False
    # not an inline mention (`batchkit sub`), nor a script this test does not have
    return not (path == ("sub",) and (not options.get("command") or options.get("command_file")))


def run(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).parent / argv[0]
    return subprocess.run(
        [str(program), *argv[1:]],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BATCHKIT_LOCAL_VCPUS": "2"},
    )


@pytest.mark.parametrize("document", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_documented_commands_that_can_run_here_succeed(
    document: Path, tmp_path: Path, isolated_environment: Path
) -> None:
    name = document.relative_to(ROOT).as_posix()
    ran = []
    for doc in (d for d in ALL if d.source.split(":")[0] == name):
        if runnable(doc, tmp_path):
            ran.append(doc.argv)
            if doc.argv in _SUCCEEDED:  # the same line in an earlier document: once is enough
                continue
            result = run(doc.argv, tmp_path)
            assert result.returncode == 0, f"{doc}: exit {result.returncode}\n{result.stderr}"
            assert "Traceback" not in result.stderr
            if doc.argv[1:2] != ("cluster",):  # init and template depend on the directory
                _SUCCEEDED.add(doc.argv)
    if name == "README.md":  # the quick start and the cluster config run for real
        assert ("batchkit", "sub", "-jn", "hello", "--wait", "echo", "hello from batchkit") in ran
        assert ("batchkit", "cluster", "template", "-f", "batchkit.yaml") in ran
    if name == "docs/local-engine.md":
        assert ("batchkit", "sub", "-c", "local", "-jn", "hello", "echo", "hi", "there") in ran


_SUCCEEDED: set[tuple[str, ...]] = set()

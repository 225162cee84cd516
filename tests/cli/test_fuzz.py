"""Fuzzing every command's flags and the cluster config: whatever is typed, batchkit answers
with one of its documented exit codes and a message, never a traceback nor an "unexpected" error.

Commands run in-process through `typer.testing.CliRunner` with an injected context (a fake
provider for the job commands); anything that would reach AWS meets a closed port on 127.0.0.1
(and fails in seconds, exit 4), Docker a socket that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from batchkit.cli.app import app
from batchkit.errors import ExitCode
from tests.cli.conftest import Cli

DOCUMENTED = {int(code) for code in ExitCode}
# Flags that block (they wait for a job of the fake provider), print tracebacks on purpose
# (--debug) or touch the shell's startup files are not fuzzed.
SKIPPED = {"--wait", "--follow", "--stream", "--debug", "--install-completion"}
NOT_RUN = {("local", "worker")}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The configs fuzzed are mutations of these: batchkit.yaml has the common keys, platform.yaml the
# volumes, notifications and fair share that batchkit.yaml only shows commented out.
BASES = ("batchkit.yaml", "platform.yaml")
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _commands() -> list[tuple[tuple[str, ...], list[Any]]]:
    """(command path, its Click parameters) of every command the CLI has."""
    found: list[tuple[tuple[str, ...], list[Any]]] = []
    root = typer.main.get_command(app)

    def walk(command: Any, path: tuple[str, ...], ctx: Any) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                walk(sub, (*path, name), sub.context_class(sub, info_name=name, parent=ctx))
        elif path not in NOT_RUN:
            found.append((path, list(command.params)))

    walk(root, (), root.context_class(root, info_name="batchkit"))
    return found


COMMANDS = _commands()

numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "-1", "1", "60", "10001", "9223372036854775808", "1e400", "nan",
                     "inf", "-inf", "0.25", "1_000", "0x10", " 5 "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)  # fmt: skip
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "ALL", "all", "jobId=a,type=N_TO_N", "a;b", "..", "/", "-", "--",
                     "ünïcødé", "$(id)", "a\nb", "x" * 300, "local", "research", "/dev/zero"]),
)  # fmt: skip
values = st.one_of(numbers, texts)


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    path, params = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    options = [p for p in params if p.param_type_name == "option" and not p.hidden]
    for option in draw(st.lists(st.sampled_from(options), max_size=5)) if options else []:
        name = draw(st.sampled_from(option.opts))
        if name in SKIPPED or (path == ("out",) and name == "-s"):  # out -s is --stream
            continue
        argv.append(name)
        if not getattr(option, "is_flag", False) and not getattr(option, "count", False):
            argv.append(draw(values))
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(["--no-such-flag", "-Z", "--json"])))
    if any(p.param_type_name == "argument" for p in params):
        argv += draw(st.lists(values, max_size=3))
    return argv


def check(result: Any, argv: list[str]) -> None:
    shown = f"{argv!r}\n{result.output}"
    assert result.exit_code in DOCUMENTED, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    assert "error: unexpected" not in result.output, shown
    if result.exit_code == 2:
        assert "error:" in result.stderr and "hint:" in result.stderr, shown


@pytest.fixture
def sandbox(isolated_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # refused at once
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


@FUZZ
@given(argv=invocations())
def test_every_commands_flags(sandbox: Path, argv: list[str]) -> None:
    cli = Cli()
    check(cli.run(*argv), argv)


def _example(base: str) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / base).read_text())
    assert isinstance(data, dict)
    return data


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = {base: _paths(_example(base)) for base in BASES}
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
    st.sampled_from(["ünï", "EC2", "FARGATE", "", "-1", "1e309", "x" * 500]),
)


@st.composite
def configs(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(BASES))
    data = _example(base)
    for path in draw(st.lists(st.sampled_from(PATHS[base]), max_size=4)):
        node: Any = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = draw(wrong)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a parent
    for _ in range(draw(st.integers(0, 2))):
        data[draw(st.text(min_size=1, max_size=12))] = draw(wrong)
    text = yaml.safe_dump(data, allow_unicode=True)
    if draw(st.booleans()):
        text = draw(st.sampled_from(["", "- a list\n", "just text", "a: [unclosed", "\x00"]))
    return text


@settings(FUZZ, max_examples=60)
@given(text=configs())
def test_cluster_configs(sandbox: Path, text: str) -> None:
    path = sandbox / "batchkit.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["cluster", "template", "-f", str(path)])
    check(result, ["cluster", "template", text])
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert str(path) in result.stderr


def test_the_fuzzer_reaches_every_command() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {("sub",), ("stat",), ("out",), ("kill",), ("cluster", "create")} <= paths
    assert ("image", "build") in paths and ("local", "doctor") in paths
    assert all(len(paths) > 30 for paths in PATHS.values())


def test_the_config_fuzzer_mutates_volumes_notifications_and_fair_share() -> None:
    """The keys batchkit.yaml leaves commented out are fuzzed through platform.yaml."""
    keys = {path[0] for paths in PATHS.values() for path in paths}
    assert {"volumes", "notifications"} <= keys
    assert any("fair_share" in path for path in PATHS["platform.yaml"])
    kinds = {
        path[2] for path in PATHS["platform.yaml"] if path[:1] == ("volumes",) and len(path) > 2
    }
    assert "file_system_id" in kinds and "size_gib" in kinds

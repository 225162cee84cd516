"""`batchkit --version` and shell completion, through the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from batchkit.cli.completion import optional_shell

BATCHKIT = str(Path(sys.executable).parent / "batchkit")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_COMPLETE")}
    return subprocess.run(
        [BATCHKIT, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_installed_distributions_version(flag: str) -> None:
    done = run(flag)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"batchkit {version('batchkit')}\n"


SCRIPTS = {
    "bash": "complete -o default -F _batchkit_completion batchkit",
    "zsh": "#compdef batchkit",
    "fish": "complete --command batchkit",
}


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_show_completion_prints_the_script_of_the_shell_in_SHELL(shell: str) -> None:
    done = run("--show-completion", env={"SHELL": f"/usr/bin/{shell}"})
    assert done.returncode == 0, done.stderr
    assert SCRIPTS[shell] in done.stdout
    assert "_BATCHKIT_COMPLETE=complete_" + shell in done.stdout
    named = run("--show-completion", shell, env={"SHELL": "/bin/sh"})
    assert named.returncode == 0 and named.stdout == done.stdout


def test_the_bash_script_completes_commands_and_flags_when_sourced(tmp_path: Path) -> None:
    """bash sources the script and runs its completion function as <Tab> would."""
    script = tmp_path / "batchkit.sh"
    script.write_text(run("--show-completion", "bash").stdout)
    probe = (
        f"source {script}\n"
        'COMP_WORDS=(batchkit image bu); COMP_CWORD=2; _batchkit_completion "$BATCHKIT"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(batchkit image buildspec --pre); COMP_CWORD=3\n"
        '_batchkit_completion "$BATCHKIT"; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", probe],
        env={**os.environ, "BATCHKIT": BATCHKIT},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["build", "buildspec", "--preset"]


# What docs/cli.md says each install writes: the script, and the start-up file that loads it
# with the line that does (fish loads its completions folder by itself: no start-up file).
INSTALLS = {
    "bash": (".bash_completions/batchkit.sh", ".bashrc", "source '{script}'"),
    "zsh": (".zfunc/_batchkit", ".zshrc", "fpath+=~/.zfunc"),
    "fish": (".config/fish/completions/batchkit.fish", None, None),
}


@pytest.mark.parametrize("shell", sorted(INSTALLS))
def test_install_completion_writes_the_script_where_the_shell_loads_it(
    tmp_path: Path, shell: str
) -> None:
    home = tmp_path / "user"
    home.mkdir()
    done = run("--install-completion", shell, env={"HOME": str(home), "SHELL": "/bin/sh"})
    assert done.returncode == 0, done.stderr
    script, startup, line = INSTALLS[shell]
    installed = home / script
    assert f"{shell} completion installed in {installed}" in done.stderr
    assert installed.read_text().strip() == run("--show-completion", shell).stdout.strip()
    written = {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}
    assert written == {script} | ({startup} if startup else set())
    if startup and line:
        assert line.format(script=installed) in (home / startup).read_text()


@pytest.mark.parametrize(
    ("args", "shell_env", "message"),
    [
        (["--show-completion", "tcsh"], "/bin/bash", "error: unsupported shell 'tcsh'"),
        (["--show-completion"], "", "error: cannot tell your shell from SHELL=''"),
        (["--install-completion"], "/bin/csh", "error: cannot tell your shell from SHELL="),
    ],
)
def test_an_unknown_shell_is_a_usage_error(
    args: list[str], shell_env: str, message: str, tmp_path: Path
) -> None:
    home = tmp_path / "user"
    home.mkdir()
    done = run(*args, env={"SHELL": shell_env, "HOME": str(home)})
    assert done.returncode == 2
    assert message in done.stderr and "hint: " in done.stderr
    assert not list(home.iterdir())  # nothing installed


def test_the_shell_is_optional_on_the_command_line() -> None:
    assert optional_shell(["--show-completion"]) == ["--show-completion", ""]
    assert optional_shell(["--show-completion", "-V"]) == ["--show-completion", "", "-V"]
    assert optional_shell(["--show-completion", "zsh"]) == ["--show-completion", "zsh"]
    assert optional_shell(["sub", "--show-completion"]) == ["sub", "--show-completion", ""]
    assert optional_shell(["stat", "-s", "ALL"]) == ["stat", "-s", "ALL"]

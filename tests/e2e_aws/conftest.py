"""End to end: the installed `batchkit` command and awsbatch-cli 1.6.0 against one moto server.

Both CLIs run as subprocesses that find moto through AWS_ENDPOINT_URL (set by `moto_endpoint`),
with the test's private HOME and BATCHKIT_HOME.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


def _run(argv: list[str], stdin: str | None = None, timeout: float = 120) -> Result:
    proc = subprocess.run(
        argv,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def batchkit(moto_endpoint: str) -> Run:
    """Run the installed console script: `batchkit(*args, stdin=None)`."""
    exe = Path(sys.executable).parent / "batchkit"
    if not exe.exists():
        pytest.skip(f"batchkit is not installed next to {sys.executable}")

    def run(*args: str, stdin: str | None = None) -> Result:
        return _run([str(exe), *args], stdin)

    return run


def awsbatch_cli_bin() -> Path | None:
    configured = os.environ.get("BATCHKIT_AWSBATCH_CLI_BIN")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO / ".venv-awsbatch-cli" / "bin")
    for candidate in candidates:
        if (candidate / "awsbstat").exists():
            return candidate
    return None


@pytest.fixture
def awsb(moto_endpoint: str) -> Run:
    """Run an awsbatch-cli 1.6.0 command: `awsb("awsbstat", *args, tty=False, stdin=None)`.

    `tty=True` runs it under `script` so that stdin is a terminal: awsbsub reads a job script
    from stdin whenever stdin is not one."""
    bin_dir = awsbatch_cli_bin()
    if bin_dir is None:
        pytest.skip(
            "aws-parallelcluster-awsbatch-cli 1.6.0 is not installed: set "
            "BATCHKIT_AWSBATCH_CLI_BIN or run scripts/test (it creates .venv-awsbatch-cli)"
        )
    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is needed to give awsbsub a terminal")

    def run(command: str, *args: str, tty: bool = False, stdin: str | None = None) -> Result:
        argv = [str(bin_dir / command), *args]
        if tty:
            line = shlex.join(argv)
            return _run(["script", "-qec", line, "/dev/null"])
        return _run(argv, stdin)

    return run

"""The wheel: built from a fresh clone of this repository's HEAD (what `pip install .` from a
clone sees, not the files of the working checkout), it carries the Lambda code and the preset
Dockerfiles, installs with pip into a fresh venv whose `batchkit --version` runs, and
`batchkit.shipped` finds its folders inside the installed package (not beside a checkout).

The build reuses the test venv's hatchling (`--no-isolation`), so it needs no download; without
hatchling there (an install that skipped `.[test]`) `build` makes its isolated environment, which
needs the package index."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "batchkit/_shipped/"

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def _head() -> str:
    """The commit checked out at ROOT; skips the module when ROOT is not a git checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the packaging tests build from a clone of HEAD")
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel", "HEAD"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not a git checkout: the packaging tests build from a clone of HEAD")
    return lines[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HEAD of this repository, fetched into an empty repository (a linked worktree's HEAD too,
    and a detached one): what a fresh clone checks out, without uncommitted or ignored files."""
    head = _head()
    where = tmp_path_factory.mktemp("clone") / "batchkit"
    _run(["git", "init", "--quiet", str(where)])
    _run(["git", "-C", str(where), "fetch", "--quiet", "--depth", "1", str(ROOT), head])
    _run(["git", "-C", str(where), "checkout", "--quiet", "--detach", "FETCH_HEAD"])
    return where


@pytest.fixture(scope="module")
def wheel(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-isolation"]
    command = [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(out)]
    _run([*command, str(clone)], timeout=300)
    [built] = out.glob("batchkit-*.whl")
    return built


def repository_files(root: Path, folder: str) -> set[str]:
    """The files of a top-level folder of a checkout (no byte code)."""
    return {
        path.relative_to(root).as_posix()
        for path in (root / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_carries_the_lambdas_and_the_dockerfiles(clone: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    shipped = {name[len(SHIPPED) :] for name in names if name.startswith(SHIPPED)}
    assert shipped == repository_files(clone, "lambdas") | repository_files(clone, "dockerfiles")
    for required in (
        "lambdas/cfn_response.py",
        "lambdas/empty_s3.py",
        "lambdas/empty_ecr.py",
        "lambdas/default_image.py",
        "dockerfiles/al2023/Dockerfile",
        "dockerfiles/debian/Dockerfile",
        "dockerfiles/scripts/batchkit-entrypoint",
        "dockerfiles/scripts/batchkit-rendezvous",
    ):
        assert SHIPPED + required in names
    assert modes[SHIPPED + "dockerfiles/scripts/batchkit-entrypoint"] & 0o111
    # the package itself, and nothing of the checkout's other folders
    assert "batchkit/shipped.py" in names and "batchkit/cli/app.py" in names
    assert not any(name.startswith(("tests/", "lambdas/", "dockerfiles/")) for name in names)


def test_pip_installs_the_wheel_into_a_fresh_venv_that_runs_and_holds_its_folders(
    clone: Path, wheel: Path, tmp_path: Path
) -> None:
    """`pip install --no-deps` of the wheel into a new venv. Its dependencies come from this test
    venv through a path line (appended after the venv's own site-packages, and its .pth files,
    the editable install of this checkout among them, are not read), so nothing is downloaded and
    the batchkit that answers is the installed one."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    )
    ours = sysconfig.get_paths()
    (site / "borrowed_dependencies.pth").write_text(
        "\n".join(dict.fromkeys([ours["purelib"], ours["platlib"]])) + "\n"
    )
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        timeout=180,
    )  # fmt: skip

    version = _run([str(venv / "bin" / "batchkit"), "--version"], cwd=tmp_path, timeout=60)
    project = tomllib.loads((clone / "pyproject.toml").read_text("utf-8"))["project"]
    assert version.strip() == f"batchkit {project['version']}"

    probe = (
        "import batchkit, batchkit.shipped as s\n"
        "print(batchkit.__file__)\n"
        "print(s.folder('lambdas'))\n"
        "print(s.folder('dockerfiles'))\n"
        "print(s.lambda_module('cfn_response').__file__)\n"
    )
    package, lambdas, dockerfiles, module = _run(
        [str(python), "-c", probe], cwd=tmp_path
    ).splitlines()
    installed = site / "batchkit" / "_shipped"
    assert package == str(site / "batchkit" / "__init__.py")
    assert (lambdas, dockerfiles) == (str(installed / "lambdas"), str(installed / "dockerfiles"))
    assert module == str(installed / "lambdas" / "cfn_response.py")
    held = {
        path.relative_to(installed).as_posix()
        for path in installed.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert held == repository_files(clone, "lambdas") | repository_files(clone, "dockerfiles")
    assert os.access(installed / "dockerfiles" / "scripts" / "batchkit-entrypoint", os.X_OK)

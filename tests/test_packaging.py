"""The wheel: built from this checkout, it carries the Lambda code and the preset Dockerfiles,
and `batchkit.shipped` finds them inside it (not beside a checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "batchkit/_shipped/"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [built] = out.glob("batchkit-*.whl")
    return built


def repository_files(folder: str) -> set[str]:
    """The files of a top-level folder of the checkout (no byte code)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_carries_the_lambdas_and_the_dockerfiles(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    shipped = {name[len(SHIPPED) :] for name in names if name.startswith(SHIPPED)}
    assert shipped == repository_files("lambdas") | repository_files("dockerfiles")
    for required in (
        "lambdas/cfn_response.py",
        "lambdas/empty_s3.py",
        "lambdas/empty_ecr.py",
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


def test_shipped_finds_its_folders_inside_an_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "import batchkit, batchkit.shipped as s\n"
        "print(batchkit.__file__)\n"
        "print(s.folder('lambdas'))\n"
        "print(s.folder('dockerfiles'))\n"
        "print(s.lambda_module('cfn_response').__file__)\n"
    )
    # -S: no site-packages, so the editable install of this checkout cannot answer instead
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    package, lambdas, dockerfiles, module = done.stdout.splitlines()
    assert package == str(site / "batchkit" / "__init__.py")
    assert lambdas == str(site / "batchkit" / "_shipped" / "lambdas")
    assert dockerfiles == str(site / "batchkit" / "_shipped" / "dockerfiles")
    assert module == str(site / "batchkit" / "_shipped" / "lambdas" / "cfn_response.py")

"""examples/notebook.ipynb, executed by a real Jupyter kernel (this venv's Python) against the
local engine, with its outputs checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.fixtures.local_engine import stop_workers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"
KERNEL = "batchkit-test"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this venv's Python in a private Jupyter path."""
    prefix = tmp_path / "jupyter"
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
        check=True,
        capture_output=True,
    )
    data = prefix / "share" / "jupyter"
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return KERNEL


def text_of(cell: Any) -> str:
    """Everything a cell showed: streams, plain-text and HTML results."""
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data", "update_display_data"):
            data = output["data"]
            parts.append(data.get("text/html", "") + data.get("text/plain", ""))
        elif output["output_type"] == "error":
            parts.append("\n".join(output["traceback"]))
    return "".join(parts)


def cell_with(notebook: Any, source_fragment: str) -> Any:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and source_fragment in c.source]
    return cell


def test_the_example_notebook_runs_against_the_local_engine(
    kernel: str, isolated_environment: Path, tmp_path: Path
) -> None:
    notebook = nbformat.read(EXAMPLE, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    finally:
        stop_workers(isolated_environment)

    script = text_of(cell_with(notebook, "job.wait()"))
    assert 'class="batchkit-progress"' in script
    assert "SUCCEEDED" in script
    assert "hello from " in text_of(cell_with(notebook, "print(job.logs().text)"))
    assert ", notebook" in text_of(cell_with(notebook, "print(job.logs().text)"))
    assert "6765" in text_of(cell_with(notebook, "def fib"))
    assert "[0, 1, 4, 9, 16, 25, 36, 49]" in text_of(cell_with(notebook, "squares.results"))
    risky = text_of(cell_with(notebook, "def risky"))
    assert "caught: cannot handle 3" in risky
    assert "ValueError: cannot handle 3" in risky
    table = text_of(cell_with(notebook, 'cluster.jobs(status="ALL")'))
    assert 'class="batchkit-jobs"' in table
    assert "squares" in table and "FAILED" in table
    magic = text_of(cell_with(notebook, "%%batchkit"))
    assert "from a cell, job " in magic
    assert "two plus two is 4" in magic
    assert "has been submitted." in magic

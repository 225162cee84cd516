"""How the process executor starts a node of a multi-node job: through the presets' entrypoint,
with its hostfile and status-reason file in the attempt's directory, and Open MPI's root
allowance only when the engine itself runs as root."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.models import Resources
from batchkit.providers.local import process_executor
from batchkit.providers.local.executor import RunSpec, read_reason, reason_file


def spec(tmp_path: Path, **env: str) -> RunSpec:
    return RunSpec(
        job_id="j#1",
        attempt=1,
        argv=("/bin/sh", "-c", "true"),
        env=env,
        workdir=tmp_path,
        resources=Resources(vcpus=1, memory=128),
    )


def test_a_single_node_job_runs_as_given(tmp_path: Path) -> None:
    argv, env = process_executor.node_command(spec(tmp_path, A="1"))
    assert argv == ["/bin/sh", "-c", "true"] and env == {"A": "1"}


def test_a_node_runs_through_the_entrypoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_executor.os, "geteuid", lambda: 1000)
    argv, env = process_executor.node_command(spec(tmp_path, AWS_BATCH_JOB_NUM_NODES="2"))
    assert argv == ["/bin/sh", str(process_executor.ENTRYPOINT), "/bin/sh", "-c", "true"]
    assert env["BATCHKIT_HOSTFILE"] == str(tmp_path / "mpi-hostfile")
    assert env["BATCHKIT_STATUS_REASON_FILE"] == str(reason_file(tmp_path))
    assert "OMPI_ALLOW_RUN_AS_ROOT" not in env


def test_as_root_open_mpi_is_allowed_unless_the_job_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_executor.os, "geteuid", lambda: 0)
    _, env = process_executor.node_command(spec(tmp_path, AWS_BATCH_JOB_NUM_NODES="3"))
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    _, mine = process_executor.node_command(
        spec(tmp_path, AWS_BATCH_JOB_NUM_NODES="3", OMPI_ALLOW_RUN_AS_ROOT="0")
    )
    assert mine["OMPI_ALLOW_RUN_AS_ROOT"] == "0"


def test_the_reason_a_node_wrote_is_read_back_bounded(tmp_path: Path) -> None:
    assert read_reason(tmp_path) is None
    reason_file(tmp_path).write_text("Node 1 (127.0.0.2) was lost\nmore\n" + "x" * 5000)
    assert read_reason(tmp_path) == "Node 1 (127.0.0.2) was lost"

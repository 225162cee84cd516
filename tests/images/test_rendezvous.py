"""The job images' entrypoint and MNP rendezvous, run as local processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from batchkit.images.presets import PRESETS_DIR

ENTRYPOINT = PRESETS_DIR / "scripts" / "batchkit-entrypoint"

# prints what a job's command sees, as JSON, after the entrypoint ran
REPORT = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], "
    "'role': os.environ.get('BATCHKIT_NODE_ROLE'), "
    "'slots': os.environ.get('BATCHKIT_NODE_SLOTS'), "
    "'hosts': open(os.environ['BATCHKIT_HOSTFILE']).read() "
    "if 'BATCHKIT_HOSTFILE' in os.environ else None, "
    "'ompi': os.environ.get('OMPI_MCA_orte_default_hostfile')}))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_env(tmp_path: Path, index: int, nodes: int, port: int, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "AWS_BATCH_JOB_ID": f"job-1#{index}",
        "AWS_BATCH_JOB_NUM_NODES": str(nodes),
        "AWS_BATCH_JOB_NODE_INDEX": str(index),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1",
        "BATCHKIT_RENDEZVOUS_PORT": str(port),
        "BATCHKIT_RENDEZVOUS_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def start(env: dict[str, str], *argv: str) -> subprocess.Popen[str]:
    # run through the entrypoint, with python3 resolved to this interpreter's directory first
    env = {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    return subprocess.Popen(
        ["sh", str(ENTRYPOINT), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_single_node_job_runs_its_command_with_arguments_byte_exact(tmp_path: Path) -> None:
    hostile = ["it's", "$(id)", "a b\nc", "ünï"]
    env = node_env(tmp_path, 0, 1, free_port())
    done = start(env, sys.executable, "-c", REPORT, *hostile)
    out, err = done.communicate(timeout=30)
    assert done.returncode == 0, err
    report = json.loads(out)
    assert report["argv"] == hostile
    assert report["hosts"] is None  # no rendezvous for a single node


def test_three_nodes_meet_and_every_node_gets_the_hostfile_of_reserved_vcpus(
    tmp_path: Path,
) -> None:
    port = free_port()
    procs = {
        index: start(
            node_env(tmp_path, index, 3, port, BATCHKIT_JOB_VCPUS=str(index + 1)),
            sys.executable,
            "-c",
            REPORT,
            "--flag",
            "x y",
        )
        # workers first: they must wait for the main node to listen
        for index in (2, 1, 0)
    }
    reports = {}
    for index, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        reports[index] = json.loads(out)
    assert reports[0]["role"] == "main"
    assert reports[1]["role"] == reports[2]["role"] == "worker"
    # every node shares 127.0.0.1 here, so one line carries the sum of the nodes' vCPUs
    assert {r["hosts"] for r in reports.values()} == {"127.0.0.1 slots=6\n"}
    assert [reports[i]["slots"] for i in range(3)] == ["1", "2", "3"]
    assert all(r["argv"] == ["--flag", "x y"] for r in reports.values())
    assert all(r["ompi"] and r["ompi"].startswith(str(tmp_path)) for r in reports.values())


def test_main_node_gives_up_after_the_timeout_and_names_the_missing_nodes(
    tmp_path: Path,
) -> None:
    env = node_env(tmp_path, 0, 3, free_port(), BATCHKIT_RENDEZVOUS_TIMEOUT="1")
    began = time.monotonic()
    proc = start(env, "true")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 124
    assert time.monotonic() - began < 15
    assert "rendezvous timed out after 1s" in err
    assert "0 of 2 worker nodes" in err and "missing node indexes: 1, 2" in err
    assert out == ""


def test_worker_gives_up_when_the_main_node_never_listens(tmp_path: Path) -> None:
    port = free_port()
    env = node_env(tmp_path, 1, 2, port, BATCHKIT_RENDEZVOUS_TIMEOUT="1")
    proc = start(env, "true")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 124
    assert f"node 1 could not announce itself to the main node at 127.0.0.1:{port}" in err


def test_worker_without_the_main_node_address_is_a_clear_error(tmp_path: Path) -> None:
    env = node_env(tmp_path, 1, 2, free_port())
    del env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"]
    proc = start(env, "true")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set" in err


def test_entrypoint_rejects_a_garbled_node_count(tmp_path: Path) -> None:
    env = node_env(tmp_path, 0, 1, free_port(), AWS_BATCH_JOB_NUM_NODES="two")
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "true"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "AWS_BATCH_JOB_NUM_NODES is not a number" in done.stderr


def test_the_main_node_learns_its_own_address_when_batch_does_not_set_it(
    tmp_path: Path,
) -> None:
    """On AWS Batch only the other nodes get AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS."""
    port = free_port()
    main_env = node_env(tmp_path, 0, 2, port)
    del main_env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"]
    worker = start(node_env(tmp_path, 1, 2, port), sys.executable, "-c", REPORT)
    main = start(main_env, sys.executable, "-c", REPORT)
    outputs = [proc.communicate(timeout=60) for proc in (main, worker)]
    assert main.returncode == 0 and worker.returncode == 0, outputs
    assert json.loads(outputs[0][0])["hosts"] == "127.0.0.1 slots=2\n"

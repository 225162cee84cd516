"""The launch agent and its rsh-compatible client (dockerfiles/scripts/batchkit-launch), as local
processes on 127.0.0.1: only a client that knows the job's key gets a command run."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchkit.images.presets import PRESETS_DIR

LAUNCH = PRESETS_DIR / "scripts" / "batchkit-launch"
RENDEZVOUS = PRESETS_DIR / "scripts" / "batchkit-rendezvous"
KEY = "k" * 64


def load_script(path: Path, name: str) -> Any:
    """One of the images' scripts (no .py suffix) as a module."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agent_env(port: int) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "BATCHKIT_LAUNCH_KEY": KEY,
        "BATCHKIT_LAUNCH_PORT": str(port),
    }


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[int]:
    """A stand-alone agent on 127.0.0.1 with the job's key; yields its port."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "BATCHKIT_LAUNCH_KEY": KEY,
        "BATCHKIT_LAUNCH_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCH), "--agent", "127.0.0.1"],
        env=env,
        stderr=(tmp_path / "agent.log").open("wb"),
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.05)
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def run_script(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def client(port: int, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "BATCHKIT_LAUNCH_PORT": str(port)}
    if key is not None:
        env["BATCHKIT_LAUNCH_KEY"] = key
    return run_script(LAUNCH, *args, env=env)


def test_a_client_with_the_key_runs_a_command_like_ssh(agent: int) -> None:
    # ssh's words are joined and run by a shell; ssh options before the host are ignored
    done = client(
        agent, "-x", "-o", "BatchMode=yes", "127.0.0.1", "echo out;", "echo err >&2;", "exit 3"
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_the_agent_refuses_a_client_with_a_wrong_key(agent: int, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = client(agent, "127.0.0.1", "touch", str(marker), key="not-the-key")
    assert done.returncode == 255
    assert "refused the launch: this job's key was not accepted" in done.stderr
    assert not marker.exists()
    assert "does not know this job's key" in (tmp_path / "agent.log").read_text()


def test_a_client_without_any_key_is_refused_before_connecting(agent: int, tmp_path: Path) -> None:
    done = client(agent, "127.0.0.1", "touch", str(tmp_path / "ran"), key=None)
    assert done.returncode == 255
    assert "BATCHKIT_LAUNCH_KEY is not set" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_a_raw_connection_that_skips_the_challenge_runs_nothing(agent: int, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with socket.create_connection(("127.0.0.1", agent), timeout=10) as sock:
        greeting = sock.recv(100)
        assert greeting.startswith(b"BATCHKIT-LAUNCH 1 ")
        command = f"touch {marker}".encode()
        sock.sendall(b"0" * 64 + b"\n" + f"{len(command)}\n".encode() + command)
        assert sock.recv(100) == b"DENIED\n"
    assert not marker.exists()


def test_the_client_sends_no_command_to_an_agent_without_the_key() -> None:
    """A listener posing as a node (it greets like an agent, then says OK without proving it
    knows the key) gets the client's proof but never the command."""
    import threading

    received: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def impostor() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"BATCHKIT-LAUNCH 1 " + b"ab" * 16 + b"\n")
                received.append(conn.recv(1000))
                conn.sendall(b"OK " + b"0" * 64 + b"\n")
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(1000):
                        received.append(chunk)
                except OSError:
                    pass

        thread = threading.Thread(target=impostor)
        thread.start()
        done = client(port, "127.0.0.1", "echo secret-command")
        thread.join(timeout=30)
    assert done.returncode == 255
    assert "does not know this job's key: not one of its nodes" in done.stderr
    assert b"secret-command" not in b"".join(received)


def test_a_node_that_goes_away_mid_command_ends_the_client_with_255(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "BATCHKIT_LAUNCH_KEY": KEY,
        "BATCHKIT_LAUNCH_PORT": str(port),
    }
    node = subprocess.Popen(
        [sys.executable, str(LAUNCH), "--agent", "127.0.0.1"],
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the "node": the agent and what it runs, one process group
    )
    try:
        running = subprocess.Popen(
            [sys.executable, str(LAUNCH), "127.0.0.1", "echo started; sleep 600"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert running.stdout is not None
        assert running.stdout.readline() == "started\n"
        os.killpg(node.pid, signal.SIGKILL)
        _, err = running.communicate(timeout=30)
        assert running.returncode == 255
        assert "lost the connection to node 127.0.0.1" in err
    finally:
        node.wait(timeout=10)


def test_the_client_reads_an_ssh_like_command_line() -> None:
    launch = load_script(LAUNCH, "batchkit_launch")
    parse = launch.parse_client_args
    assert parse(["-x", "-q", "-p", "22", "node-1", "orted", "-mca", "x", "1"]) == (
        "node-1",
        "orted -mca x 1",
    )
    assert parse(["-oBatchMode=yes", "user@10.0.0.7", "hostname"]) == ("10.0.0.7", "hostname")
    with pytest.raises(launch.LaunchError, match="interactive sessions are not supported"):
        parse(["node-1"])
    with pytest.raises(launch.LaunchError, match="usage"):
        parse(["-x"])


def test_the_launcher_environment_names_each_mpis_own_variables(tmp_path: Path) -> None:
    """Open MPI 4 (ORTE) reads OMPI_MCA_plm_rsh_agent; Open MPI 5's PRRTE names its launcher
    component `ssh`, so it reads PRTE_MCA_plm_ssh_agent (src/mca/plm/ssh, registered as
    plm_ssh_agent); MPICH's Hydra reads HYDRA_LAUNCHER, HYDRA_LAUNCHER_EXEC and
    HYDRA_HOST_FILE (`host:slots` lines)."""
    rendezvous = load_script(RENDEZVOUS, "batchkit_rendezvous")
    hostfile = tmp_path / "hosts"
    hostfile.write_text("10.0.0.1 slots=2\n10.0.0.2 slots=3\n")
    client = "/opt/batchkit/bin/batchkit-launch"
    env = rendezvous.launcher_environment(hostfile, 4242, client)
    assert env == {
        "BATCHKIT_LAUNCH_PORT": "4242",
        # Open MPI 4.x
        "OMPI_MCA_plm_rsh_agent": client,
        "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
        "OMPI_MCA_orte_leave_session_attached": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        # Open MPI 5.x (PRRTE)
        "PRTE_MCA_plm_ssh_agent": client,
        "PRTE_MCA_plm_ssh_no_tree_spawn": "1",
        "PRTE_MCA_prte_leave_session_attached": "1",
        # MPICH (Hydra)
        "HYDRA_LAUNCHER": "ssh",
        "HYDRA_LAUNCHER_EXEC": client,
        "HYDRA_HOST_FILE": str(tmp_path / "hosts.hydra"),
    }
    assert "PRTE_MCA_plm_rsh_agent" not in env  # PRRTE has no such variable
    assert (tmp_path / "hosts.hydra").read_text() == "10.0.0.1:2\n10.0.0.2:3\n"


def test_a_nodes_command_runs_with_the_hostfile_and_launcher_of_every_mpi(tmp_path: Path) -> None:
    """batchkit-rendezvous run as a node (one node, with the job's key): the command sees the
    hostfile under each MPI's name and the launcher variables; one the user set is kept."""
    shown = (
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith(('OMPI_MCA_', 'PRTE_MCA_', 'HYDRA_', 'BATCHKIT_'))}))"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "AWS_BATCH_JOB_ID": "job-1#0",
        "AWS_BATCH_JOB_NUM_NODES": "1",
        "AWS_BATCH_JOB_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1",
        "BATCHKIT_RENDEZVOUS_PORT": str(free_port()),
        "BATCHKIT_RENDEZVOUS_TIMEOUT": "20",
        "BATCHKIT_JOB_VCPUS": "2",
        "BATCHKIT_LAUNCH_KEY": KEY,
        "HYDRA_LAUNCHER_EXEC": "/usr/local/bin/my-launcher",  # the user's own: kept
    }
    done = run_script(RENDEZVOUS, "--", sys.executable, "-c", shown, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    hostfile = seen["BATCHKIT_HOSTFILE"]
    assert Path(hostfile).read_text() == "127.0.0.1 slots=2\n"
    assert seen["OMPI_MCA_orte_default_hostfile"] == hostfile
    assert seen["PRTE_MCA_prte_default_hostfile"] == hostfile
    assert Path(seen["HYDRA_HOST_FILE"]).read_text() == "127.0.0.1:2\n"
    client = seen["OMPI_MCA_plm_rsh_agent"]
    assert Path(client).name.startswith("batchkit-launch") and os.access(client, os.X_OK)
    assert seen["PRTE_MCA_plm_ssh_agent"] == client
    assert seen["HYDRA_LAUNCHER"] == "ssh"
    assert seen["HYDRA_LAUNCHER_EXEC"] == "/usr/local/bin/my-launcher"


def test_with_the_key_only_the_jobs_nodes_get_into_the_hostfile(tmp_path: Path) -> None:
    """An announcement without the job's key (someone else on the network) is dropped; the
    rendezvous completes with the real node."""
    from tests.images.test_rendezvous import node_env, start

    port = free_port()
    keyed = {"BATCHKIT_LAUNCH_KEY": KEY, "BATCHKIT_RENDEZVOUS_TIMEOUT": "30"}
    main = start(node_env(tmp_path, 0, 2, port, **keyed), "sh", "-c", 'cat "$BATCHKIT_HOSTFILE"')
    deadline = time.monotonic() + 20
    while True:  # the impostor gets in first
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"BATCHKIT-HELLO 1 127.0.0.99 8\n")
                sock.settimeout(5)
                assert sock.recv(100) == b""  # dropped, no hostfile
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    worker = start(
        node_env(tmp_path, 1, 2, port, BATCHKIT_NODE_ADDRESS="127.0.0.2", **keyed), "true"
    )
    out, err = main.communicate(timeout=60)
    worker.communicate(timeout=60)
    assert main.returncode == 0, err
    assert out == "127.0.0.1 slots=1\n127.0.0.2 slots=1\n"

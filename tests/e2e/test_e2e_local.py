"""End to end: the installed `batchkit` console script (and its awsb* aliases) as a subprocess, on
the real local engine, with a private BATCHKIT_HOME per test."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.local_engine import stop_workers

BIN = Path(sys.executable).parent
SUBMITTED = re.compile(r"^Job ([a-z0-9\-]{36}) \((.+)\) has been submitted\.$")


@pytest.fixture(autouse=True)
def stop_worker(isolated_environment: Path) -> Iterator[None]:
    """The engine's background worker is started by our submissions: stop it afterwards."""
    yield
    stop_workers(isolated_environment)


def run(
    *args: str, tool: str = "batchkit", stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args],
        input=stdin.decode() if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def submit(*args: str, tool: str = "batchkit", stdin: bytes | None = None) -> str:
    proc = run(*(["sub"] if tool == "batchkit" else []), *args, tool=tool, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    match = SUBMITTED.match(proc.stdout.strip())
    assert match, proc.stdout
    return match.group(1)


def stat_json(*ids: str) -> dict[str, dict]:
    proc = run("stat", "--json", *ids)
    assert proc.returncode == 0, proc.stderr
    return {job["jobId"]: job for job in json.loads(proc.stdout)}


def wait(job_id: str) -> dict:
    proc = run("stat", "--json", job_id)
    job = json.loads(proc.stdout)[0]
    if job["status"] not in ("SUCCEEDED", "FAILED"):
        # `sub --wait` is tested below; here we block through the API of the same engine.
        from batchkit.api import connect

        connect("local").wait(job_id, interval=0.2)
        job = stat_json(job_id)[job_id]
    return job


def test_stdin_script_wait_stat_and_out() -> None:
    proc = run("sub", "--wait", "-jn", "hello", stdin=b"echo hello from $AWS_BATCH_JOB_ID\n")

    assert proc.returncode == 0, proc.stderr
    job_id = SUBMITTED.match(proc.stdout.strip()).group(1)
    table = run("stat", "-s", "ALL").stdout.splitlines()
    assert table[0].split() == ["jobId", "jobName", "status", "startedAt", "stoppedAt", "exitCode"]
    assert any(line.split()[:3] == [job_id, "hello", "SUCCEEDED"] for line in table[2:])
    out = run("out", job_id)
    assert out.returncode == 0
    assert out.stdout.strip().endswith(f": hello from {job_id}")
    assert run("out", "--raw", job_id).stdout == f"hello from {job_id}\n"


def test_wait_exit_code_of_a_failed_job() -> None:
    proc = run("sub", "--wait", "sh", "-c", "echo bad; exit 3")

    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    job_id = SUBMITTED.match(proc.stdout.splitlines()[0]).group(1)
    assert stat_json(job_id)[job_id]["exitCode"] == 3


def test_hostile_arguments_and_every_flag_inline(tmp_path: Path) -> None:
    hostile = ["it's", '"q"', "$(touch pwned)", "`x`", "a\nb", "ünï ✓", "", "--json"]
    data = tmp_path / "input.txt"
    data.write_text("staged")
    code = (
        "import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.environ.get('FOO'),"
        " open('input.txt').read()]))"
    )
    env = {**os.environ, "FOO": "it's $(nothing)"}
    proc = subprocess.run(
        [str(BIN / "batchkit"), "sub", "--wait", "-e", "FOO", "-pw", str(tmp_path / "runs"),
         "-if", str(data), sys.executable, "-c", code, *hostile],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    job_id = SUBMITTED.match(proc.stdout.splitlines()[0]).group(1)
    argv, cwd, foo, staged = json.loads(run("out", "--raw", job_id).stdout)
    assert argv == hostile
    assert cwd == str(tmp_path / "runs" / f"job-{job_id}")
    assert foo == "it's $(nothing)"
    assert staged == "staged"
    assert not list(tmp_path.rglob("pwned"))


def test_array_children_output_and_stat_by_id() -> None:
    proc = run("sub", "-a", "3", "--wait", "sh", "-c", "echo child $AWS_BATCH_JOB_ARRAY_INDEX")
    assert proc.returncode == 0, proc.stderr
    job_id = SUBMITTED.match(proc.stdout.splitlines()[0]).group(1)

    ids = [line.split()[0] for line in run("stat", job_id).stdout.splitlines()[2:]]
    assert ids == [job_id, f"{job_id}:0", f"{job_id}:1", f"{job_id}:2"]
    assert run("stat", job_id).stdout.splitlines()[2].startswith(f"{job_id} [3]")
    assert run("out", "--raw", f"{job_id}:1").stdout == "child 1\n"
    assert run("out", "--raw", job_id).stdout.splitlines() == [
        f"[{job_id}:{i}] child {i}" for i in range(3)
    ]


def test_dependency_runs_after_its_parent() -> None:
    first = submit("sh", "-c", "sleep 1; echo first")
    second = submit("-d", f"jobId={first}", "echo", "second")

    done = wait(second)
    before = stat_json(first)[first]
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] >= before["stoppedAt"]


def test_mnp_job_follow_shows_every_node(tmp_path: Path) -> None:
    # As on AWS Batch, the other nodes are stopped when the main node exits: it waits until node
    # 1 has spoken (both nodes share the working directory -w; at most 20 s).
    script = (
        "echo node $AWS_BATCH_JOB_NODE_INDEX of $AWS_BATCH_JOB_NUM_NODES, "
        "$BATCHKIT_JOB_VCPUS vCPU; touch spoke-$AWS_BATCH_JOB_NODE_INDEX; "
        'if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then '
        "for i in $(seq 200); do [ -e spoke-1 ] && break; sleep 0.1; done; fi"
    )
    proc = run("sub", "-n", "2", "-w", str(tmp_path), "--follow", "sh", "-c", script)

    assert proc.returncode == 0, proc.stderr
    job_id = SUBMITTED.match(proc.stdout.splitlines()[0]).group(1)
    lines = sorted(proc.stdout.splitlines()[1:])
    assert [line.split("] ", 1)[0] + "]" for line in lines] == [f"[{job_id}#0]", f"[{job_id}#1]"]
    assert lines[1].endswith(": node 1 of 2, 1 vCPU")
    assert run("stat", job_id).stdout.splitlines()[2].startswith(f"{job_id} *2")


def test_kill_a_running_job() -> None:
    job_id = submit("sleep", "60")

    proc = run("kill", job_id)

    assert proc.returncode == 0, proc.stderr
    assert re.match(
        rf"Your job (cancellation|termination) request for job \({job_id}\)", proc.stdout
    )
    final = wait(job_id)
    assert final["status"] == "FAILED"
    assert final["statusReason"] == "Terminated by the user"
    assert "statusReason             : Terminated by the user" in run("stat", "-d", job_id).stdout
    assert run("kill", job_id).stdout.strip() == f"Job ({job_id}) is already in (FAILED) status."


def test_awsb_aliases() -> None:
    job_id = submit("-jn", "compat", "echo", "via awsbsub", tool="awsbsub")

    wait(job_id)
    assert (
        run(job_id, tool="awsbstat").stdout.splitlines()[0]
        == f"jobId                    : {job_id}"
    )
    assert run(job_id, tool="awsbout").stdout.strip().endswith(": via awsbsub")
    assert "jobQueueName" in run(tool="awsbqueues").stdout
    assert run("--help", tool="awsbkill").stdout.startswith("Usage: awsbkill [OPTIONS]")
    assert run(tool="awsbhosts").returncode == 0


def test_a_command_runs_whatever_the_empty_stdin_ci_or_cron_gives_it() -> None:
    closed = run("sub", "-jn", "closed", "echo", "hi", stdin=b"")  # an empty pipe
    held_open = subprocess.Popen(  # a pipe its writer keeps open and never writes to
        [str(BIN / "batchkit"), "sub", "-jn", "open", "echo", "hi"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert held_open.stdin is not None and held_open.stdout is not None
    try:
        held_open.wait(timeout=60)  # the pipe stays open until it has exited
        stdout = held_open.stdout.read()
    finally:
        held_open.stdin.close()
        held_open.stdout.close()

    assert closed.returncode == 0, closed.stderr
    assert SUBMITTED.match(closed.stdout.strip()).group(2) == "closed"
    assert held_open.returncode == 0
    assert SUBMITTED.match(stdout.strip()).group(2) == "open"
    piped = run("sub", "echo", "hi", stdin=b"date\n")
    assert piped.returncode == 2
    assert piped.stderr.startswith("error: a command was given and a script is waiting on stdin")


def test_a_while_read_loop_keeps_its_input(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text('echo "$1"\n')
    (tmp_path / "words").write_text("alpha\nbeta\ngamma\n")
    loop = 'while read -r word; do "$0" sub -jn "w-$word" -cf run.sh "$word"; done < words'

    proc = subprocess.run(
        ["sh", "-c", loop, str(BIN / "batchkit")],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    names = [SUBMITTED.match(line).group(2) for line in proc.stdout.splitlines()]
    assert names == ["w-alpha", "w-beta", "w-gamma"]


def test_usage_errors_exit_2_before_anything_is_submitted(isolated_environment: Path) -> None:
    proc = run("sub", "-a", "1", "true")

    assert proc.returncode == 2
    assert proc.stderr.startswith("error: -a/--array-size")
    assert "Traceback" not in proc.stderr
    assert not (isolated_environment / "s3").exists()


def test_foreground_worker_runs_jobs_and_leaves_when_idle(isolated_environment: Path) -> None:
    worker = subprocess.Popen(
        [str(BIN / "batchkit"), "local", "worker", "--idle-exit", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from batchkit.providers.local.worker import worker_pid

        for _ in range(100):  # until it holds the home's lock
            if worker_pid(isolated_environment) == worker.pid:
                break
            subprocess.run(["sleep", "0.05"])
        assert worker_pid(isolated_environment) == worker.pid  # so no other worker is spawned
        job_id = submit("echo", "served")
        assert wait(job_id)["status"] == "SUCCEEDED"
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker_pid(isolated_environment) is None


def test_a_fresh_engine_after_a_job_with_env_is_private_to_its_owner(
    isolated_environment: Path,
) -> None:
    """$BATCHKIT_HOME 0700; the database and the staged `-e` file (a secret the user named) are
    0600, their folder 0700: no other local user can read them or drop a file there. Nothing
    batchkit makes under the home is readable by group or others either (logs/, work/, s3/,
    worker.log, worker.lock: 0700 and 0600). What the job itself makes in its working directory
    (`attempt-N/`, 0700) keeps the job's umask, as on AWS: that includes the `job-<id>` folder
    the job's wrapper makes and runs in. The Docker executor needs no looser mode: containers
    reach the job's folders through bind mounts, and run as their owner (see docker_executor)."""
    os.environ["MY_API_KEY"] = "s3cr3t"
    try:
        proc = run(
            "sub", "-e", "MY_API_KEY", "--wait", "sh", "-c",
            'test "$MY_API_KEY" = s3cr3t && echo made-by-the-job > out.txt && echo done',
        )  # fmt: skip
    finally:
        del os.environ["MY_API_KEY"]
    assert proc.returncode == 0, proc.stderr
    home = isolated_environment

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(home) == 0o700
    databases = [home / "engine.db", *home.glob("engine.db-*")]
    assert len(databases) >= 2 and {mode(p) for p in databases} == {0o600}
    [env_file] = (home / "s3").rglob("*.env.sh")
    assert mode(env_file) == 0o600 and mode(env_file.parent) == 0o700
    assert mode(home / "s3") == 0o700
    writable_by_others = [
        p for p in home.rglob("*") if p.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ]
    assert writable_by_others == []
    attempts = list((home / "work").glob("*/attempt-*/"))
    assert attempts and {mode(a) for a in attempts} == {0o700}
    made_by_the_job = {p for a in attempts for p in a.rglob("*")}
    assert any(p.name == "out.txt" for p in made_by_the_job)
    readable_by_others = [
        p.relative_to(home)
        for p in home.rglob("*")
        if p not in made_by_the_job and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ]
    assert readable_by_others == []
    for made in ("logs", "work", "worker.log", "worker.lock"):
        assert mode(home / made) == (0o700 if (home / made).is_dir() else 0o600), made

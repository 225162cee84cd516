"""The local scheduler, pass by pass: the Batch state machine, arrays, dependencies, capacity,
retries, timeouts, termination and multi-node gangs, with real processes and a fake clock."""

from __future__ import annotations

import itertools
import socket
import sqlite3
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from batchkit.models import Dependency, DependencyType, JobStatus, Resources
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.executor import LogSink, Run, RunSpec
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.scheduler import (
    DEPENDENCY_FAILED,
    ESSENTIAL_EXITED,
    NODE_STOPPED,
    TIMEOUT_REASON,
    Scheduler,
    process_only_selector,
)
from tests.fixtures.local_engine import PYTHON, Engine, pid_alive, request, sh, wait_until

S = JobStatus


def test_single_job_goes_submitted_runnable_starting_running_succeeded(
    engine: Engine, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = engine.submit(sh(f"echo started; while [ ! -e {gate} ]; do sleep 0.01; done; echo done"))
    assert job.status is S.SUBMITTED
    assert job.created_at == engine.clock.now

    engine.clock.advance(1)
    engine.scheduler.tick()
    running = engine.job(job.job_id)
    assert running.status is S.RUNNING
    assert running.started_at == engine.clock.now
    assert running.stopped_at is None
    assert running.log_stream is not None and ":" not in running.log_stream
    assert running.log_stream.startswith("batchkit-local/default/")

    gate.touch()
    engine.clock.advance(1)
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED
    assert done.exit_code == 0
    assert done.status_reason == ESSENTIAL_EXITED
    assert done.stopped_at == engine.clock.now
    assert len(done.attempts) == 1
    assert done.attempts[0].exit_code == 0
    assert engine.log(done) == ["started", "done"]


def test_the_store_shows_starting_while_the_executor_starts_the_attempt(engine: Engine) -> None:
    seen: list[JobStatus] = []
    real = ProcessExecutor(clock=engine.clock)

    class Recording:
        name = "recording"

        def start(self, spec: RunSpec, log: LogSink) -> Run:
            seen.append(engine.status(spec.job_id))
            return real.start(spec, log)

        def reap_orphan(self, identity: Mapping[str, Any]) -> None:
            real.reap_orphan(identity)

    scheduler = Scheduler(
        engine.home,
        capacity=Capacity(2, 4096),
        clock=engine.clock,
        selector=lambda image, preference: (Recording(), None),
    )
    job = engine.submit(sh("true"))
    wait_until(lambda: not scheduler.tick(), what="the job to end")
    assert seen == [S.STARTING]
    assert engine.status(job.job_id) is S.SUCCEEDED


def test_failing_command_fails_with_its_exit_code(engine: Engine) -> None:
    job = engine.submit(sh("echo oops >&2; exit 3"))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.FAILED
    assert done.exit_code == 3
    assert done.status_reason == ESSENTIAL_EXITED
    assert engine.log(done) == ["oops"]


def test_missing_program_fails_the_attempt_with_a_reason(engine: Engine) -> None:
    job = engine.submit(request(["/nonexistent/program"]))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.FAILED
    assert done.status_reason is not None
    assert done.status_reason.startswith("CannotStartContainerError")


def test_job_with_a_dependency_waits_pending_then_runs(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    first = engine.submit(sh(f"while [ ! -e {gate} ]; do sleep 0.01; done"))
    second = engine.submit(sh("echo second", depends_on=(Dependency(first.job_id),)))
    engine.scheduler.tick()
    assert engine.status(first.job_id) is S.RUNNING
    assert engine.status(second.job_id) is S.PENDING
    gate.touch()
    a, b = engine.settle(first.job_id, second.job_id)
    assert (a.status, b.status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert b.started_at is not None and a.stopped_at is not None
    assert engine.log(b) == ["second"]


def test_failed_dependency_fails_the_dependant(engine: Engine) -> None:
    first = engine.submit(sh("exit 1"))
    second = engine.submit(sh("echo never", depends_on=(Dependency(first.job_id),)))
    third = engine.submit(sh("echo never", depends_on=(Dependency(second.job_id),)))
    a, b, c = engine.settle(first.job_id, second.job_id, third.job_id)
    assert a.status is S.FAILED
    assert (b.status, b.status_reason) == (S.FAILED, DEPENDENCY_FAILED)
    assert (c.status, c.status_reason) == (S.FAILED, DEPENDENCY_FAILED)
    assert b.log_stream is None and b.attempts == []


def test_array_children_see_their_index_and_the_parent_is_derived(
    engine: Engine, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = f"""
        echo "$AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ARRAY_INDEX"
        while [ ! -e {gate} ]; do sleep 0.01; done
        [ "$AWS_BATCH_JOB_ARRAY_INDEX" != 2 ]
    """
    parent = engine.submit(sh(script, array_size=4))
    assert parent.status is S.SUBMITTED
    assert parent.array_size == 4
    engine.scheduler.tick()
    running = engine.job(parent.job_id)
    assert running.status is S.PENDING
    assert running.status_summary["RUNNING"] == 2
    assert running.status_summary["RUNNABLE"] == 2
    gate.touch()
    (done,) = engine.settle(parent.job_id)
    assert done.status is S.FAILED
    assert done.status_summary == {
        "SUBMITTED": 0,
        "PENDING": 0,
        "RUNNABLE": 0,
        "STARTING": 0,
        "RUNNING": 0,
        "SUCCEEDED": 3,
        "FAILED": 1,
    }
    children = engine.provider.list_children(done)
    assert [c.job_id for c in children] == [f"{parent.job_id}:{i}" for i in range(4)]
    assert [c.status for c in children] == [S.SUCCEEDED, S.SUCCEEDED, S.FAILED, S.SUCCEEDED]
    assert engine.log(children[3]) == [f"{parent.job_id}:3 3"]
    assert done.log_stream is None


def test_array_parent_succeeds_only_when_every_child_succeeds(engine: Engine) -> None:
    parent = engine.submit(sh("true", array_size=3))
    (done,) = engine.settle(parent.job_id)
    assert done.status is S.SUCCEEDED
    assert done.status_summary["SUCCEEDED"] == 3
    assert done.started_at is not None and done.stopped_at is not None


def test_n_to_n_children_wait_for_their_counterpart(engine: Engine, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    first = engine.submit(
        sh(
            f"[ $AWS_BATCH_JOB_ARRAY_INDEX != 1 ] && touch {marks}/a$AWS_BATCH_JOB_ARRAY_INDEX",
            array_size=3,
        )
    )
    second = engine.submit(
        sh(
            f"test -e {marks}/a$AWS_BATCH_JOB_ARRAY_INDEX",
            array_size=3,
            depends_on=(Dependency(first.job_id, DependencyType.N_TO_N),),
        )
    )
    a, b = engine.settle(first.job_id, second.job_id)
    assert a.status is S.FAILED
    children = engine.provider.list_children(b)
    assert [c.status for c in children] == [S.SUCCEEDED, S.FAILED, S.SUCCEEDED]
    assert children[1].status_reason == DEPENDENCY_FAILED
    assert children[0].exit_code == 0 and children[2].exit_code == 0


def test_sequential_children_run_one_after_another(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "order"
    job = engine.submit(
        sh(
            f"echo $AWS_BATCH_JOB_ARRAY_INDEX >> {out}",
            array_size=4,
            depends_on=(Dependency(None, DependencyType.SEQUENTIAL),),
        )
    )
    engine.scheduler.tick()
    summary = engine.job(job.job_id).status_summary
    assert summary["RUNNING"] == 1 and summary["PENDING"] == 3
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED
    assert out.read_text().split() == ["0", "1", "2", "3"]
    children = engine.provider.list_children(done)
    for before, after in itertools.pairwise(children):
        assert before.stopped_at is not None and after.started_at is not None
        assert after.started_at >= before.stopped_at


def test_sequential_array_stops_at_the_first_failed_child(engine: Engine) -> None:
    job = engine.submit(
        sh(
            "[ $AWS_BATCH_JOB_ARRAY_INDEX != 1 ]",
            array_size=3,
            depends_on=(Dependency(None, DependencyType.SEQUENTIAL),),
        )
    )
    (done,) = engine.settle(job.job_id)
    children = engine.provider.list_children(done)
    assert [c.status for c in children] == [S.SUCCEEDED, S.FAILED, S.FAILED]
    assert children[2].status_reason == DEPENDENCY_FAILED
    assert done.status is S.FAILED


def test_a_job_depending_on_an_array_waits_for_every_child(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "count"
    array = engine.submit(sh(f"echo x >> {out}", array_size=3))
    after = engine.submit(sh(f"wc -l < {out}", depends_on=(Dependency(array.job_id),)))
    a, b = engine.settle(array.job_id, after.job_id)
    assert (a.status, b.status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert engine.log(b) == ["3"]


def test_a_job_depending_on_a_failed_array_fails(engine: Engine) -> None:
    array = engine.submit(sh("[ $AWS_BATCH_JOB_ARRAY_INDEX != 0 ]", array_size=2))
    after = engine.submit(sh("true", depends_on=(Dependency(array.job_id),)))
    _, b = engine.settle(array.job_id, after.job_id)
    assert (b.status, b.status_reason) == (S.FAILED, DEPENDENCY_FAILED)


def test_two_2_vcpu_jobs_on_a_2_vcpu_engine_run_one_after_another(
    engine: Engine, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wide = Resources(vcpus=2, memory=256)
    first = engine.submit(sh(f"while [ ! -e {gate} ]; do sleep 0.01; done", resources=wide))
    second = engine.submit(sh("true", resources=wide))
    engine.scheduler.tick()
    engine.scheduler.tick()
    assert engine.status(first.job_id) is S.RUNNING
    assert engine.status(second.job_id) is S.RUNNABLE
    host = engine.provider.hosts()[0]
    assert host.running_jobs == 1 and host.pending_jobs == 1
    gate.touch()
    a, b = engine.settle(first.job_id, second.job_id)
    assert b.started_at is not None and a.stopped_at is not None
    assert b.started_at >= a.stopped_at
    assert (a.status, b.status) == (S.SUCCEEDED, S.SUCCEEDED)


def test_small_jobs_fill_the_gaps_a_large_one_leaves(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    hold = f"while [ ! -e {gate} ]; do sleep 0.01; done"
    one = Resources(vcpus=1, memory=128)
    running = engine.submit(sh(hold, resources=one))
    wide = engine.submit(sh("true", resources=Resources(vcpus=2, memory=128)))
    small = engine.submit(sh(hold, resources=one))
    engine.scheduler.tick()
    assert [engine.status(j.job_id) for j in (running, wide, small)] == [
        S.RUNNING,
        S.RUNNABLE,
        S.RUNNING,
    ]
    gate.touch()
    engine.settle(running.job_id, wide.job_id, small.job_id)


def test_a_job_that_can_never_fit_fails_with_a_clear_reason(engine: Engine) -> None:
    job = engine.submit(sh("true", resources=Resources(vcpus=4, memory=128)))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.FAILED
    assert done.status_reason is not None
    assert "needs 4 vCPUs" in done.status_reason
    assert "has only 2 vCPUs" in done.status_reason
    gpu = engine.submit(sh("true", resources=Resources(vcpus=1, memory=128, gpus=1)))
    (done,) = engine.settle(gpu.job_id)
    assert done.status is S.FAILED and "1 GPUs" in (done.status_reason or "")


def test_retries_give_each_attempt_its_own_stream(engine: Engine, tmp_path: Path) -> None:
    script = 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" -ge 3 ]'
    job = engine.submit(sh(script, retry_attempts=3))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED
    assert [a.exit_code for a in done.attempts] == [1, 1, 0]
    streams = [a.log_stream for a in done.attempts]
    assert len(set(streams)) == 3
    assert done.log_stream == streams[-1]
    for number, stream in enumerate(streams, start=1):
        assert stream is not None
        events = engine.provider.get_log_events(stream).events
        assert [e.message for e in events] == [f"attempt {number}"]


def test_retries_stop_after_the_last_attempt(engine: Engine) -> None:
    job = engine.submit(sh("exit 7", retry_attempts=2))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.FAILED
    assert done.exit_code == 7
    assert len(done.attempts) == 2


def test_timeout_kills_the_process_group_with_batchs_reason(engine: Engine, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job = engine.submit(sh(f"sleep 300 & echo $! > {pids}; echo $$ >> {pids}; wait", timeout=60))
    engine.scheduler.tick()
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2, what="pids")
    child, shell = (int(p) for p in pids.read_text().split())
    engine.clock.advance(59)
    engine.scheduler.tick()
    assert engine.status(job.job_id) is S.RUNNING
    engine.clock.advance(2)
    engine.scheduler.tick()
    done = engine.job(job.job_id)
    assert done.status is S.FAILED
    assert done.status_reason == TIMEOUT_REASON
    assert done.attempts[0].status_reason == TIMEOUT_REASON
    wait_until(lambda: not pid_alive(child) and not pid_alive(shell), 30, "group killed")


def test_a_timed_out_attempt_is_retried(engine: Engine) -> None:
    job = engine.submit(
        sh('[ "$AWS_BATCH_JOB_ATTEMPT" = 2 ] || exec sleep 300', timeout=60, retry_attempts=2)
    )
    engine.scheduler.tick()
    engine.clock.advance(61)
    engine.scheduler.tick()
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED
    assert [a.status_reason for a in done.attempts] == [TIMEOUT_REASON, ESSENTIAL_EXITED]


def test_terminate_a_runnable_job(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wide = Resources(vcpus=2, memory=128)
    blocker = engine.submit(sh(f"while [ ! -e {gate} ]; do sleep 0.01; done", resources=wide))
    waiting = engine.submit(sh("echo never", resources=wide))
    engine.scheduler.tick()
    assert engine.status(waiting.job_id) is S.RUNNABLE
    engine.provider.terminate_job(waiting.job_id, "Terminated by the user")
    engine.scheduler.tick()
    done = engine.job(waiting.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, "Terminated by the user")
    assert done.log_stream is None
    gate.touch()
    engine.settle(blocker.job_id)


def test_terminate_a_pending_job(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    first = engine.submit(sh(f"while [ ! -e {gate} ]; do sleep 0.01; done"))
    second = engine.submit(sh("true", depends_on=(Dependency(first.job_id),)))
    engine.scheduler.tick()
    assert engine.status(second.job_id) is S.PENDING
    engine.provider.terminate_job(second.job_id, "no longer needed")
    engine.scheduler.tick()
    assert engine.job(second.job_id).status_reason == "no longer needed"
    gate.touch()
    engine.settle(first.job_id)


def test_terminate_a_running_job_kills_its_group(engine: Engine, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job = engine.submit(sh(f"sleep 300 & echo $! > {pids}; wait", retry_attempts=3))
    engine.scheduler.tick()
    wait_until(lambda: pids.exists() and pids.read_text().strip() != "", what="pid file")
    child = int(pids.read_text())
    engine.provider.terminate_job(job.job_id, "Terminated by the user")
    engine.scheduler.tick()
    done = engine.job(job.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, "Terminated by the user")
    assert len(done.attempts) == 1, "a terminated job is not retried"
    wait_until(lambda: not pid_alive(child), 30, "child killed")


def test_terminate_an_array_parent_applies_to_every_child(engine: Engine) -> None:
    parent = engine.submit(sh("sleep 300", array_size=5))
    engine.scheduler.tick()
    engine.provider.terminate_job(parent.job_id, "stop it all")
    engine.scheduler.tick()
    done = engine.job(parent.job_id)
    assert done.status is S.FAILED
    assert done.status_reason == "stop it all"
    children = engine.provider.list_children(done)
    assert {c.status for c in children} == {S.FAILED}
    assert {c.status_reason for c in children} == {"stop it all"}


def test_terminate_a_finished_job_is_a_no_op(engine: Engine) -> None:
    job = engine.submit(sh("true"))
    engine.settle(job.job_id)
    engine.provider.terminate_job(job.job_id, "too late")
    engine.scheduler.tick()
    assert engine.job(job.job_id).status is S.SUCCEEDED


MNP_NODE = textwrap.dedent(
    """
    import os, socket, sys, time
    index = int(os.environ["AWS_BATCH_JOB_NODE_INDEX"])
    nodes = int(os.environ["AWS_BATCH_JOB_NUM_NODES"])
    main = int(os.environ["AWS_BATCH_JOB_MAIN_NODE_INDEX"])
    address = os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"]
    port = int(os.environ["RENDEZVOUS_PORT"])
    if index == main:
        server = socket.create_server((address, port))
        seen = []
        while len(seen) < nodes - 1:
            conn, _ = server.accept()
            seen.append(conn.recv(100).decode())
            conn.close()
        print("main saw", " ".join(sorted(seen)), flush=True)
        sys.exit(int(os.environ.get("MAIN_EXIT", "0")))
    deadline = time.time() + 20
    while True:
        try:
            with socket.create_connection((address, port), timeout=1) as conn:
                conn.sendall(os.environ["AWS_BATCH_JOB_ID"].encode())
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
    print("worker", index, "connected", flush=True)
    time.sleep(300)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("main_exit", [0, 3])
def test_multinode_nodes_rendezvous_and_the_main_node_decides(
    engine: Engine, main_exit: int
) -> None:
    job = engine.submit(
        request(
            [PYTHON, "-c", MNP_NODE],
            nodes=3,
            resources=Resources(vcpus=0.5, memory=128),
            environment={"RENDEZVOUS_PORT": str(_free_port()), "MAIN_EXIT": str(main_exit)},
        )
    )
    assert job.nodes == 3
    assert job.job_definition.startswith("batchkit-local-mnp")
    engine.scheduler.tick()
    nodes = engine.provider.list_children(engine.job(job.job_id))
    assert [n.job_id for n in nodes] == [f"{job.job_id}#{i}" for i in range(3)]
    assert {n.status for n in nodes} == {S.RUNNING}, "all nodes start together"
    (done,) = engine.settle(job.job_id, timeout=20)
    nodes = engine.provider.list_children(done)
    main, *others = nodes
    assert engine.log(main) == [f"main saw {job.job_id}#1 {job.job_id}#2"]
    for node in others:
        assert engine.log(node) == [f"worker {node.job_id[-1]} connected"]
        assert node.status_reason == NODE_STOPPED
    expected = S.SUCCEEDED if main_exit == 0 else S.FAILED
    assert done.status is expected
    assert done.exit_code == main_exit
    assert main.status is expected and main.exit_code == main_exit
    assert {n.status for n in others} == {expected}


def test_multinode_job_waits_for_room_for_every_node(engine: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    blocker = engine.submit(
        sh(f"while [ ! -e {gate} ]; do sleep 0.01; done", resources=Resources(1, 128))
    )
    gang = engine.submit(sh("true", nodes=2, resources=Resources(1, 128)))
    engine.scheduler.tick()
    engine.scheduler.tick()
    assert engine.status(gang.job_id) is S.RUNNABLE
    nodes = engine.provider.list_children(engine.job(gang.job_id))
    assert {n.status for n in nodes} == {S.RUNNABLE}
    gate.touch()
    _, done = engine.settle(blocker.job_id, gang.job_id)
    assert done.status is S.SUCCEEDED


def test_multinode_job_that_can_never_fit_fails(engine: Engine) -> None:
    gang = engine.submit(sh("true", nodes=3, resources=Resources(1, 128)))
    (done,) = engine.settle(gang.job_id)
    assert done.status is S.FAILED
    assert "needs 3 vCPUs" in (done.status_reason or "")
    nodes = engine.provider.list_children(done)
    assert {n.status for n in nodes} == {S.FAILED}


@pytest.mark.parametrize("lost_records", [False, True])
def test_a_new_scheduler_reaps_and_fails_the_attempts_of_a_dead_one(
    engine: Engine, tmp_path: Path, lost_records: bool
) -> None:
    pid_file = tmp_path / "pid"
    job = engine.submit(sh(f"echo $$ > {pid_file}; exec sleep 300"))
    engine.scheduler.tick()
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="start")
    job_pid = int(pid_file.read_text())
    if lost_records:  # the worker died after starting the process, before recording it
        with sqlite3.connect(engine.home / "engine.db") as db:
            db.execute("DELETE FROM attempts")
    # The first scheduler is abandoned as a crash would leave it: no shutdown.
    engine.scheduler = Scheduler(
        engine.home, capacity=Capacity(2, 4096), clock=engine.clock, selector=process_only_selector
    )
    engine.scheduler.recover("the worker died")
    done = engine.job(job.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, "the worker died")
    assert [a.status_reason for a in done.attempts] == ["the worker died"]
    wait_until(lambda: not pid_alive(job_pid), 30, "orphan reaped")


def test_a_failed_multinode_attempt_retries_the_whole_gang(engine: Engine) -> None:
    script = '[ "$AWS_BATCH_JOB_NODE_INDEX" != 0 ] || [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ]'
    gang = engine.submit(sh(script, nodes=2, retry_attempts=2, resources=Resources(1, 128)))
    (done,) = engine.settle(gang.job_id)
    assert done.status is S.SUCCEEDED
    assert [a.exit_code for a in done.attempts] == [1, 0]
    nodes = engine.provider.list_children(done)
    assert [len(n.attempts) for n in nodes] == [2, 2]
    assert len({a.log_stream for n in nodes for a in n.attempts}) == 4


def test_terminating_one_node_terminates_the_multinode_job(engine: Engine) -> None:
    gang = engine.submit(sh("sleep 300", nodes=2, resources=Resources(1, 128)))
    engine.scheduler.tick()
    engine.provider.terminate_job(f"{gang.job_id}#1", "stop the gang")
    engine.scheduler.tick()
    done = engine.job(gang.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, "stop the gang")
    nodes = engine.provider.list_children(done)
    assert {(n.status, n.status_reason) for n in nodes} == {(S.FAILED, "stop the gang")}


def test_a_multinode_attempt_times_out_as_a_whole(engine: Engine) -> None:
    gang = engine.submit(sh("sleep 300", nodes=2, timeout=60, resources=Resources(1, 128)))
    engine.scheduler.tick()
    engine.clock.advance(61)
    engine.scheduler.tick()
    done = engine.job(gang.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, TIMEOUT_REASON)
    nodes = engine.provider.list_children(done)
    assert {n.status_reason for n in nodes} == {TIMEOUT_REASON}


def test_a_dependant_waits_for_the_last_attempt_of_a_retried_job(
    engine: Engine, tmp_path: Path
) -> None:
    first = engine.submit(sh('[ "$AWS_BATCH_JOB_ATTEMPT" = 2 ]', retry_attempts=2))
    after = engine.submit(sh("true", depends_on=(Dependency(first.job_id),)))
    a, b = engine.settle(first.job_id, after.job_id)
    assert (a.status, b.status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert len(a.attempts) == 2
    assert b.started_at is not None and a.stopped_at is not None
    assert b.started_at >= a.stopped_at


def test_an_image_job_without_docker_runs_as_a_process_and_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = engine.submit(sh(f"while [ ! -e {gate} ]; do sleep 0.01; done", image="python:3.12-slim"))
    engine.scheduler.tick()
    running = engine.job(job.job_id)
    assert running.status is S.RUNNING
    assert "runs as a local process" in (running.status_reason or "")
    gate.touch()
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED


def test_a_job_that_insists_on_docker_fails_without_it(engine: Engine) -> None:
    job = engine.submit(sh("true", image="busybox", tags={"batchkit:executor": "docker"}))
    (done,) = engine.settle(job.job_id)
    assert done.status is S.FAILED
    assert "Docker executor" in (done.status_reason or "")
    assert "to fix: submit with the process executor" in (done.status_reason or "")


def test_an_attempt_the_executor_loses_fails_with_a_reason(engine: Engine) -> None:
    class Broken:
        def poll(self) -> int | None:
            raise OSError("engine went away")

        def kill(self) -> None:
            raise OSError("engine went away")

        def identity(self) -> dict[str, Any]:
            return {}

    class Flaky:
        name = "flaky"

        def start(self, spec: RunSpec, log: LogSink) -> Run:
            return Broken()

        def reap_orphan(self, identity: Mapping[str, Any]) -> None:
            raise OSError("engine went away")

    engine.scheduler = Scheduler(
        engine.home,
        capacity=Capacity(2, 4096),
        clock=engine.clock,
        selector=lambda image, preference: (Flaky(), None),
    )
    job = engine.submit(sh("true"))
    engine.scheduler.tick()
    engine.scheduler.tick()
    done = engine.job(job.job_id)
    assert done.status is S.FAILED
    assert "lost track of the attempt: engine went away" in (done.status_reason or "")


def test_a_termination_requested_while_no_worker_ran_is_applied_by_the_next(
    engine: Engine,
) -> None:
    job = engine.submit(sh("true"))
    engine.provider.terminate_job(job.job_id, "changed my mind")
    fresh = Scheduler(
        engine.home, capacity=Capacity(2, 4096), clock=engine.clock, selector=process_only_selector
    )
    fresh.tick()
    done = engine.job(job.job_id)
    assert (done.status, done.status_reason) == (S.FAILED, "changed my mind")

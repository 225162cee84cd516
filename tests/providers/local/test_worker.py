"""The background worker: spawned on demand, one per home, idle exit, crash recovery, and many
submitting processes at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from batchkit.models import JobStatus
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import WorkerBusyError, WorkerLock, main, serve, worker_pid
from tests.fixtures.local_engine import pid_alive, sh, stop_workers, wait_until

S = JobStatus
MakeProvider = Callable[..., LocalProvider]


def _wait_final(provider: LocalProvider, job_id: str, timeout: float = 15.0) -> None:
    wait_until(
        lambda: provider.describe_jobs([job_id])[0].status.is_final, timeout, f"{job_id} final"
    )


def test_submit_returns_at_once_and_a_background_worker_runs_the_job(
    background_provider: MakeProvider, isolated_environment: Path
) -> None:
    provider = background_provider()
    job = provider.submit(sh("echo hello from $AWS_BATCH_JOB_ID"))
    assert job.status is S.SUBMITTED
    assert len(provider.spawned) == 1
    _wait_final(provider, job.job_id)
    (done,) = provider.describe_jobs([job.job_id])
    assert done.status is S.SUCCEEDED
    assert done.log_stream is not None
    events = provider.get_log_events(done.log_stream).events
    assert [e.message for e in events] == [f"hello from {job.job_id}"]
    assert worker_pid(isolated_environment) == provider.spawned[0].pid


def test_a_relative_batchkit_home_is_served_by_its_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker runs inside the home: given the relative path, it used to serve <home>/<home>
    # and the job stayed SUBMITTED forever.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BATCHKIT_HOME", "relative-home")
    provider = LocalProvider(idle_exit=30, capacity=Capacity(2, 4096))
    assert provider.home == tmp_path / "relative-home"
    try:
        job = provider.submit(sh("true"))
        _wait_final(provider, job.job_id)
    finally:
        stop_workers(provider.home, [provider])
    assert provider.describe_jobs([job.job_id])[0].status is S.SUCCEEDED
    assert not (tmp_path / "relative-home" / "relative-home").exists()


def test_a_second_submit_reuses_the_running_worker(background_provider: MakeProvider) -> None:
    provider = background_provider()
    first = provider.submit(sh("true"))
    wait_until(lambda: worker_pid(provider.home) is not None, what="worker lock")
    second = provider.submit(sh("true"))
    assert len(provider.spawned) == 1
    _wait_final(provider, first.job_id)
    _wait_final(provider, second.job_id)


def test_the_spawned_worker_exits_when_idle(background_provider: MakeProvider) -> None:
    provider = background_provider(idle_exit=0.3)
    job = provider.submit(sh("true"))
    _wait_final(provider, job.job_id)
    (worker,) = provider.spawned
    worker.wait(timeout=10)
    assert worker.returncode == 0
    assert worker_pid(provider.home) is None
    # The next submission brings a new worker up.
    again = provider.submit(sh("true"))
    assert len(provider.spawned) == 2
    _wait_final(provider, again.job_id)


def test_only_one_worker_serves_a_home(isolated_environment: Path) -> None:
    held = WorkerLock(isolated_environment / "worker.lock")
    assert held.acquire()
    try:
        # A second worker gives up (after its short wait) instead of serving the same home.
        with pytest.raises(WorkerBusyError) as caught:
            serve(isolated_environment, idle_exit=None)
        assert caught.value.pid == os.getpid()
        assert f"pid {os.getpid()}" in str(caught.value)
        assert worker_pid(isolated_environment) == os.getpid()
        # The background worker's entry point takes that quietly.
        assert main(["--home", str(isolated_environment), "--idle-exit", "1"]) == 0
    finally:
        held.release()
    assert worker_pid(isolated_environment) is None


def test_foreground_worker_serves_until_stopped(isolated_environment: Path) -> None:
    provider = LocalProvider(isolated_environment, start_worker=False)
    job = provider.submit(sh("echo fg"))
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(isolated_environment,),
        kwargs={"idle_exit": None, "stop": stop, "capacity": Capacity(2, 1024)},
    )
    thread.start()
    try:
        _wait_final(provider, job.job_id)
        assert provider.describe_jobs([job.job_id])[0].status is S.SUCCEEDED
        assert provider.hosts()[0].registered_vcpus == 2
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_stopping_the_worker_fails_the_running_job_with_a_reason(
    isolated_environment: Path, tmp_path: Path
) -> None:
    provider = LocalProvider(isolated_environment, start_worker=False)
    pid_file = tmp_path / "pid"
    job = provider.submit(sh(f"echo $$ > {pid_file}; exec sleep 300"))
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(isolated_environment,), kwargs={"idle_exit": None, "stop": stop}
    )
    thread.start()
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    finally:
        stop.set()
        thread.join(timeout=10)
    (done,) = provider.describe_jobs([job.job_id])
    assert done.status is S.FAILED
    assert "was stopped while the job ran" in (done.status_reason or "")
    wait_until(lambda: not pid_alive(int(pid_file.read_text())), 30, "job process gone")


def _kill_worker_while_running(
    provider: LocalProvider, pid_file: Path, job_id: str
) -> tuple[int, int]:
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 15, "job start")
    job_pid = int(pid_file.read_text())
    wait_until(lambda: provider.describe_jobs([job_id])[0].status is S.RUNNING, 30, "RUNNING")
    (worker,) = provider.spawned
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=5)
    assert pid_alive(job_pid), "the job outlives its worker until the next worker reaps it"
    return worker.pid, job_pid


def test_kill_9_of_the_worker_then_a_new_worker_fails_the_attempt_and_reaps_it(
    background_provider: MakeProvider, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    provider = background_provider()
    job = provider.submit(sh(f"sleep 300 & echo $! > {pid_file}; wait"))
    _, job_pid = _kill_worker_while_running(provider, pid_file, job.job_id)
    # The next call that finds unfinished work and no worker brings one up; it recovers.
    provider.describe_jobs([job.job_id])
    assert len(provider.spawned) == 2
    _wait_final(provider, job.job_id)
    (done,) = provider.describe_jobs([job.job_id])
    assert done.status is S.FAILED
    assert "stopped unexpectedly" in (done.status_reason or "")
    assert done.attempts[0].status_reason == done.status_reason
    wait_until(lambda: not pid_alive(job_pid), 30, "orphaned process killed")


def test_kill_9_of_the_worker_retries_the_attempt_when_attempts_remain(
    background_provider: MakeProvider, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    provider = background_provider()
    script = f'echo $$ > {pid_file}; [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ] || exec sleep 300'
    job = provider.submit(sh(script, retry_attempts=2))
    _, job_pid = _kill_worker_while_running(provider, pid_file, job.job_id)
    pid_file.unlink()
    provider.submit(sh("true"))  # a submit notices the dead worker too
    _wait_final(provider, job.job_id)
    (done,) = provider.describe_jobs([job.job_id])
    assert done.status is S.SUCCEEDED
    assert len(done.attempts) == 2
    assert "stopped unexpectedly" in (done.attempts[0].status_reason or "")
    assert not pid_alive(job_pid)


def _submit_one(home: str, index: int, out: multiprocessing.Queue[str]) -> None:
    provider = LocalProvider(Path(home), idle_exit=30, capacity=Capacity(2, 4096))
    job = provider.submit(sh(f"echo submitter {index}", name=f"job-{index}"))
    out.put(job.job_id)


def test_twenty_concurrent_submitters_get_twenty_jobs_that_all_complete(
    background_provider: MakeProvider, isolated_environment: Path
) -> None:
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[str] = context.Queue()
    processes = [
        context.Process(target=_submit_one, args=(str(isolated_environment), i, out))
        for i in range(20)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    ids = [out.get(timeout=5) for _ in processes]
    assert len(set(ids)) == 20
    provider = background_provider()
    wait_until(
        lambda: all(j.status.is_final for j in provider.describe_jobs(ids)), 30, "all 20 final"
    )
    jobs = provider.describe_jobs(ids)
    assert {j.status for j in jobs} == {S.SUCCEEDED}
    assert sorted(j.name for j in jobs) == sorted(f"job-{i}" for i in range(20))
    listed = provider.list_jobs([S.SUCCEEDED])
    assert {j.job_id for j in listed} == set(ids)


def test_a_worker_on_a_new_home_makes_it_and_its_parents_private(tmp_path: Path) -> None:
    """`batchkit local worker` takes its lock before it opens the store: the lock makes the
    home, 0700 like the store would (it was mkdir's 0755, parents too)."""
    import stat

    from batchkit.providers.local.worker import WorkerLock

    home = tmp_path / "new" / "home"
    lock = WorkerLock(home / "worker.lock")
    assert lock.acquire()
    lock.release()

    for folder in (home, home.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

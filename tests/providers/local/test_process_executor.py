"""The process executor: exact argv, own working directory and process group, output pumped as
events, exit codes as a container runtime reports them, and orphan reaping that survives pid
reuse."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from batchkit.models import Resources
from batchkit.providers.local.executor import RunSpec
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.process_groups import process_start_time
from batchkit.providers.local.process_run import MAX_LINE, ProcessRun
from tests.fixtures.local_engine import PYTHON, FakeClock, pid_alive, wait_until


class ListSink:
    def __init__(self) -> None:
        self.events: list[tuple[int | None, str]] = []

    def append(self, message: str, timestamp: int | None = None) -> None:
        self.events.append((timestamp, message))

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        self.events.extend((timestamp, message) for message in messages)


def _spec(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> RunSpec:
    return RunSpec(
        job_id="job",
        attempt=1,
        argv=argv,
        env=env if env is not None else {"PATH": os.environ["PATH"]},
        workdir=tmp_path / "work" / "attempt-1",
        resources=Resources(),
    )


def _wait_exit(run: ProcessRun, timeout: float = 10) -> int:
    codes: list[int] = []

    def ended() -> bool:
        code = run.poll()
        if code is not None:
            codes.append(code)
        return code is not None

    wait_until(ended, timeout, "the run to end")
    return codes[0]


def test_argv_runs_exactly_without_a_shell(tmp_path: Path) -> None:
    sink = ListSink()
    hostile = ["$(touch pwned)", "a b", "it's", "new\nline", "ünï", ";", "*"]
    run = ProcessExecutor(clock=FakeClock()).start(
        _spec(tmp_path, "/usr/bin/printf", "[%s]\\n", *hostile), sink
    )
    assert _wait_exit(run) == 0
    messages = [m for _, m in sink.events]
    expected = ["[$(touch pwned)]", "[a b]", "[it's]", "[new", "line]", "[ünï]", "[;]", "[*]"]
    assert messages == expected
    assert not (tmp_path / "work" / "attempt-1" / "pwned").exists()


def test_runs_in_its_workdir_with_the_given_environment(tmp_path: Path) -> None:
    sink = ListSink()
    clock = FakeClock()
    run = ProcessExecutor(clock=clock).start(
        _spec(tmp_path, "/bin/sh", "-c", "pwd; echo $ONLY; echo ${HOME:-unset}", env={"ONLY": "1"}),
        sink,
    )
    assert _wait_exit(run) == 0
    assert sink.events == [
        (clock.now, str(tmp_path / "work" / "attempt-1")),
        (clock.now, "1"),
        (clock.now, "unset"),
    ]


def test_long_lines_are_split_and_an_unterminated_last_line_kept(tmp_path: Path) -> None:
    sink = ListSink()
    script = (
        f"import sys; w = sys.stdout.write; w('a' * {MAX_LINE} + '\\n'); "
        f"w('b' * {MAX_LINE + 1} + '\\n'); w('\\n' * 2); w('c' * {2 * MAX_LINE + 3}); "
        "sys.stdout.flush(); w('tail')"
    )
    run = ProcessExecutor(clock=FakeClock()).start(_spec(tmp_path, PYTHON, "-c", script), sink)
    assert _wait_exit(run) == 0
    assert [m for _, m in sink.events] == [
        "a" * MAX_LINE,
        "b" * MAX_LINE,
        "b",
        "",
        "",
        "c" * MAX_LINE,
        "c" * MAX_LINE,
        "ccctail",
    ]


def test_exit_codes_and_signals_read_like_a_container_runtime(tmp_path: Path) -> None:
    executor = ProcessExecutor()
    assert _wait_exit(executor.start(_spec(tmp_path, "/bin/sh", "-c", "exit 42"), ListSink())) == 42
    killed = executor.start(_spec(tmp_path, "/bin/sh", "-c", "kill -9 $$"), ListSink())
    assert _wait_exit(killed) == 137


def test_kill_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    run = ProcessExecutor().start(
        _spec(tmp_path, "/bin/sh", "-c", f"sleep 300 & echo $! > {pid_file}; wait"), ListSink()
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())
    identity = run.identity()
    assert identity["pgid"] == identity["pid"]
    assert os.getpgid(child) == identity["pgid"]
    run.kill()
    run.kill()  # twice is fine
    wait_until(lambda: not pid_alive(child), 30, "child killed")
    assert run.poll() == 137


def test_background_children_die_with_the_main_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    run = ProcessExecutor().start(
        _spec(tmp_path, "/bin/sh", "-c", f"sleep 300 & echo $! > {pid_file}; echo bye"),
        ListSink(),
    )
    assert _wait_exit(run) == 0
    wait_until(lambda: not pid_alive(int(pid_file.read_text())), 30, "leftover child killed")


def test_reap_orphan_kills_a_group_left_behind(tmp_path: Path) -> None:
    # An attempt started by "another worker": a session leader with a child, not our Popen.
    pid_file = tmp_path / "pids"
    leader = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep 300 & echo $$ $! > {pid_file}; wait"], start_new_session=True
    )
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2)
    _, child = (int(p) for p in pid_file.read_text().split())
    identity = {"pid": leader.pid, "pgid": leader.pid, "start_time": process_start_time(leader.pid)}
    ProcessExecutor().reap_orphan(identity)
    leader.wait(timeout=5)
    wait_until(lambda: not pid_alive(child), 30, "orphan child killed")


def test_reap_orphan_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        started = process_start_time(bystander.pid)
        assert started is not None
        stale = {"pid": bystander.pid, "pgid": bystander.pid, "start_time": started - 1}
        ProcessExecutor().reap_orphan(stale)
        time.sleep(0.05)
        assert bystander.poll() is None, "a process with another start time is not ours"
        ProcessExecutor().reap_orphan({"pid": 999_999_999, "start_time": 1})  # long gone: no-op
    finally:
        bystander.kill()
        bystander.wait()


def test_attempts_share_one_output_thread_and_each_wakes_the_scheduler_once_ended(
    tmp_path: Path,
) -> None:
    woken: list[int] = []
    executor = ProcessExecutor(clock=FakeClock(), on_output_end=lambda: woken.append(1))
    before = threading.active_count()
    sinks = [ListSink() for _ in range(6)]
    runs = [
        executor.start(
            _spec(tmp_path / str(i), "/bin/sh", "-c", f"seq 1 {2000 * (i + 1)}; exit {i}"), sink
        )
        for i, sink in enumerate(sinks)
    ]
    assert threading.active_count() <= before + 1, "one pump thread, not one per attempt"
    assert [_wait_exit(run) for run in runs] == list(range(6))
    for i, sink in enumerate(sinks):
        assert [m for _, m in sink.events] == [str(n) for n in range(1, 2000 * (i + 1) + 1)]
    wait_until(lambda: len(woken) == 6, 30, "every attempt to wake the scheduler")


def test_a_log_that_fails_ends_its_own_output_not_the_other_attempts(tmp_path: Path) -> None:
    class BrokenSink(ListSink):
        def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
            raise OSError("disk full")

    executor = ProcessExecutor(clock=FakeClock())
    good = ListSink()
    broken = executor.start(_spec(tmp_path / "a", "/bin/sh", "-c", "seq 1 100"), BrokenSink())
    fine = executor.start(_spec(tmp_path / "b", "/bin/sh", "-c", "sleep 0.2; seq 1 3000"), good)
    assert _wait_exit(broken) in (0, 141)  # ended; 141 if it wrote after its pipe was closed
    assert _wait_exit(fine) == 0
    assert [m for _, m in good.events] == [str(n) for n in range(1, 3001)]

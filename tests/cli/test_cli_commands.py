"""`stat`, `out`, `kill`, `queues`, `hosts` and the error boundary, through the real Typer app."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from batchkit.errors import AwsError
from batchkit.models import Job, JobStatus
from tests.cli.conftest import Cli


def local(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000).astimezone().isoformat()


@pytest.fixture
def jobs(cli: Cli) -> Cli:
    fake = cli.fake
    fake.add(
        Job("simple-ok", "ok", JobStatus.SUCCEEDED, started_at=1_000, stopped_at=2_000, exit_code=0)
    )
    fake.add(Job("arr", "array", JobStatus.RUNNING, started_at=3_000, array_size=2))
    fake.add(Job("mnp", "multi", JobStatus.RUNNABLE, nodes=3))
    return cli


def test_stat_default_table_shows_active_jobs_like_awsbstat(jobs: Cli) -> None:
    result = jobs.run("stat")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "jobId    jobName    status    startedAt                  stoppedAt    exitCode",
        "-------  ---------  --------  -------------------------  -----------  ----------",
        "mnp *3   multi      RUNNABLE  -                          -            -",
        f"arr [2]  array      RUNNING   {local(3_000)}  -            -",
    ]


def test_stat_all_with_expanded_children(jobs: Cli) -> None:
    result = jobs.run("stat", "-s", "ALL", "-e")

    ids = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert ids == ["mnp#0", "mnp#1", "mnp#2", "arr:0", "arr:1", "simple-ok"]


def test_stat_empty_prints_header_only(cli: Cli) -> None:
    result = cli.run("stat")

    assert result.stdout.splitlines() == [
        "jobId    jobName    status    startedAt    stoppedAt    exitCode",
        "-------  ---------  --------  -----------  -----------  ----------",
    ]


def test_stat_single_simple_id_shows_details(jobs: Cli) -> None:
    result = jobs.run("stat", "simple-ok")

    lines = result.stdout.splitlines()
    assert lines[0] == "jobId                    : simple-ok"
    assert "status                   : SUCCEEDED" in lines
    assert "exitCode                 : 0" in lines
    assert "memory[MB]               : 128" in lines
    assert lines[-1] == "-" * 25
    assert [line.split(":")[0].strip() for line in lines[:-1]] == [
        "jobId", "jobName", "createdAt", "startedAt", "stoppedAt", "status", "statusReason",
        "jobDefinition", "jobQueue", "command", "exitCode", "reason", "vcpus", "memory[MB]",
        "nodes", "logStream", "log", "s3FolderUrl",
    ]  # fmt: skip


def test_stat_parent_by_id_shows_children_in_a_table(jobs: Cli) -> None:
    result = jobs.run("stat", "mnp", "simple-ok")

    ids = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert ids == ["mnp", "mnp#0", "mnp#1", "mnp#2", "simple-ok"]


def test_stat_unknown_id_exit_3(jobs: Cli) -> None:
    result = jobs.run("stat", "nope", "-d")

    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        "error: job nope not found",
        "hint: list jobs with `batchkit stat -s ALL`; ids are case-sensitive",
    ]


def test_stat_of_only_unknown_ids_prints_no_empty_table(jobs: Cli) -> None:
    result = jobs.run("stat", "nope", "ghost")

    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.count("error: job") == 2 and result.stderr.count("hint:") == 1


def test_stat_shows_the_known_ids_and_names_the_unknown(jobs: Cli) -> None:
    result = jobs.run("stat", "simple-ok", "nope")

    assert result.exit_code == 3
    assert "simple-ok" in result.stdout
    assert result.stderr.startswith("error: job nope not found\nhint: ")


def test_awsbstat_keeps_its_table_and_sentence(jobs: Cli) -> None:
    result = jobs.run_as("awsbstat", "stat", "nope")

    assert result.exit_code == 3
    assert result.stdout.splitlines()[0].split() == [
        "jobId", "jobName", "status", "startedAt", "stoppedAt", "exitCode",
    ]  # fmt: skip
    assert result.stderr.strip() == "Job (nope) not found."


def test_stat_json(jobs: Cli) -> None:
    data = json.loads(jobs.run("stat", "-s", "ALL", "--json").stdout)

    assert [d["jobId"] for d in data] == ["mnp", "arr", "simple-ok"]
    assert data[0]["status"] == "RUNNABLE" and data[0]["nodes"] == 3


def test_stat_json_spells_attempts_as_describe_jobs_does(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING, retry_attempts=2))
    cli.fake.start("j")
    cli.fake.retry("j", 3, "Essential container in task exited")

    [job] = json.loads(cli.run("stat", "--json", "j").stdout)

    [attempt] = job["attempts"]
    assert attempt["container"] == {"exitCode": 3, "reason": None, "logStreamName": "stream/j"}
    assert attempt["statusReason"] == "Essential container in task exited"
    assert set(attempt) == {"container", "startedAt", "stoppedAt", "statusReason"}


def test_stat_bad_status_exit_2(cli: Cli) -> None:
    result = cli.run("stat", "-s", "RUNNING,DONE")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: -s/--status: unknown status 'DONE'")


def test_out_prints_every_line_with_local_time(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))
    cli.fake.start("j")
    cli.fake.log("j", "one", "two", "three", "four")

    result = cli.run("out", "j")
    raw = cli.run("out", "j", "--raw", "-t", "2")

    assert result.exit_code == 0
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()] == [
        "one",
        "two",
        "three",
        "four",
    ]
    assert result.stdout.splitlines()[0].startswith(
        local(cli.fake.streams["stream/j"][0].timestamp)
    )
    assert raw.stdout.splitlines() == ["three", "four"]


def test_out_json_lines_name_the_job(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))
    cli.fake.start("j")
    cli.fake.log("j", "one")

    [line] = cli.run("out", "--json", "j").stdout.splitlines()

    assert json.loads(line) == {
        "timestamp": cli.fake.streams["stream/j"][0].timestamp,
        "message": "one",
        "jobId": "j",
    }


def test_out_of_a_job_not_started(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNABLE))

    result = cli.run("out", "j")

    assert result.exit_code == 0
    assert result.stderr.strip() == "No log stream found for job (j) in the status (RUNNABLE)"


def test_out_of_a_job_that_printed_nothing_says_where_it_stands(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))
    cli.fake.start("j")
    cli.fake.set("j", status=JobStatus.FAILED, status_reason="Essential container in task exited")

    result = cli.run("out", "j")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "No events found for job (j) in the status (FAILED): Essential container in task exited"
    )


def test_out_stream_follows_until_the_end(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))
    cli.fake.start("j")
    cli.fake.log("j", "first")

    def finish(fake) -> None:
        if len(cli.sleeps) == 1 and not fake.jobs["j"].status.is_final:
            fake.log("j", "last")
            fake.finish("j")

    cli.fake.on_describe = finish
    result = cli.run("out", "j", "-s", "-sp", "2", "--raw")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["first", "last"]
    assert cli.sleeps == [2.0]


def test_out_of_a_retried_job_latest_attempt_one_attempt_or_all(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING, retry_attempts=2))
    cli.fake.start("j")
    cli.fake.log("j", "first try")
    cli.fake.retry("j", 3, "Essential container in task exited")
    cli.fake.log("j", "second try")

    latest = cli.run("out", "--raw", "j")
    first = cli.run("out", "--raw", "--attempt", "1", "j")
    every = cli.run("out", "--raw", "--attempt", "all", "j")
    as_json = cli.run("out", "--json", "--attempt", "1", "j")

    assert latest.stdout == "second try\n"
    assert latest.stderr == (
        "job j: attempt 2 of 2; the others with `batchkit out --attempt N j` (or --attempt all)\n"
    )
    assert first.stdout == "first try\n"
    assert first.stderr == (
        "--- attempt 1 of 2: exit code 3 (Essential container in task exited) ---\n"
    )
    assert every.stdout == "first try\nsecond try\n"
    assert every.stderr.splitlines()[1] == "--- attempt 2 of 2: in progress ---"
    header, line = (json.loads(text) for text in as_json.stdout.splitlines())
    assert (header["attempt"], header["attempts"], header["exitCode"]) == (1, 2, 3)
    assert line["message"] == "first try"


@pytest.mark.parametrize("attempt", ["0", "x", "3"])
def test_out_attempt_that_is_not_there_exit_2(cli: Cli, attempt: str) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))
    cli.fake.start("j")

    result = cli.run("out", "--attempt", attempt, "j")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "hint: " in result.stderr


@pytest.mark.parametrize("args", [["-hd", "1", "-t", "1"], ["-hd", "1", "-s"], ["-sp", "3"]])
def test_out_bad_flag_combinations(cli: Cli, args: list[str]) -> None:
    result = cli.run("out", *args, "j")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_kill_messages_as_awsbkill(cli: Cli) -> None:
    cli.fake.add(Job("queued", "q", JobStatus.RUNNABLE))
    cli.fake.add(Job("running", "r", JobStatus.RUNNING))
    cli.fake.add(Job("done", "d", JobStatus.SUCCEEDED))

    result = cli.run("kill", "queued", "running", "done", "ghost")

    assert result.exit_code == 3
    assert result.stdout.splitlines() == [
        "Your job cancellation request for job (queued) in status (RUNNABLE) has been submitted.",
        "Your job termination request for job (running) in status (RUNNING) has been submitted.",
        "Job (done) is already in (SUCCEEDED) status.",
    ]
    assert result.stderr.splitlines() == [
        "error: job ghost not found",
        "hint: list jobs with `batchkit stat -s ALL`; ids are case-sensitive",
    ]
    assert cli.fake.terminated == [
        ("queued", "Terminated by the user"),
        ("running", "Terminated by the user"),
    ]
    as_awsbkill = cli.run_as("awsbkill", "kill", "ghost")
    assert as_awsbkill.exit_code == 3
    assert as_awsbkill.stderr.strip() == "Job (ghost) not found."


def test_kill_custom_reason(cli: Cli) -> None:
    cli.fake.add(Job("j", "n", JobStatus.RUNNING))

    assert cli.run("kill", "-r", "enough", "j").exit_code == 0
    assert cli.fake.terminated == [("j", "enough")]


def test_queues_and_hosts(cli: Cli) -> None:
    assert cli.run("queues").stdout.splitlines()[2].split() == ["default", "VALID"]
    assert (
        "jobQueueArn              : arn:aws:batch:local:0:job-queue/default"
        in cli.run("queues", "default").stdout
    )
    assert cli.run("hosts").stdout.splitlines()[2].split() == [
        "local-host",
        "local",
        "127.0.0.1",
        "-",
        "1",
    ]
    details = cli.run("hosts", "-d").stdout
    assert "registeredCPUs           : 0.0" in details
    assert json.loads(cli.run("hosts", "--json").stdout)[0]["ec2InstanceId"] == "local-host"


def test_batchkit_error_becomes_error_and_hint(cli: Cli) -> None:
    def boom(*_a, **_k):
        raise AwsError("throttled by Batch", hint="try again later")

    cli.fake.list_jobs = boom  # type: ignore[method-assign]
    result = cli.run("stat")

    assert result.exit_code == 4
    assert result.stderr == "error: throttled by Batch\nhint: try again later\n"


def test_unexpected_error_is_one_line_without_traceback(cli: Cli) -> None:
    def boom(*_a, **_k):
        raise ValueError("kaput\nsecond line")

    cli.fake.list_jobs = boom  # type: ignore[method-assign]
    result = cli.run("stat")
    debug = cli.run("stat", "--debug")

    assert result.exit_code == 6
    assert result.stderr.splitlines() == [
        "error: unexpected ValueError: kaput",
        "hint: re-run with --debug to see the traceback, and report it",
    ]
    assert "Traceback" not in result.stderr
    assert debug.exit_code == 6 and "Traceback" in debug.stderr


def test_ctrl_c_exits_130(cli: Cli) -> None:
    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    cli.fake.list_jobs = interrupt  # type: ignore[method-assign]

    assert cli.run("stat").exit_code == 130


def test_local_doctor_reports_the_executors(cli: Cli, isolated_environment) -> None:
    result = cli.run("local", "doctor", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["home"] == str(isolated_environment)
    assert report["plain_job_executor"] == "process"
    assert report["image_job_executor"] in ("process", "docker")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("-1", "-1"), ("86401", "86401"), ("9223372036854775808", "9.22337e+18")],
)
def test_local_worker_refuses_an_idle_exit_outside_a_day(
    isolated_environment, value: str, shown: str
) -> None:
    # A process of its own with a timeout: a worker that took the value would serve, not fail.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "batchkit", "local", "worker", "--idle-exit", value],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: --idle-exit must be between 0 and 86400 seconds (a day), got {shown}"
    )
    assert not (isolated_environment / "worker.lock").exists()  # no worker ran


def test_status_is_coloured_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from batchkit.cli.output import Terminal, job_table

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    jobs = [Job("a", "n", JobStatus.FAILED), Job("b", "n", JobStatus.RUNNABLE)]
    monkeypatch.delenv("NO_COLOR", raising=False)
    plain = job_table(jobs, Terminal(out=io.StringIO()))
    coloured = job_table(jobs, Terminal(out=Tty()))

    assert "\x1b[31mFAILED" in coloured
    assert coloured.replace("\x1b[31m", "").replace("\x1b[0m", "") == plain
    monkeypatch.setenv("NO_COLOR", "1")
    assert job_table(jobs, Terminal(out=Tty())) == plain


def test_a_queue_column_only_when_jobs_come_from_several_queues() -> None:
    import io

    from batchkit.cli.output import Terminal, job_table

    one = [
        Job("a", "n", JobStatus.RUNNING, queue="cpu"),
        Job("b", "m", JobStatus.RUNNING, queue="cpu"),
    ]
    header = job_table(one, Terminal(out=io.StringIO())).splitlines()[0].split()
    assert header == ["jobId", "jobName", "status", "startedAt", "stoppedAt", "exitCode"]
    two = [one[0], Job("c", "o", JobStatus.RUNNABLE, queue="gpu")]
    lines = job_table(two, Terminal(out=io.StringIO())).splitlines()
    assert lines[0].split() == [
        "jobId",
        "jobName",
        "queue",
        "status",
        "startedAt",
        "stoppedAt",
        "exitCode",
    ]
    assert lines[-1].split()[:4] == ["c", "o", "gpu", "RUNNABLE"]


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    import io

    from batchkit.cli.output import Terminal, progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    term = Terminal(out=io.StringIO(), err=err)
    job = Job("p", "arr", JobStatus.RUNNING, array_size=3)
    job.status_summary = {"SUCCEEDED": 1, "RUNNING": 2, "FAILED": 0}
    term.status(progress(job))
    term.status("second")
    term.message("done")

    assert progress(job) == "Job p (arr): RUNNING (RUNNING 2, SUCCEEDED 1)"
    assert err.getvalue() == f"\r\x1b[K{progress(job)}\r\x1b[Ksecond\ndone\n"
    piped = io.StringIO()
    Terminal(err=piped).status("a")
    assert piped.getvalue() == "a\n"


@pytest.mark.parametrize("command", ["stat", "queues", "hosts"])
def test_awsbatch_cli_log_level_flag_is_accepted(cli: Cli, command: str) -> None:
    assert cli.run(command, "-ll", "DEBUG").exit_code == 0


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["sub", "-m", "abc", "true"], "'abc' is not a valid integer", "batchkit sub --help"),
        (["sub", "--nope", "true"], "No such option: --nope", "batchkit sub --help"),
        (["stat", "-s"], "Option '-s' requires an argument", "batchkit stat --help"),
        (["out"], "Missing argument 'JOB_ID'", "batchkit out --help"),
        (["nosuch"], "No such command 'nosuch'", "batchkit --help"),
        (["local", "worker", "--idle-exit", "x"], "not a valid number", "local worker --help"),
    ],
)
def test_flags_click_cannot_parse_read_like_every_other_error(
    cli: Cli, args: list[str], error: str, hint: str
) -> None:
    result = cli.run(*args)

    assert result.exit_code == 2
    first, second = result.stderr.splitlines()
    assert first.startswith("error: ") and error in first
    assert second.startswith("hint: see `") and hint in second
    assert cli.fake.requests == []


def test_a_bare_group_still_shows_its_help(cli: Cli) -> None:
    result = cli.run("local")

    assert "worker" in result.output and "error" not in result.output


@pytest.mark.parametrize(
    "command",
    [["sub", "true"], ["stat"], ["out", "x"], ["kill", "x"], ["queues"], ["hosts"]],
)
def test_every_job_command_takes_an_aws_profile_and_region(cli: Cli, command: list[str]) -> None:
    cli.run(
        *command[:1], "-c", "research", "--profile", "lab", "--region", "eu-west-1", *command[1:]
    )

    assert cli.connected == ["research"]
    assert cli.aws_settings == [("lab", "eu-west-1")]


def test_the_reason_a_waited_job_failed_names_its_exit_code_and_attempts() -> None:
    from batchkit.cli.output import failure_reason
    from batchkit.models import Attempt

    job = Job(
        "j",
        "n",
        JobStatus.FAILED,
        status_reason="Essential container in task exited",
        exit_code=3,
        attempts=[Attempt(exit_code=3), Attempt(exit_code=3)],
    )
    assert failure_reason(job) == (
        "reason: Essential container in task exited (exit code 3, after 2 attempts)"
    )
    assert failure_reason(Job("k", "n", JobStatus.SUCCEEDED)) is None


def test_times_are_local_iso_seconds_whatever_the_milliseconds() -> None:
    from batchkit.cli.output import iso_time

    second = 1_700_000_000_000
    expected = datetime.fromtimestamp(second / 1000).astimezone().isoformat()
    assert [iso_time(second + ms) for ms in (0, 1, 500, 999)] == [expected] * 4
    assert iso_time(second + 1000) != expected
    assert iso_time(None) == "-"


@pytest.mark.parametrize(("command", "argument"), [("kill", "JOB_ID"), ("sub", "COMMAND")])
def test_help_names_arguments_without_python_types(cli: Cli, command: str, argument: str) -> None:
    result = cli.run(command, "--help")

    assert result.exit_code == 0
    assert f"  {argument}  " in result.output
    assert "<list[str]>" not in result.output and "<str>" not in result.output


def test_a_page_of_out_prints_as_its_lines_one_by_one() -> None:
    from batchkit.cli import logprint
    from batchkit.jobs.logtail import LogBatch
    from batchkit.logmodel import LogEvent, LogEvents

    events = [
        LogEvent(1_700_000_000_000 + step * 400, message)
        for step, message in enumerate(["a", "b\n", "", "tab\tc", "d", "e"])
    ]
    for source in (None, "j:1"):
        batch = LogBatch(events, "j:1", source)
        columns = LogBatch(
            LogEvents([e.timestamp for e in events], [e.message for e in events]), "j:1", source
        )
        for raw in (False, True):
            one_by_one = ""
            for line in batch.lines():
                text, is_data = logprint.log_line(line, raw=raw)
                assert is_data
                one_by_one += text if text.endswith("\n") else text + "\n"
            assert logprint.log_block(batch, raw=raw) == one_by_one
            assert logprint.log_block(columns, raw=raw) == one_by_one

"""`batchkit sub`: flags as awsbsub, what gets submitted, and refusals that submit nothing."""

from __future__ import annotations

import re

import pytest

from batchkit.cli.context import StdinKind
from batchkit.jobs.wrapper import user_command
from batchkit.models import Dependency, DependencyType, JobStatus, Resources
from tests.cli.conftest import Cli

SUBMITTED = re.compile(r"^Job ([\w-]+) \((.+)\) has been submitted\.$")


def test_inline_command_keeps_its_own_options(cli: Cli) -> None:
    result = cli.run("sub", "-p", "2", "-m", "256", "ls", "-la", "-p", "--json")

    assert result.exit_code == 0, result.output
    assert SUBMITTED.match(result.stdout.strip()).groups() == ("job-0001", "ls")
    [request] = cli.fake.requests
    assert user_command(request.command) == ["ls", "-la", "-p", "--json"]
    assert request.resources == Resources(vcpus=2, memory=256)


def test_awsbsub_flags_reach_the_request(cli: Cli, tmp_path) -> None:
    script = tmp_path / "my.job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    data = tmp_path / "data.txt"
    data.write_text("x")
    result = cli.run(
        "sub",
        "-jn", "named",
        "-cf",
        "-w", "/scratch/w",
        "-if", str(data),
        "-e", "FOO",
        "-r", "3",
        "-t", "120",
        "-a", "4",
        "-d", "jobId=a,type=N_TO_N;jobId=b",
        "-d", "c",
        "--gpus", "1",
        "--image", "busybox",
        "--executor", "process",
        "--queue", "gpu",
        "-c", "mine",
        str(script), "arg 1",
        environ={"FOO": "bar"},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert cli.connected == ["mine"]
    [request] = cli.fake.requests
    assert request.name == "named"
    assert user_command(request.command) == ["./named.sh", "arg 1"]
    assert "/scratch/w" in request.command
    assert (request.retry_attempts, request.timeout, request.array_size) == (3, 120, 4)
    assert request.depends_on == (
        Dependency("a", DependencyType.N_TO_N),
        Dependency("b"),
        Dependency("c"),
    )
    assert (request.image, request.queue, request.resources.gpus) == ("busybox", "gpu", 1)
    assert request.tags == {"batchkit:executor": "process"}
    staged = {key.rsplit("/", 1)[-1]: body for key, body in cli.fake.objects.items.items()}
    assert staged["named.sh"] == script.read_bytes()
    assert staged["named.env.sh"] == b"export FOO=bar\n"
    assert staged["data.txt"] == b"x"


def test_default_job_names(cli: Cli, tmp_path) -> None:
    cli.run("sub", "/usr/bin/my.tool")
    cli.run("sub", stdin=b"echo hi\n", stdin_kind="pipe")

    assert [r.name for r in cli.fake.requests] == ["my_tool", "STDIN"]
    assert (
        cli.fake.objects.items[
            cli.fake.requests[1].s3_folder_url.replace("s3://fake-bucket/", "") + "STDIN.sh"
        ]
        == b"echo hi\n"
    )


def test_env_all_forwards_no_secrets(cli: Cli) -> None:
    environ = {"FOO": "1", "API_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "s", "HOME": "/h"}
    result = cli.run("sub", "-e", "all", "true", environ=environ)

    assert result.exit_code == 0, result.output
    [body] = [b for k, b in cli.fake.objects.items.items() if k.endswith(".env.sh")]
    assert body == b"export FOO=1\n"


def test_missing_env_name_warns_on_stderr(cli: Cli) -> None:
    result = cli.run("sub", "-e", "NOPE", "true")

    assert result.exit_code == 0
    assert "warning: -e NOPE: not set here" in result.stderr
    assert "warning" not in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-a", "1", "true"], "-a/--array-size"),
        (["-a", "10001", "true"], "-a/--array-size"),
        (["-p", "0", "true"], "-p/--vcpus"),
        (["-m", "2", "true"], "-m/--memory"),
        (["-t", "59", "true"], "-t/--timeout"),
        (["-r", "0", "true"], "-r/--retry-attempts"),
        (["-r", "11", "true"], "-r/--retry-attempts"),
        (["-n", "0", "true"], "-n/--nodes"),
        (["-cf", "/no/such/file.sh"], "-cf/--command-file"),
        (["-d", "jobId=a,type=BAD", "true"], "-d/--depends-on"),
        (["-d", ";".join(f"j{i}" for i in range(21)), "true"], "at most 20"),
        (["-w", "a", "-pw", "b", "true"], "-w/--working-dir"),
        (["-e", "FOO", "-eb", "HOME", "true"], "-eb/--env-blacklist"),
        (["-if", "/no/such/input", "true"], "-if/--input-file"),
        (["-jn", "bad name", "true"], "-jn/--job-name"),
        (["-jn", "", "true"], "-jn/--job-name '' is not a valid job name"),
        ([], "no command given"),
        (["-m", "9223372036854775808", "true"], "-m/--memory must be between 4 and 33554432"),
        (["-p", "897", "true"], "-p/--vcpus must be at most 896"),
        (["-p", "nan", "true"], "'nan' is not a valid number"),
        (["-p", "inf", "true"], "'inf' is not a valid number"),
        (["--gpus", "17", "true"], "--gpus must be between 0 and 16"),
        (["--gpus", "-1", "true"], "--gpus must be between 0 and 16"),
        (["-t", "2147483648", "true"], "-t/--timeout must be at most 2147483647"),
        (["-n", "9223372036854775808", "true"], "-n/--nodes"),
        (["-a", "9223372036854775808", "true"], "-a/--array-size"),
        (["--executor", "docker", "true"], "--executor docker needs --image"),
    ],
)
def test_bad_input_exits_2_with_one_clear_error_and_submits_nothing(
    cli: Cli, args: list[str], needle: str
) -> None:
    result = cli.run("sub", *args)

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert lines[1].startswith("hint: ")
    assert result.stdout == ""
    assert cli.fake.requests == [] and cli.fake.objects.items == {}
    assert cli.connected == []  # refused before any cluster was contacted


@pytest.mark.parametrize("kind", ["pipe", "file"])
def test_command_and_stdin_script_together_is_refused(cli: Cli, kind: StdinKind) -> None:
    result = cli.run("sub", "echo", "hi", stdin=b"echo x", stdin_kind=kind)

    assert result.exit_code == 2
    assert "a command was given and a script is waiting on stdin" in result.stderr
    assert "< /dev/null" in result.stderr
    assert cli.fake.requests == []


def test_a_command_file_leaves_stdin_alone(cli: Cli, tmp_path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo run\n")

    result = cli.run(
        "sub", "-cf", str(script), stdin=b"lines of a while-read loop\n", stdin_kind="file"
    )

    assert result.exit_code == 0, result.output
    assert user_command(cli.fake.requests[0].command) == ["./run_sh.sh"]


@pytest.mark.parametrize("kind", ["pipe", "file"])
def test_a_command_runs_when_stdin_is_empty_but_not_a_terminal(cli: Cli, kind: StdinKind) -> None:
    result = cli.run("sub", "echo", "hi", stdin=b"", stdin_kind=kind)

    assert result.exit_code == 0, result.output
    [request] = cli.fake.requests
    assert request.name == "echo"
    assert user_command(request.command) == ["echo", "hi"]


def test_an_empty_stdin_without_a_command_is_refused(cli: Cli) -> None:
    result = cli.run("sub", stdin=b" \n", stdin_kind="pipe")

    assert result.exit_code == 2
    assert "the script on stdin is empty" in result.stderr
    assert cli.fake.requests == []


@pytest.mark.parametrize(("flag", "tags"), [
    ([], {"batchkit:executor": "auto"}),
    (["--spot-retry"], {"batchkit:executor": "auto", "batchkit:spot-retry": "true"}),
])  # fmt: skip
def test_spot_retry_tags_the_request(cli: Cli, flag: list[str], tags: dict[str, str]) -> None:
    result = cli.run("sub", *flag, "-r", "2", "true")

    assert result.exit_code == 0, result.output
    [request] = cli.fake.requests
    assert request.tags == tags
    assert request.retry_attempts == 2


def test_a_multinode_job_gets_its_vcpus_per_node(cli: Cli) -> None:
    cli.run("sub", "-n", "3", "-p", "4", "true")
    cli.run("sub", "-n", "2", "-p", "0.5", "true")
    cli.run("sub", "-p", "4", "true")

    single = cli.fake.requests[2].environment
    assert [r.environment.get("BATCHKIT_JOB_VCPUS") for r in cli.fake.requests] == [
        "4",
        "0.5",
        None,
    ]
    assert set(single) == {"PCLUSTER_JOB_S3_URL"}


def test_unknown_executor_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("sub", "--executor", "vm", "true")

    assert result.exit_code == 2
    assert cli.fake.requests == []


def _finish_after_submit(cli: Cli, status: JobStatus) -> None:
    def advance(fake) -> None:
        for job_id, job in list(fake.jobs.items()):
            if not job.status.is_final:
                fake.start(job_id)
                fake.log(job_id, f"hello from {job_id}")
                fake.finish(job_id, status, 0 if status is JobStatus.SUCCEEDED else 3)

    cli.fake.on_describe = advance


@pytest.mark.parametrize(("status", "code"), [(JobStatus.SUCCEEDED, 0), (JobStatus.FAILED, 1)])
def test_wait_exit_code_follows_the_job(cli: Cli, status: JobStatus, code: int) -> None:
    _finish_after_submit(cli, status)

    result = cli.run("sub", "--wait", "true")

    assert result.exit_code == code, result.output
    assert SUBMITTED.match(result.stdout.strip())
    assert f": {status.value}" in result.stderr


def test_follow_prints_output_on_stdout(cli: Cli) -> None:
    _finish_after_submit(cli, JobStatus.SUCCEEDED)

    result = cli.run("sub", "--follow", "true")

    assert result.exit_code == 0, result.output
    assert SUBMITTED.match(result.stdout.splitlines()[0])
    assert result.stdout.splitlines()[1].endswith(": hello from job-0001")


def test_json_prints_the_job(cli: Cli) -> None:
    import json

    result = cli.run("sub", "--json", "-jn", "x", "true", "a b")

    job = json.loads(result.stdout)
    assert job["jobName"] == "x"
    assert job["userCommand"] == ["true", "a b"]
    assert job["command"][:2] == ["/bin/sh", "-c"]


def test_env_blacklist_from_user_config(cli: Cli, isolated_environment) -> None:
    isolated_environment.mkdir(parents=True, exist_ok=True)
    (isolated_environment / "config.yaml").write_text("env_blacklist: [FOO]\n")

    cli.run("sub", "-e", "all", "true", environ={"FOO": "1", "BAR": "2", "HOME": "/h"})

    [body] = [b for k, b in cli.fake.objects.items.items() if k.endswith(".env.sh")]
    assert body == b"export BAR=2\nexport HOME=/h\n"


def test_ctrl_c_while_waiting_says_the_job_keeps_running(cli: Cli) -> None:
    def interrupt(_fake) -> None:
        raise KeyboardInterrupt

    cli.fake.on_describe = interrupt

    result = cli.run("sub", "--wait", "true")

    assert result.exit_code == 130
    assert "job job-0001 keeps running" in result.stderr
    assert "batchkit kill job-0001" in result.stderr


def test_follow_marks_a_retry_on_stderr(cli: Cli) -> None:
    def retry_then_succeed(fake) -> None:
        job = fake.jobs["job-0001"]
        if job.status is JobStatus.SUBMITTED:
            fake.start("job-0001")
            fake.log("job-0001", "try 1")
        elif not job.attempts:
            fake.retry("job-0001", 1, "failed")
            fake.log("job-0001", "try 2")
            fake.finish("job-0001")

    cli.fake.on_describe = retry_then_succeed

    result = cli.run("sub", "--follow", "-r", "2", "true")

    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()[1:]] == ["try 1", "try 2"]
    assert "--- attempt 2 of 2: in progress ---" in result.stderr

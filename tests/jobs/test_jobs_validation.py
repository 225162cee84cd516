"""Every invalid value or combination is refused with a message naming the flag."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from batchkit.errors import ExitCode, UsageError
from batchkit.jobs import validation
from batchkit.models import Dependency, DependencyType, JobSpec, JobStatus, Resources

GOOD = JobSpec(name="ok", command=("true",))


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"array_size": 1}, "-a/--array-size"),
        ({"array_size": 10_001}, "-a/--array-size"),
        ({"resources": Resources(vcpus=0)}, "-p/--vcpus"),
        ({"resources": Resources(memory=3)}, "-m/--memory"),
        ({"resources": Resources(gpus=-1)}, "--gpus"),
        ({"timeout": 59}, "-t/--timeout"),
        ({"retry_attempts": 0}, "-r/--retry-attempts"),
        ({"retry_attempts": 11}, "-r/--retry-attempts"),
        ({"nodes": 0}, "-n/--nodes"),
        ({"nodes": 2, "array_size": 3}, "-a/--array-size"),
        ({"name": "bad name!"}, "-jn/--job-name"),
        ({"name": "x" * 129}, "-jn/--job-name"),
        ({"name": "_private"}, "-jn/--job-name"),
        ({"working_dir": "a", "parent_working_dir": "b"}, "-w/--working-dir"),
        ({"env": {"1X": "v"}}, "-e/--env"),
        ({"depends_on": tuple(Dependency(f"j{i}") for i in range(21))}, "-d/--depends-on"),
        ({"depends_on": (Dependency(None, DependencyType.SEQUENTIAL),)}, "-d/--depends-on"),
        ({"script": b"x"}, "both a command and a script"),
        ({"command": ()}, "no command"),
    ],
)
def test_bad_spec_names_the_flag(changes: dict, flag: str) -> None:
    with pytest.raises(UsageError) as err:
        validation.validate_spec(replace(GOOD, **changes))

    assert flag in err.value.message
    assert err.value.hint
    assert err.value.exit_code is ExitCode.USAGE


def test_limits_that_are_allowed() -> None:
    validation.validate_spec(replace(GOOD, array_size=2, timeout=60, retry_attempts=10))
    validation.validate_spec(replace(GOOD, array_size=10_000, resources=Resources(memory=4)))
    validation.validate_spec(replace(GOOD, nodes=2))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["jobId=a"], [Dependency("a")]),
        (["a", "b"], [Dependency("a"), Dependency("b")]),
        (["jobId=a,type=N_TO_N"], [Dependency("a", DependencyType.N_TO_N)]),
        (["type=sequential jobId=a"], [Dependency("a", DependencyType.SEQUENTIAL)]),
        (["jobId=a;jobId=b"], [Dependency("a"), Dependency("b")]),
        (
            ["jobId=a,type=N_TO_N;jobId=b", "jobId=c"],
            [Dependency("a", DependencyType.N_TO_N), Dependency("b"), Dependency("c")],
        ),
        (["type=SEQUENTIAL"], [Dependency(None, DependencyType.SEQUENTIAL)]),
        (["abc:3"], [Dependency("abc:3")]),
    ],
)
def test_depends_on_parsing(values: list[str], expected: list[Dependency]) -> None:
    assert list(validation.parse_dependencies(values)) == expected


@pytest.mark.parametrize(
    "value", ["jobId=", "job=a", "jobId=a,jobId=b", "jobId=a,type=ALL", "type=N_TO_N", "a b", "a,b"]
)
def test_malformed_depends_on(value: str) -> None:
    with pytest.raises(UsageError, match="-d/--depends-on"):
        validation.parse_dependencies([value])


def test_more_than_twenty_dependencies() -> None:
    with pytest.raises(UsageError, match="at most 20"):
        validation.parse_dependencies([";".join(f"jobId=j{i}" for i in range(21))])


def test_statuses() -> None:
    assert validation.parse_statuses("running,failed,RUNNING") == [
        JobStatus.RUNNING,
        JobStatus.FAILED,
    ]
    assert len(validation.parse_statuses("ALL")) == 7
    with pytest.raises(UsageError, match="-s/--status: unknown status 'DONE'"):
        validation.parse_statuses("DONE")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        ((5, 5, False, None), "-hd/--head"),
        ((5, None, True, None), "-hd/--head"),
        ((None, None, False, 3), "-sp/--stream-period"),
        ((None, 0, False, None), "-t/--tail"),
        ((None, None, True, 0), "-sp/--stream-period"),
        ((None, 10_001, False, None), "-t/--tail must be between 1 and 10000"),
        ((2**63, None, False, None), "-hd/--head must be between 1 and 10000"),
        ((None, None, True, 2**63), "-sp/--stream-period must be between 1 and 3600"),
    ],
)
def test_out_flags(args: tuple, flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        validation.check_out_flags(*args)


def test_env_blacklist_needs_env_all() -> None:
    validation.check_env_flags("all", "HOME")
    with pytest.raises(UsageError, match="-eb/--env-blacklist"):
        validation.check_env_flags("FOO", "HOME")


def test_command_and_input_files(tmp_path) -> None:
    with pytest.raises(UsageError, match="-cf/--command-file"):
        validation.check_command_file(str(tmp_path / "missing.sh"))
    with pytest.raises(UsageError, match="-if/--input-file"):
        validation.check_input_file(str(tmp_path))
    with pytest.raises(UsageError, match="same name"):
        validation.check_input_names(["a/x", "b/x"], [])
    with pytest.raises(UsageError, match="overwrite"):
        validation.check_input_names(["a/job.sh"], ["job.sh"])


@pytest.mark.parametrize(
    ("working_dir", "parent", "message", "hint"),
    [
        ("a", "b", "cannot be used together", "pick one"),
        ("", None, "-w/--working-dir must be a non-empty path", "e.g. -w "),
        (None, "", "-pw/--parent-working-dir must be a non-empty path", "e.g. -pw "),
        (None, "a\0b", "-pw/--parent-working-dir", "e.g. -pw "),
    ],
)
def test_working_dirs(working_dir: str | None, parent: str | None, message: str, hint: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        validation.check_working_dirs(working_dir, parent)
    assert hint in (caught.value.hint or "")


def test_an_attempt_number_is_within_batchs_attempts() -> None:
    assert validation.parse_attempt("10") == 10
    with pytest.raises(UsageError, match="--attempt must be a number from 1 to 10"):
        validation.parse_attempt(str(2**63))

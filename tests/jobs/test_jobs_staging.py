"""The awsbsub job-folder layout, the env file, and which variables `-e` forwards."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from batchkit.errors import UsageError
from batchkit.jobs.staging import job_folder_key, plan_staging, render_env_file, select_environment
from batchkit.models import JobSpec

ENVIRON = {
    "FOO": "1",
    "BAR": "two words",
    "HOME": "/home/u",
    "PATH": "/bin",
    "PCLUSTER_X": "p",
    "AWS_REGION": "us-east-1",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    "GITHUB_TOKEN": "ghp",
    "DB_PASSWORD": "pw",
    "API_KEY": "k",
    "MY_SECRET_THING": "x",
    "LESS_TERMCAP_mb": "\x1b[1m",
    "BASH_FUNC_f%%": "() {  echo; }",
    "fn": "() { echo hi; }",
    "VCPUS": "4",
}


def test_layout_matches_awsbsub() -> None:
    spec = JobSpec(name="my_sh", script=b"echo hi\n", env={"FOO": "1"})
    plan = plan_staging(
        spec, artifact_root="batchkit/c1", epoch_ms=1700000000000, input_files={"in.txt": b"x"}
    )

    folder = "batchkit/c1/batch/job-my_sh-1700000000000/"
    assert plan.folder_key == folder
    assert [o.key for o in plan.objects] == [
        folder + "in.txt",
        folder + "my_sh.sh",
        folder + "my_sh.env.sh",
    ]
    empty = plan_staging(JobSpec(name="n", command=("true",)), artifact_root="r", epoch_ms=1)
    assert empty.objects == ()
    assert empty.folder_key == "r/batch/job-n-1/"
    assert job_folder_key("", "n", 5) == "batch/job-n-5/"


def test_env_file_round_trips_through_sh() -> None:
    values = {"A": "it's", "B": "$(echo no)", "C": "line1\nline2", "D": "ünï ✓", "E": ""}
    body = render_env_file(values)

    assert body.decode().splitlines()[0] == f"export A={shlex.quote('it' + chr(39) + 's')}"
    script = body.decode() + 'printf "%s\\0" "$A" "$B" "$C" "$D" "$E"'
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, env={}).stdout
    assert out.decode().split("\0")[:-1] == list(values.values())


def test_all_skips_cluster_variables_functions_secrets_and_blacklist() -> None:
    selection = select_environment("all", ENVIRON)

    assert selection.variables == {"FOO": "1", "BAR": "two words"}


def test_all_with_custom_blacklist_and_explicit_secret() -> None:
    selection = select_environment("all,GITHUB_TOKEN", ENVIRON, blacklist=["FOO"])

    assert selection.variables == {
        "BAR": "two words",
        "HOME": "/home/u",
        "PATH": "/bin",
        "VCPUS": "4",
        "GITHUB_TOKEN": "ghp",
    }


def test_named_variables_missing_and_refused() -> None:
    selection = select_environment("FOO, API_KEY,NOPE,PCLUSTER_X,fn", ENVIRON)

    assert selection.variables == {"FOO": "1", "API_KEY": "k"}
    assert selection.missing == ("NOPE",)
    assert [name for name, _ in selection.refused] == ["PCLUSTER_X", "fn"]


def test_bad_variable_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="-e/--env"):
        select_environment("FOO,1BAD", ENVIRON)


def test_no_env_flag_selects_nothing() -> None:
    assert select_environment(None, ENVIRON).variables == {}

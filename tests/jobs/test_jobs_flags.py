"""awsbsub's flags → JobSpec: what runs, the default name, and refusals."""

from __future__ import annotations

import pytest

from batchkit.errors import UsageError
from batchkit.jobs.flags import SubmitFlags, default_job_name, prepare


def test_script_given_as_text_takes_the_arguments() -> None:
    prepared = prepare(SubmitFlags(argv=("a", "b"), script=b"echo $1\n"), environ={})

    assert prepared.spec.script == b"echo $1\n"
    assert prepared.spec.arguments == ("a", "b")
    assert prepared.spec.name == "STDIN"


def test_stdin_script_is_read_only_without_a_command() -> None:
    prepared = prepare(
        SubmitFlags(), environ={}, stdin_has_script=True, read_stdin=lambda: b"date\n"
    )

    assert prepared.spec.script == b"date\n"
    with pytest.raises(UsageError, match="stdin"):
        prepare(SubmitFlags(argv=("ls",)), environ={}, stdin_has_script=True)


def test_a_command_file_ignores_stdin_and_an_empty_stdin_script_is_refused(tmp_path) -> None:
    script = tmp_path / "run.sh"
    script.write_bytes(b"echo run\n")

    prepared = prepare(
        SubmitFlags(argv=(str(script),), command_file=True), environ={}, stdin_has_script=True
    )

    assert prepared.spec.script == b"echo run\n"
    with pytest.raises(UsageError, match="the script on stdin is empty"):
        prepare(SubmitFlags(), environ={}, stdin_has_script=True, read_stdin=lambda: b" \n")


def test_warnings_for_unset_and_refused_names() -> None:
    prepared = prepare(
        SubmitFlags(argv=("true",), env="NOPE,PCLUSTER_X"), environ={"PCLUSTER_X": "1"}
    )

    assert prepared.warnings == (
        "-e NOPE: not set here, not exported",
        "-e PCLUSTER_X: not exported (set by the cluster for every job)",
    )


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/usr/bin/my.tool", "my_tool"),
        ("./run-it.sh", "run_it_sh"),
        ("ünï", "n_"),
        ("_hidden.sh", "hidden_sh"),
        ("...", "job"),
        ("x" * 200, "x" * 128),
    ],
)
def test_default_job_name(command: str, name: str) -> None:
    assert default_job_name(command, from_stdin=False) == name

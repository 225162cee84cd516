"""What `sub` reads on stdin to tell whether a script is waiting there (real pipes and files)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from batchkit.cli.context import stdin_has_data


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):  # closed by the test
            os.close(fd)


@pytest.mark.parametrize(
    ("written", "expected"), [(b"", False), (b" \n\t\n", False), (b"date\n", True)]
)
def test_a_closed_pipe_holds_a_script_only_if_it_is_not_blank(
    pipe: tuple[int, int], written: bytes, expected: bool
) -> None:
    read, write = pipe
    os.write(write, written)
    os.close(write)

    assert stdin_has_data(read, grace=0) is expected


def test_a_pipe_held_open_answers_without_waiting_for_its_end(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b"\n")  # blank so far, and the writer keeps the pipe open

    assert stdin_has_data(read, grace=0) is False
    os.write(write, b"echo hi")
    assert stdin_has_data(read, grace=0) is True


def test_an_empty_file_holds_no_script(tmp_path) -> None:
    empty, script = tmp_path / "empty", tmp_path / "script"
    empty.write_bytes(b"")
    script.write_bytes(b"date\n")

    with empty.open("rb") as nothing, script.open("rb") as something:
        assert stdin_has_data(nothing.fileno(), grace=0) is False
        assert stdin_has_data(something.fileno(), grace=0) is True

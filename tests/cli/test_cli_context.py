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


@pytest.mark.parametrize(("written", "expected"), [(b"", False), (b"date\n", True), (b"\n", True)])
def test_a_closed_pipe_holds_a_script_only_if_it_is_not_empty(
    pipe: tuple[int, int], written: bytes, expected: bool
) -> None:
    read, write = pipe
    os.write(write, written)
    os.close(write)

    assert stdin_has_data(read, grace=0) is expected
    assert os.read(read, 100) == written  # nothing was consumed


def test_a_pipe_held_open_and_silent_holds_nothing(pipe: tuple[int, int]) -> None:
    read, write = pipe

    assert stdin_has_data(read, grace=0) is False
    os.write(write, b"echo hi")  # the writer is still there: data counts without an end
    assert stdin_has_data(read, grace=0) is True


def test_a_file_holds_what_is_left_after_its_position(tmp_path) -> None:
    lines = tmp_path / "lines"
    lines.write_bytes(b"one\ntwo\n")
    (tmp_path / "empty").write_bytes(b"")

    with lines.open("rb") as rest, (tmp_path / "empty").open("rb") as nothing:
        assert stdin_has_data(nothing.fileno(), grace=0) is False
        assert stdin_has_data(rest.fileno(), grace=0) is True
        os.lseek(rest.fileno(), 0, os.SEEK_END)  # e.g. a `while read` loop at its last line
        assert stdin_has_data(rest.fileno(), grace=0) is False

"""The local engine's CloudWatch Logs: one file per log stream, one line per event.

A stream is named as Batch names it, `<job definition>/default/<unique>` (never with a `:`), and
lives at `<home>/logs/<stream>`. Each line is `<epoch ms>\\t<message>` with backslashes and
newlines escaped, so one line is always one event. `get_log_events` pages like GetLogEvents: with
no token it returns the head or the tail, `f/<n>` and `b/<n>` tokens (byte offsets of line
boundaries) page forward and backward, and the forward token comes back unchanged once the stream
is drained.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from batchkit.errors import UsageError
from batchkit.logmodel import LogEvents, LogPage
from batchkit.providers.local.private import private_dir

MAX_EVENTS = 10_000
"""GetLogEvents returns at most this many events per call (its default and maximum `limit`)."""
BLOCK = 1 << 16
"""Bytes read at a time while looking for line ends."""


_SPLIT_STAMP = operator.methodcaller("partition", "\t")
_FIRST = operator.itemgetter(0)
_LAST = operator.itemgetter(2)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _escape(message: str) -> bytes:
    return message.replace("\\", "\\\\").replace("\n", "\\n").encode("utf-8", "surrogateescape")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append("\n" if following == "n" else following)
        else:
            out.append(char)
    return "".join(out)


class FileLogSink:
    """`LogSink` appending to one stream file; safe to share between threads.

    The file is created by the first event (a job that prints nothing costs no file), then stays
    open (unbuffered: every event is one `write`, visible to readers at once) until the sink is
    garbage-collected or `close()`d."""

    def __init__(self, path: Path, *, clock: Callable[[], int] = _now_ms) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._path = path
        self._file: BinaryIO | None = None

    def append(self, message: str, timestamp: int | None = None) -> None:
        self.extend((message,), timestamp)

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        """Append `messages` in one `write` (a busy job's output costs a call per read, not per
        line)."""
        stamp = b"%d\t" % (self._clock() if timestamp is None else timestamp)
        data = b"".join(stamp + _escape(message) + b"\n" for message in messages)
        with self._lock:
            if self._file is None:
                private_dir(self._path.parent)
                fd = os.open(
                    self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                self._file = os.fdopen(fd, "ab", buffering=0)  # kept open
            self._file.write(data)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


class LogStore:
    """Every log stream of one local engine home."""

    def __init__(self, root: Path, *, clock: Callable[[], int] = _now_ms) -> None:
        self._root = root
        self._clock = clock

    @staticmethod
    def new_stream_name(job_definition: str) -> str:
        """A fresh stream name, `<job definition name>/default/<32 hex digits>`."""
        name = job_definition.split(":", 1)[0] or "batchkit-local"
        return f"{name}/default/{uuid.uuid4().hex}"

    def sink(self, stream: str) -> FileLogSink:
        return FileLogSink(self._path(stream), clock=self._clock)

    def get_log_events(
        self,
        stream: str,
        *,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        """One page of `stream`, with GetLogEvents' paging rules (see the module docstring).

        A page reads only its own lines (a tail reads backward from the end), so any page of a
        stream of any size costs about the same, in time and in memory."""
        size = MAX_EVENTS if limit is None else limit
        if not 1 <= size <= MAX_EVENTS:
            raise UsageError(
                f"log page limit {limit} is out of range", hint=f"use 1 to {MAX_EVENTS}"
            )
        forward = start_from_head
        position = 0
        if next_token is not None:
            direction, position = _parse_token(next_token)
            forward = direction == "f"
        start = end = 0
        data = b""
        with contextlib.suppress(FileNotFoundError), open(self._path(stream), "rb") as file:
            end_of_lines = _end_of_lines(file)
            if next_token is None and not forward:
                position = end_of_lines
            position = min(position, end_of_lines)
            if position and not _at_line_start(file, position):
                raise _bad_token(next_token or "")
            if forward:
                start, data = position, _read_forward(file, position, end_of_lines, size)
                end = start + len(data)
            else:
                end, data = position, _read_backward(file, position, size)
                start = end - len(data)
        return LogPage(
            events=_parse(data),
            next_forward_token=f"f/{end}",
            next_backward_token=f"b/{start}",
        )

    def _path(self, stream: str) -> Path:
        parts = stream.split("/")
        if any(part in ("", "..", ".") for part in parts):
            raise UsageError(f"invalid log stream name {stream!r}")
        return self._root.joinpath(*parts)


def _parse_token(token: str) -> tuple[str, int]:
    direction, _, number = token.partition("/")
    if direction not in ("f", "b") or not number.isdigit():
        raise _bad_token(token)
    return direction, int(number)


def _bad_token(token: str) -> UsageError:
    return UsageError(
        f"invalid log token {token!r}",
        hint="pass back a nextForwardToken or nextBackwardToken unchanged",
    )


def _at_line_start(file: BinaryIO, position: int) -> bool:
    """Whether `position` starts a line (every token this store hands out does)."""
    file.seek(position - 1)
    return file.read(1) == b"\n"


def _end_of_lines(file: BinaryIO) -> int:
    """The offset just after the stream's last complete line (a line still being written is not
    an event yet)."""
    size = file.seek(0, os.SEEK_END)
    position = size
    while position > 0:
        start = max(0, position - BLOCK)
        file.seek(start)
        block = file.read(position - start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def _read_forward(file: BinaryIO, start: int, stop: int, count: int) -> bytes:
    """The bytes of up to `count` complete lines from `start` (a line boundary) on, not past
    `stop`."""
    file.seek(start)
    parts: list[bytes] = []
    lines = 0
    remaining = stop - start
    while remaining > 0 and lines < count:
        block = file.read(min(BLOCK, remaining))
        if not block:
            break
        remaining -= len(block)
        found = block.count(b"\n")
        if lines + found >= count:  # cut just after the count-th line
            cut = -1
            for _ in range(count - lines):
                cut = block.index(b"\n", cut + 1)
            parts.append(block[: cut + 1])
            break
        lines += found
        parts.append(block)
    data = b"".join(parts)
    return data[: data.rfind(b"\n") + 1]


def _read_backward(file: BinaryIO, stop: int, count: int) -> bytes:
    """The bytes of up to `count` complete lines just before `stop` (a line boundary)."""
    parts: list[bytes] = []
    lines = 0
    position = stop
    while position > 0:
        start = max(0, position - BLOCK)
        file.seek(start)
        block = file.read(position - start)
        position = start
        # Every newline in the block ends a line; one before the newest `count` starts the page.
        found = block.count(b"\n") - (1 if not parts and block.endswith(b"\n") else 0)
        if lines + found >= count:
            cut = len(block) - (1 if not parts else 0)
            for _ in range(count - lines):
                cut = block.rindex(b"\n", 0, cut)
            parts.append(block[cut + 1 :])
            return b"".join(reversed(parts))
        lines += found
        parts.append(block)
    return b"".join(reversed(parts))


def _parse(data: bytes) -> LogEvents:
    """The events of complete lines, decoded and split in bulk: no Python code runs per line
    (unless a message holds a tab or needs unescaping)."""
    if not data:
        return LogEvents([], [])
    text = data.decode("utf-8", "replace")
    lines = text.count("\n")
    if text.count("\t") == lines:  # one tab a line, after the time: split both at once
        cells = text.replace("\t", "\n").split("\n")
        stamps, messages = cells[0:-1:2], cells[1::2]
    else:
        parts = list(map(_SPLIT_STAMP, text.split("\n")[:lines]))
        stamps, messages = list(map(_FIRST, parts)), list(map(_LAST, parts))
    if "\\" in text:
        messages = [_unescape(message) for message in messages]
    return LogEvents(stamps, messages)

"""The local engine's CloudWatch Logs: one file per log stream, one line per event.

A stream is named as Batch names it, `<job definition>/default/<unique>` (never with a `:`), and
lives at `<home>/logs/<stream>`. Each line is `<epoch ms>\\t<message>` with backslashes and
newlines escaped, so one line is always one event. `get_log_events` pages like GetLogEvents: with
no token it returns the head or the tail, `f/<n>` and `b/<n>` tokens page forward and backward, and
the forward token comes back unchanged once the stream is drained.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from batchkit.errors import UsageError
from batchkit.models import LogEvent, LogPage

MAX_EVENTS = 10_000
"""GetLogEvents returns at most this many events per call (its default and maximum `limit`)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _escape(message: str) -> bytes:
    return message.replace("\\", "\\\\").replace("\n", "\\n").encode("utf-8", "surrogateescape")


def _unescape(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
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

    The file stays open (unbuffered: every event is one `write`, visible to readers at once) and
    is closed when the sink is garbage-collected or `close()`d."""

    def __init__(self, path: Path, *, clock: Callable[[], int] = _now_ms) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - held for the sink's life

    def append(self, message: str, timestamp: int | None = None) -> None:
        self.extend((message,), timestamp)

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        """Append `messages` in one `write` (a busy job's output costs a call per read, not per
        line)."""
        stamp = b"%d\t" % (self._clock() if timestamp is None else timestamp)
        data = b"".join(stamp + _escape(message) + b"\n" for message in messages)
        with self._lock:
            self._file.write(data)

    def close(self) -> None:
        with self._lock:
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

    def events(self, stream: str) -> list[LogEvent]:
        """Every event of a stream, oldest first (empty if the stream does not exist)."""
        try:
            raw = self._path(stream).read_bytes()
        except FileNotFoundError:
            return []
        events: list[LogEvent] = []
        for line in raw.split(b"\n"):
            stamp, sep, message = line.partition(b"\t")
            if not sep:
                continue  # the last, still unterminated line, or the empty tail
            events.append(LogEvent(int(stamp), _unescape(message)))
        return events

    def get_log_events(
        self,
        stream: str,
        *,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        """One page of `stream`, with GetLogEvents' paging rules (see the module docstring)."""
        size = MAX_EVENTS if limit is None else limit
        if not 1 <= size <= MAX_EVENTS:
            raise UsageError(
                f"log page limit {limit} is out of range", hint=f"use 1 to {MAX_EVENTS}"
            )
        events = self.events(stream)
        total = len(events)
        if next_token is None:
            if start_from_head:
                start, end = 0, min(total, size)
            else:
                start, end = max(0, total - size), total
        else:
            direction, position = _parse_token(next_token)
            position = min(position, total)
            if direction == "f":
                start, end = position, min(total, position + size)
            else:
                start, end = max(0, position - size), position
        return LogPage(
            events=events[start:end],
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
        raise UsageError(
            f"invalid log token {token!r}",
            hint="pass back a nextForwardToken or nextBackwardToken unchanged",
        )
    return direction, int(number)

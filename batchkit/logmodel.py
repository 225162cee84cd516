"""A job's output as every provider returns it: log events (CloudWatch Logs' on AWS, a local log
stream's lines on the local engine) and the pages GetLogEvents returns them in.

Apart from the job model (`batchkit.models`): only what reads logs (`out`, `sub --follow`, the
API's logs) needs these, and a submission imports none of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, overload

from msgspec import Struct


class LogEvent(Struct, frozen=True):
    """One CloudWatch Logs event (or one line of a local log stream)."""

    timestamp: int
    message: str
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "message": self.message, "jobId": self.job_id}


class LogEvents(Sequence[LogEvent]):
    """Events kept as two columns, times and messages: a page of a large local stream costs two
    lists rather than an object per event (`LogEvent`s are made as they are read), and `out`
    prints from the columns a run of lines with the same time at a time (`runs`). The times may
    be kept as the digits they were read as."""

    __slots__ = ("_stamps", "messages")

    def __init__(self, timestamps: Sequence[int | str], messages: Sequence[str]) -> None:
        self._stamps = timestamps
        self.messages = messages

    @property
    def timestamps(self) -> list[int]:
        return list(map(int, self._stamps))

    def runs(self) -> Iterator[tuple[int, int, int]]:
        """(timestamp, start, end) of each run of consecutive events with the same time."""
        start = 0
        for stamp, run in itertools.groupby(self._stamps):
            end = start + len(list(run))
            yield int(stamp), start, end
            start = end

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> LogEvent: ...
    @overload
    def __getitem__(self, index: slice) -> LogEvents: ...
    def __getitem__(self, index: int | slice) -> LogEvent | LogEvents:
        if isinstance(index, slice):
            return LogEvents(self._stamps[index], self.messages[index])
        return LogEvent(int(self._stamps[index]), self.messages[index])

    def __iter__(self) -> Iterator[LogEvent]:
        return map(LogEvent, map(int, self._stamps), self.messages)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LogEvents({list(self)!r})"


class LogPage(Struct, frozen=True):
    """One page of GetLogEvents. `next_forward_token` repeats when the stream is drained."""

    events: Sequence[LogEvent]
    next_forward_token: str | None
    next_backward_token: str | None = None

"""Reading a job's output: head, tail, everything, or following it until the job ends.

awsbout's bugs are fixed here: the default prints every line (paging forward through the whole
stream, not just the last 10,000 events), following stops once the job is final and its stream is
drained, and an array or MNP parent shows its children's output (interleaved by time and labelled
with the child id when following). A job that has no stream yet is reported with its status and
reason, which is not an error. A retried job has one stream per attempt: the latest is read by
default (as awsbout), with a notice that there are others; `attempt=N` reads attempt N and
`attempt="all"` reads them all in order, each after an `AttemptStart`. Everything goes through the
`Provider` seam with an injected sleep and clock, so tests never wait for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from batchkit.errors import UsageError
from batchkit.jobs.query import describe_job
from batchkit.jobs.validation import check_attempt
from batchkit.models import Attempt, Job, LogEvent
from batchkit.providers.base import Provider

DEFAULT_PERIOD = 5.0
ALL_ATTEMPTS = "all"
AttemptChoice = int | Literal["all"] | None


@dataclass(frozen=True)
class LogLine:
    """One line of output of job `job_id`. `source` is set (to the same id) when the lines of
    several children or nodes are shown together and need a label."""

    event: LogEvent
    job_id: str
    source: str | None = None


@dataclass(frozen=True)
class NoStream:
    """The job has no log stream yet (not started) or never had one (cancelled before start)."""

    job: Job


@dataclass(frozen=True)
class AttemptStart:
    """The lines that follow belong to attempt `number` (1-based, as `AWS_BATCH_JOB_ATTEMPT`) of
    the `total` the job has had so far. `attempt` is None while that attempt is still running.
    `chosen` is False when the reader did not ask for attempts and is only told there are others.
    """

    job: Job
    number: int
    total: int
    attempt: Attempt | None
    chosen: bool = True


TailItem = LogLine | NoStream | AttemptStart


def attempt_streams(job: Job) -> list[tuple[str | None, Attempt | None]]:
    """One (log stream, finished attempt) pair per attempt of `job`, in order: its finished
    attempts, then the current one (attempt None) when its stream is not among them. Batch lists
    only finished attempts in `attempts`; the job's own stream is the latest attempt's."""
    pairs: list[tuple[str | None, Attempt | None]] = [(a.log_stream, a) for a in job.attempts]
    if job.log_stream and all(job.log_stream != a.log_stream for a in job.attempts):
        pairs.append((job.log_stream, None))
    return pairs


@dataclass
class _Cursor:
    stream: str
    group: str
    token: str | None = None


class LogTail:
    def __init__(
        self,
        provider: Provider,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        period: float = DEFAULT_PERIOD,
    ) -> None:
        self._provider = provider
        self._sleep = sleep
        self._clock = clock
        self.period = period

    def read(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        attempt: AttemptChoice = None,
    ) -> Iterator[TailItem]:
        """The output of `job_id`: its first `head` lines, its last `tail` lines, or all of it;
        with `follow`, then new lines as they come until the job has ended. `attempt`: which
        attempt of a retried job (default the latest; a number from 1, or "all")."""
        job = self._describe(job_id)
        if attempt is not None:
            _check_attempt_choice(job, attempt, follow)
        if job.is_parent:
            if follow:
                yield from self._follow_family(job, tail)
            else:
                for child in self._provider.list_children(job):
                    yield from self._read_once(child, head, tail, labelled=True)
        elif follow:
            yield from self._follow_one(job, tail)
        else:
            yield from self._read_attempts(job, head, tail, attempt)

    def _describe(self, job_id: str) -> Job:
        return describe_job(self._provider, job_id)

    def _read_attempts(
        self, job: Job, head: int | None, tail: int | None, choice: AttemptChoice
    ) -> Iterator[TailItem]:
        attempts = attempt_streams(job)
        total = len(attempts)
        if choice is None:
            if total > 1:
                yield AttemptStart(job, total, total, attempts[-1][1], chosen=False)
            yield from self._read_once(job, head, tail, labelled=False)
            return
        if choice == ALL_ATTEMPTS and not attempts:
            yield NoStream(job)
            return
        numbers = range(1, total + 1) if choice == ALL_ATTEMPTS else [int(choice)]
        if numbers[-1] > total:
            raise UsageError(
                f"job {job.job_id} has {_attempts_text(total)}, not {choice}",
                hint=f"see them with `batchkit stat -d {job.job_id}`",
            )
        for number in numbers:
            stream, finished = attempts[number - 1]
            yield AttemptStart(job, number, total, finished)
            yield from self._read_once(job, head, tail, labelled=False, stream=stream)

    def _read_once(
        self,
        job: Job,
        head: int | None,
        tail: int | None,
        *,
        labelled: bool,
        stream: str | None = None,
    ) -> Iterator[TailItem]:
        stream = stream or job.log_stream
        if not stream:
            yield NoStream(job)
            return
        cursor = _Cursor(stream, job.log_group)
        if head is not None:
            page = self._provider.get_log_events(
                cursor.stream, group=cursor.group, start_from_head=True, limit=head
            )
            events = page.events[:head]
        elif tail is not None:
            events = self._start_tail(cursor, tail)
        else:
            events = self._drain(cursor)
        for event in events:
            yield LogLine(event, job.job_id, job.job_id if labelled else None)

    def _start_tail(self, cursor: _Cursor, count: int) -> list[LogEvent]:
        page = self._provider.get_log_events(
            cursor.stream, group=cursor.group, start_from_head=False, limit=count
        )
        cursor.token = page.next_forward_token
        return page.events[-count:] if count else []

    def _drain(self, cursor: _Cursor) -> list[LogEvent]:
        """Every event after the cursor, following forward tokens until one repeats.

        Only a repeated token means "drained": CloudWatch Logs may return an empty page with a new
        token while later events exist."""
        events: list[LogEvent] = []
        while True:
            page = self._provider.get_log_events(
                cursor.stream, group=cursor.group, start_from_head=True, next_token=cursor.token
            )
            events.extend(page.events)
            token = page.next_forward_token
            if token is None or token == cursor.token:
                return events
            cursor.token = token

    def _follow_one(self, job: Job, tail: int | None) -> Iterator[TailItem]:
        cursor: _Cursor | None = None
        reported = False
        while True:
            started = self._clock()
            events: list[LogEvent] = []
            if job.log_stream and (cursor is None or cursor.stream != job.log_stream):
                # First stream, or a retry started a new attempt with a stream of its own.
                first = cursor is None
                if cursor is not None:
                    events.extend(self._drain(cursor))  # the end of the previous attempt
                    yield from (LogLine(event, job.job_id) for event in events)
                    events = []
                    attempts = attempt_streams(job)
                    yield AttemptStart(job, len(attempts), len(attempts), attempts[-1][1])
                elif len(attempts := attempt_streams(job)) > 1:
                    yield AttemptStart(job, len(attempts), len(attempts), None, chosen=False)
                cursor = _Cursor(job.log_stream, job.log_group)
                if first and tail is not None:
                    events.extend(self._start_tail(cursor, tail))
            if cursor is not None:
                events.extend(self._drain(cursor))
            elif not reported:
                reported = True
                yield NoStream(job)
            for event in events:
                yield LogLine(event, job.job_id)
            if job.status.is_final and not events and (cursor is not None or reported):
                return
            if not job.status.is_final:
                self._pause(started)
            job = self._describe(job.job_id)

    def _follow_family(self, parent: Job, tail: int | None) -> Iterator[TailItem]:
        cursors: dict[str, _Cursor] = {}
        reported = False
        while True:
            started = self._clock()
            batch: list[LogLine] = []
            for child in self._provider.list_children(parent):
                if not child.log_stream:
                    continue
                fresh: list[LogEvent] = []
                cursor = cursors.get(child.job_id)
                if cursor is None or cursor.stream != child.log_stream:
                    first = cursor is None
                    if cursor is not None:  # a retry: the end of the previous attempt first
                        fresh.extend(self._drain(cursor))
                    cursor = cursors[child.job_id] = _Cursor(child.log_stream, child.log_group)
                    if first and tail is not None:
                        fresh.extend(self._start_tail(cursor, tail))
                fresh.extend(self._drain(cursor))
                batch.extend(LogLine(event, child.job_id, child.job_id) for event in fresh)
            if not cursors and not reported:
                reported = True
                yield NoStream(parent)
            batch.sort(key=lambda line: line.event.timestamp)
            yield from batch
            if parent.status.is_final and not batch:
                return
            if not parent.status.is_final:
                self._pause(started)
            parent = self._describe(parent.job_id)

    def _pause(self, started: float) -> None:
        remaining = self.period - (self._clock() - started)
        if remaining > 0:
            self._sleep(remaining)


def _check_attempt_choice(job: Job, choice: int | str, follow: bool) -> None:
    if job.is_parent:
        raise UsageError(
            f"--attempt reads the attempts of one job, and {job.job_id} is an array or "
            "multi-node parent",
            hint=f"give a child id, e.g. `batchkit out --attempt {choice} {job.child_ids()[0]}`",
        )
    if follow:
        raise UsageError(
            "--attempt cannot be combined with -s/--stream",
            hint="-s follows the job across its attempts by itself",
        )
    check_attempt(choice)


def _attempts_text(total: int) -> str:
    return "no attempt yet" if total == 0 else f"{total} attempt" + ("s" if total > 1 else "")

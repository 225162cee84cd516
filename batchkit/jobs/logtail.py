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

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from batchkit.errors import UsageError
from batchkit.jobs.query import describe_job
from batchkit.jobs.validation import check_attempt
from batchkit.logmodel import LogEvent
from batchkit.models import Attempt, Job, JobKind
from batchkit.providers.base import Provider

if TYPE_CHECKING:
    from batchkit.jobs.waiting import StuckWatch

DEFAULT_PERIOD = 5.0
ALL_ATTEMPTS = "all"
AttemptChoice = int | Literal["all"] | None


class LogLine(Struct, frozen=True):
    """One line of output of job `job_id`. `source` is set (to the same id) when the lines of
    several children or nodes are shown together and need a label."""

    event: LogEvent
    job_id: str
    source: str | None = None


class LogBatch(Struct, frozen=True):
    """Consecutive lines of one job as they were read (a page): what `read_batches` yields
    instead of one `LogLine` each, so a reader can print a page at a time."""

    events: Sequence[LogEvent]
    job_id: str
    source: str | None = None

    def lines(self) -> Iterator[LogLine]:
        for event in self.events:
            yield LogLine(event, self.job_id, self.source)


class NoStream(Struct, frozen=True):
    """The job has no log stream yet (not started) or never had one (cancelled before start)."""

    job: Job


class AttemptStart(Struct, frozen=True):
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
BatchItem = LogBatch | LogLine | NoStream | AttemptStart


def attempt_streams(job: Job) -> list[tuple[str | None, Attempt | None]]:
    """One (log stream, finished attempt) pair per attempt of `job`, in order: its finished
    attempts, then the current one (attempt None) when its stream is not among them. Batch lists
    only finished attempts in `attempts`; the job's own stream is the latest attempt's."""
    pairs: list[tuple[str | None, Attempt | None]] = [(a.log_stream, a) for a in job.attempts]
    if job.log_stream and all(job.log_stream != a.log_stream for a in job.attempts):
        pairs.append((job.log_stream, None))
    return pairs


class _Cursor(Struct):
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
        period: float | None = None,
    ) -> None:
        self._provider = provider
        self._sleep = sleep
        self._clock = clock
        self.period = DEFAULT_PERIOD if period is None else period
        self._stuck: StuckWatch | None = None

    def read(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        attempt: AttemptChoice = None,
        stuck: StuckWatch | None = None,
    ) -> Iterator[TailItem]:
        """The output of `job_id`: its first `head` lines, its last `tail` lines, or all of it;
        with `follow`, then new lines as they come until the job has ended. `attempt`: which
        attempt of a retried job (default the latest; a number from 1, or "all"). `stuck` sees
        the job at every poll while following."""
        for item in self.read_batches(
            job_id, head=head, tail=tail, follow=follow, attempt=attempt, stuck=stuck
        ):
            if isinstance(item, LogBatch):
                yield from item.lines()
            else:
                yield item

    def read_batches(
        self,
        job_id: str,
        *,
        head: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        attempt: AttemptChoice = None,
        stuck: StuckWatch | None = None,
    ) -> Iterator[BatchItem]:
        """As `read`, with the lines of each page read together in a `LogBatch`: every page is
        yielded as soon as it is read, so memory stays at a page whatever the stream's size."""
        self._stuck = stuck
        job = self._describe(job_id)
        if attempt is not None:
            _check_attempt_choice(job, attempt, follow)
        if job.is_parent:
            if follow:
                yield from self._follow_family(job, tail)
            elif job.kind is JobKind.MNP_PARENT:
                yield from self._read_nodes(job, head, tail)
            else:
                for child in self._provider.list_children(job):
                    yield from self._read_once(child, head, tail, labelled=True)
        elif follow:
            yield from self._follow_one(job, tail)
        else:
            yield from self._read_attempts(job, head, tail, attempt)

    def _describe(self, job_id: str) -> Job:
        job = describe_job(self._provider, job_id)
        if self._stuck is not None:
            self._stuck.see(job)
        return job

    def _read_attempts(
        self, job: Job, head: int | None, tail: int | None, choice: AttemptChoice
    ) -> Iterator[BatchItem]:
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
    ) -> Iterator[BatchItem]:
        stream = stream or job.log_stream
        if not stream:
            yield NoStream(job)
            return
        source = job.job_id if labelled else None
        for events in self._selected_pages(_Cursor(stream, job.log_group), head, tail):
            yield LogBatch(events, job.job_id, source)

    def _read_nodes(self, parent: Job, head: int | None, tail: int | None) -> Iterator[BatchItem]:
        """A multi-node job's nodes, their lines merged by time as the nodes printed them
        together (lazily: a page per node); each node's first `head` or last `tail` lines."""
        streams: list[Iterator[LogLine]] = []
        silent: list[NoStream] = []
        for node in self._provider.list_children(parent):
            if node.log_stream:
                cursor = _Cursor(node.log_stream, node.log_group)
                streams.append(_labelled(self._selected_pages(cursor, head, tail), node.job_id))
            else:
                silent.append(NoStream(node))
        yield from heapq.merge(*streams, key=_line_time)
        yield from silent  # the nodes that printed nothing, after those that did

    def _selected_pages(
        self, cursor: _Cursor, head: int | None, tail: int | None
    ) -> Iterable[Sequence[LogEvent]]:
        """The events of one stream that were asked for: its first `head` (one page read from the
        start) or its last `tail` (one page read backward from the end: `startFromHead` false
        returns the latest events, CloudWatch Logs API reference, GetLogEvents), both read now,
        or else every page, each read as it is reached (`_pages`), so memory stays at a page."""
        if head is not None:
            page = self._provider.get_log_events(
                cursor.stream, group=cursor.group, start_from_head=True, limit=head
            )
            return [page.events[:head]]
        if tail is not None:
            return [self._start_tail(cursor, tail)]
        return self._pages(cursor)

    def _start_tail(self, cursor: _Cursor, count: int) -> Sequence[LogEvent]:
        page = self._provider.get_log_events(
            cursor.stream, group=cursor.group, start_from_head=False, limit=count
        )
        cursor.token = page.next_forward_token
        return page.events[-count:] if count else []

    def _pages(self, cursor: _Cursor) -> Iterator[Sequence[LogEvent]]:
        """The pages after the cursor, each as soon as it is read, following forward tokens
        until one repeats (the cursor moves along).

        Only a repeated token means "drained": CloudWatch Logs may return an empty page with a new
        token while later events exist."""
        while True:
            page = self._provider.get_log_events(
                cursor.stream, group=cursor.group, start_from_head=True, next_token=cursor.token
            )
            if page.events:
                yield page.events
            token = page.next_forward_token
            if token is None or token == cursor.token:
                return
            cursor.token = token

    def _lines(
        self, cursor: _Cursor, job_id: str, first: Sequence[LogEvent] = ()
    ) -> Iterator[LogLine]:
        """`first`, then the lines after the cursor, one at a time, labelled with `job_id`."""
        return _labelled(itertools.chain([first], self._pages(cursor)), job_id)

    def _follow_one(self, job: Job, tail: int | None) -> Iterator[BatchItem]:
        cursor: _Cursor | None = None
        reported = False
        while True:
            started = self._clock()
            printed = False
            if job.log_stream and (cursor is None or cursor.stream != job.log_stream):
                # First stream, or a retry started a new attempt with a stream of its own.
                first = cursor is None
                if cursor is not None:
                    for events in self._pages(cursor):  # the end of the previous attempt
                        printed = True
                        yield LogBatch(events, job.job_id)
                    attempts = attempt_streams(job)
                    yield AttemptStart(job, len(attempts), len(attempts), attempts[-1][1])
                elif len(attempts := attempt_streams(job)) > 1:
                    yield AttemptStart(job, len(attempts), len(attempts), None, chosen=False)
                cursor = _Cursor(job.log_stream, job.log_group)
                if first and tail is not None:
                    events = self._start_tail(cursor, tail)
                    printed = printed or bool(events)
                    yield LogBatch(events, job.job_id)
            if cursor is not None:
                for events in self._pages(cursor):
                    printed = True
                    yield LogBatch(events, job.job_id)
            elif not reported:
                reported = True
                yield NoStream(job)
            if job.status.is_final and not printed and (cursor is not None or reported):
                return
            if not job.status.is_final:
                self._pause(started)
            job = self._describe(job.job_id)

    def _follow_family(self, parent: Job, tail: int | None) -> Iterator[BatchItem]:
        """The children's new lines at each poll, merged by time (lazily: a page per child)."""
        cursors: dict[str, _Cursor] = {}
        reported = False
        while True:
            started = self._clock()
            streams: list[Iterator[LogLine]] = []
            for child in self._provider.list_children(parent):
                if not child.log_stream:
                    continue
                cursor = cursors.get(child.job_id)
                if cursor is None or cursor.stream != child.log_stream:
                    if cursor is not None:  # a retry: the end of the previous attempt first
                        streams.append(self._lines(cursor, child.job_id))
                    first = cursor is None
                    cursor = cursors[child.job_id] = _Cursor(child.log_stream, child.log_group)
                    if first and tail is not None:
                        head = self._start_tail(cursor, tail)
                        streams.append(self._lines(cursor, child.job_id, head))
                        continue
                streams.append(self._lines(cursor, child.job_id))
            if not cursors and not reported:
                reported = True
                yield NoStream(parent)
            printed = False
            for line in heapq.merge(*streams, key=_line_time):
                printed = True
                yield line
            if parent.status.is_final and not printed:
                return
            if not parent.status.is_final:
                self._pause(started)
            parent = self._describe(parent.job_id)

    def _pause(self, started: float) -> None:
        remaining = self.period - (self._clock() - started)
        if remaining > 0:
            self._sleep(remaining)


def _labelled(pages: Iterable[Sequence[LogEvent]], job_id: str) -> Iterator[LogLine]:
    """The events of `pages`, one line at a time as the pages are read, labelled with `job_id`."""
    return (LogLine(event, job_id, job_id) for events in pages for event in events)


def _line_time(line: LogLine) -> int:
    return line.event.timestamp


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

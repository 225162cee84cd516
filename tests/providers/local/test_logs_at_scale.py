"""Large local log streams: every page boundary, head and tail, and `out` of a real job's large
output (all of it, its head, its tail, each attempt of a retried job, and a follow that runs while
the job prints and retries) complete and in order."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from batchkit.jobs.logtail import AttemptStart, LogBatch, LogLine, LogTail, NoStream
from batchkit.logmodel import LogEvents
from batchkit.models import JobStatus, Resources
from batchkit.providers.local.logs import MAX_EVENTS, LogStore
from tests.fixtures.local_engine import Engine, FakeClock, sh

ODD = ["tab\there", "back\\slash", "two\nlines", "ünïcødé", "", "\\n not a newline", "end\\"]


def _message(i: int) -> str:
    return f"line {i} {ODD[i % len(ODD)]}"


@pytest.fixture
def big(tmp_path: Path) -> tuple[LogStore, str, list[str]]:
    """A stream of 25,003 events written in uneven bursts, then half a line still being written."""
    store = LogStore(tmp_path / "logs", clock=FakeClock())
    stream = "s/default/big"
    messages = [_message(i) for i in range(25_003)]
    sink = store.sink(stream)
    sizes = itertools.cycle([1, 7, 1000, 3333, 2])
    start = 0
    while start < len(messages):
        end = min(len(messages), start + next(sizes))
        sink.extend(messages[start:end], 1_000 + start)
        start = end
    with (tmp_path / "logs" / "s" / "default" / "big").open("ab") as file:
        file.write(b"99999\tnot finished yet")  # no newline: not an event yet
    return store, stream, messages


def test_forward_pages_of_every_size_are_complete_and_in_order(
    big: tuple[LogStore, str, list[str]],
) -> None:
    store, stream, messages = big
    for limit in (None, 997, MAX_EVENTS):
        seen: list[str] = []
        page = store.get_log_events(stream, limit=limit)
        while page.events:
            seen += [e.message for e in page.events]
            token = page.next_forward_token
            page = store.get_log_events(stream, limit=limit, next_token=token)
            if limit is None and page.events:
                assert len(seen) % MAX_EVENTS == 0, "every full page holds the maximum"
        assert seen == messages
        assert page.next_forward_token == token


def test_backward_pages_from_the_tail_are_complete_and_in_order(
    big: tuple[LogStore, str, list[str]],
) -> None:
    store, stream, messages = big
    for limit in (20, 4_999, MAX_EVENTS):
        seen: list[str] = []
        page = store.get_log_events(stream, start_from_head=False, limit=limit)
        assert len(page.events) == min(limit, len(messages))
        while page.events:
            seen = [e.message for e in page.events] + seen
            page = store.get_log_events(stream, limit=limit, next_token=page.next_backward_token)
        assert seen == messages


def test_head_and_tail_pages_carry_times_and_messages(
    big: tuple[LogStore, str, list[str]],
) -> None:
    store, stream, messages = big
    tail = store.get_log_events(stream, start_from_head=False, limit=20)
    assert [e.message for e in tail.events] == messages[-20:]
    assert isinstance(tail.events, LogEvents)
    assert tail.events[-1].timestamp == tail.events.timestamps[-1] >= 1_000
    head = store.get_log_events(stream, limit=3)
    assert [(e.timestamp, e.message) for e in head.events] == [
        (1_000, messages[0]),
        (1_001, messages[1]),
        (1_001, messages[2]),
    ]
    # The forward token of the tail sees what is appended next, and only that.
    store.sink(stream).append("after")
    more = store.get_log_events(stream, next_token=tail.next_forward_token)
    [event] = more.events  # the half line, finished by the next event's stamp and message
    assert (event.timestamp, event.message) == (99999, f"not finished yet{FakeClock()()}\tafter")


def _lines(items: list[object]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, LogBatch):
            out += [e.message for e in item.events]
        elif isinstance(item, LogLine):
            out.append(item.event.message)
        elif isinstance(item, AttemptStart):
            out.append(f"<attempt {item.number}>")
        elif isinstance(item, NoStream):
            out.append("<no stream>")
    return out


RETRIED = "seq 1 12000; [ -e {flag} ] && exit 0; touch {flag}; exit 3"


def test_out_of_a_large_retried_job_from_head_tail_and_every_attempt(
    engine: Engine, tmp_path: Path
) -> None:
    flag = tmp_path / "second"
    job = engine.submit(sh(RETRIED.format(flag=flag), retry_attempts=2))
    (done,) = engine.settle(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and len(done.attempts) == 2
    numbers = [str(i) for i in range(1, 12_001)]
    tail = LogTail(engine.provider)

    latest = _lines(list(tail.read_batches(job.job_id)))
    assert latest == ["<attempt 2>", *numbers]
    assert _lines(list(tail.read(job.job_id))) == latest
    assert _lines(list(tail.read_batches(job.job_id, tail=20))) == ["<attempt 2>", *numbers[-20:]]
    assert _lines(list(tail.read_batches(job.job_id, head=20))) == ["<attempt 2>", *numbers[:20]]
    every = _lines(list(tail.read_batches(job.job_id, attempt="all")))
    assert every == ["<attempt 1>", *numbers, "<attempt 2>", *numbers]


def test_follow_while_a_large_job_prints_and_retries_misses_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    flag = tmp_path / "second"
    job = engine.submit(sh(RETRIED.format(flag=flag), retry_attempts=2))

    def tick(_: float) -> None:  # each poll of the follow lets the engine run a pass
        engine.clock.advance(0.001)
        engine.scheduler.tick()

    follow = LogTail(engine.provider, sleep=tick, clock=lambda: 0.0, period=0.01)
    seen = _lines(list(follow.read_batches(job.job_id, follow=True)))
    numbers = [str(i) for i in range(1, 12_001)]
    assert seen[0] == "<no stream>"
    assert seen[1:] == [*numbers, "<attempt 2>", *numbers]


def test_follow_of_an_array_interleaves_children_completely(engine: Engine) -> None:
    job = engine.submit(sh('seq 1 3000 | sed "s/^/$AWS_BATCH_JOB_ARRAY_INDEX-/"', array_size=3))

    def tick(_: float) -> None:
        engine.clock.advance(0.001)
        engine.scheduler.tick()

    follow = LogTail(engine.provider, sleep=tick, clock=lambda: 0.0, period=0.01)
    items = list(follow.read_batches(job.job_id, follow=True))
    lines = [i for i in items if isinstance(i, LogLine)]
    times = [line.event.timestamp for line in lines]
    assert times == sorted(times), "merged by time"
    for index in range(3):
        mine = [line.event.message for line in lines if line.source == f"{job.job_id}:{index}"]
        assert mine == [f"{index}-{i}" for i in range(1, 3001)]


def test_out_of_a_large_multinode_job_all_head_and_tail_by_node(
    engine: Engine, tmp_path: Path
) -> None:
    """Each node's lines complete and in order, merged by time; head and tail are each node's,
    the tail read backward from each stream's end and nothing read a stream whole at once."""
    # Each node prints, then says so; the main node ends the job, so it waits for the others.
    d = tmp_path
    script = (
        f'i=$AWS_BATCH_JOB_NODE_INDEX; seq 1 3000 | sed "s/^/$i-/"; touch {d}/$i; '
        f'[ "$i" != 0 ] || until [ -e {d}/1 ] && [ -e {d}/2 ]; do sleep 0.01; done'
    )
    job = engine.submit(sh(script, nodes=3, resources=Resources(vcpus=0.5, memory=128)))
    (done,) = engine.settle(job.job_id)
    assert done.status is JobStatus.SUCCEEDED
    provider = engine.provider
    asked: list[tuple[bool, int | None]] = []
    real = provider.get_log_events

    def recorded(stream, **kw):
        page = real(stream, **kw)
        asked.append((kw.get("start_from_head", True), kw.get("limit")))
        assert len(page.events) <= MAX_EVENTS
        return page

    provider.get_log_events = recorded  # type: ignore[method-assign]
    tail = LogTail(provider)

    for kwargs, numbers in (
        ({}, range(1, 3001)),
        ({"head": 20}, range(1, 21)),
        ({"tail": 20}, range(2981, 3001)),
    ):
        asked.clear()
        lines = [i for i in tail.read_batches(job.job_id, **kwargs) if isinstance(i, LogLine)]
        times = [line.event.timestamp for line in lines]
        assert times == sorted(times), "merged by time"
        for index in range(3):
            mine = [line.event.message for line in lines if line.source == f"{job.job_id}#{index}"]
            assert mine == [f"{index}-{i}" for i in numbers]
        if kwargs:
            [(flag, count)] = kwargs.items()
            assert asked == [(flag == "head", count)] * 3

"""Reading output: everything by default, head, tail, and following that ends when the job does."""

from __future__ import annotations

import pytest

from batchkit.errors import UsageError
from batchkit.jobs.logtail import AttemptStart, LogBatch, LogLine, LogTail, NoStream
from batchkit.logmodel import LogEvent, LogPage
from batchkit.models import Job, JobStatus
from tests.jobs.fakes import FakeProvider


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def messages(items) -> list[str]:
    return [_text(i) for i in items]


def _text(item) -> str:
    if isinstance(item, LogLine):
        return item.event.message
    if isinstance(item, AttemptStart):
        return f"<attempt {item.number}/{item.total}{'' if item.chosen else ' notice'}>"
    return f"<{item.job.status.value}>"


def finished_job(lines: int) -> FakeProvider:
    fake = FakeProvider(page_size=3)
    fake.add(Job("j", "n", JobStatus.SUBMITTED))
    fake.start("j")
    fake.log("j", *[f"line {i}" for i in range(lines)])
    fake.finish("j")
    return fake


def test_default_prints_every_line_across_pages() -> None:
    fake = finished_job(20_005)
    fake.page_size = 10_000

    out = messages(LogTail(fake).read("j"))

    assert len(out) == 20_005
    assert out[0] == "line 0" and out[-1] == "line 20004"


def test_head_and_tail() -> None:
    fake = finished_job(10)

    assert messages(LogTail(fake).read("j", head=2)) == ["line 0", "line 1"]
    assert messages(LogTail(fake).read("j", tail=2)) == ["line 8", "line 9"]


def test_job_without_stream_reports_its_status() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.RUNNABLE, status_reason="waiting for capacity"))

    [item] = list(LogTail(fake).read("j"))

    assert isinstance(item, NoStream)
    assert item.job.status_reason == "waiting for capacity"


def test_follow_ends_when_the_job_is_final_and_drained() -> None:
    fake = FakeProvider(page_size=2)
    fake.add(Job("j", "n", JobStatus.RUNNABLE))
    steps = iter(
        [
            lambda: None,
            lambda: (fake.start("j"), fake.log("j", "a", "b", "c")),
            lambda: fake.log("j", "d"),
            lambda: (fake.log("j", "e"), fake.finish("j")),
        ]
    )
    time = FakeTime()

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        next(steps, lambda: None)()

    out = messages(LogTail(fake, sleep=sleep, clock=time.clock, period=5).read("j", follow=True))

    assert out == ["<RUNNABLE>", "a", "b", "c", "d", "e"]
    assert time.sleeps == [5, 5, 5, 5]


def test_follow_with_tail_starts_from_the_last_lines() -> None:
    fake = finished_job(10)

    assert messages(LogTail(fake, sleep=lambda s: None).read("j", tail=3, follow=True)) == [
        "line 7",
        "line 8",
        "line 9",
    ]


def test_follow_a_parent_interleaves_children_with_their_ids() -> None:
    fake = FakeProvider()
    fake.add(Job("p", "arr", JobStatus.RUNNING, array_size=2))
    for child in ("p:0", "p:1"):
        fake.start(child)
    fake.log("p:0", "zero-a")
    fake.log("p:1", "one-a")
    fake.log("p:0", "zero-b")
    time = FakeTime()

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        fake.finish("p:0")
        fake.finish("p:1")
        fake.set("p", status=JobStatus.SUCCEEDED)

    items = list(LogTail(fake, sleep=sleep, clock=time.clock).read("p", follow=True))

    assert [(i.source, i.event.message) for i in items] == [
        ("p:0", "zero-a"),
        ("p:1", "one-a"),
        ("p:0", "zero-b"),
    ]
    assert len(time.sleeps) == 1


def test_a_parent_without_follow_shows_each_child() -> None:
    fake = FakeProvider()
    fake.add(Job("p", "mnp", JobStatus.SUCCEEDED, nodes=2))
    fake.start("p#0")
    fake.log("p#0", "main")

    items = list(LogTail(fake).read("p"))

    assert isinstance(items[0], LogLine) and items[0].source == "p#0"
    assert isinstance(items[1], NoStream) and items[1].job.job_id == "p#1"


def test_a_multinode_job_interleaves_its_nodes_by_time_across_pages() -> None:
    """`out` of a multi-node job reads as its nodes printed together (mpirun's ranks print on
    the main node while the others print theirs); each node's lines keep their order, a node
    is read a page at a time, and head and tail are each node's."""
    fake = FakeProvider(page_size=2)
    fake.add(Job("p", "mnp", JobStatus.RUNNING, nodes=3))
    for node in ("p#0", "p#1", "p#2"):
        fake.start(node)
    fake.log("p#0", "0-a")
    fake.log("p#1", "1-a")
    fake.log("p#0", "0-b", "0-c")
    fake.log("p#2", "2-a")
    fake.log("p#1", "1-b")
    fake.log("p#0", "0-d")

    def read(**kwargs: int) -> list[tuple[str | None, str]]:
        items = list(LogTail(fake).read("p", **kwargs))
        return [(i.source, i.event.message) for i in items if isinstance(i, LogLine)]

    assert read() == [
        ("p#0", "0-a"),
        ("p#1", "1-a"),
        ("p#0", "0-b"),
        ("p#0", "0-c"),
        ("p#2", "2-a"),
        ("p#1", "1-b"),
        ("p#0", "0-d"),
    ]
    assert read(head=1) == [("p#0", "0-a"), ("p#1", "1-a"), ("p#2", "2-a")]
    assert read(tail=1) == [("p#2", "2-a"), ("p#1", "1-b"), ("p#0", "0-d")]


def test_an_array_without_follow_shows_one_child_after_another() -> None:
    fake = FakeProvider()
    fake.add(Job("p", "arr", JobStatus.SUCCEEDED, array_size=2))
    for child in ("p:0", "p:1"):
        fake.start(child)
    fake.log("p:0", "zero-a")
    fake.log("p:1", "one-a")
    fake.log("p:0", "zero-b")

    items = list(LogTail(fake).read("p"))

    assert [(i.source, i.event.message) for i in items] == [
        ("p:0", "zero-a"),
        ("p:0", "zero-b"),
        ("p:1", "one-a"),
    ]


def test_an_empty_page_with_a_new_token_is_not_the_end() -> None:
    fake = finished_job(4)
    real = fake.get_log_events
    served: list[str | None] = []

    def sparse(stream, **kw):
        served.append(kw.get("next_token"))
        if len(served) == 1:  # CloudWatch may answer a first page with nothing but a token
            return LogPage([], "f/0")
        return real(stream, **kw)

    fake.get_log_events = sparse

    assert messages(LogTail(fake).read("j")) == ["line 0", "line 1", "line 2", "line 3"]


def retried_job() -> FakeProvider:
    """Attempt 1 exits 3, attempt 2 is reclaimed, attempt 3 succeeds."""
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.SUBMITTED, retry_attempts=3))
    fake.start("j")
    fake.log("j", "first try")
    fake.retry("j", 3, "Essential container in task exited")
    fake.log("j", "second try")
    fake.retry("j", 137, "Host EC2 (instance i-1) terminated.")
    fake.log("j", "third try")
    fake.finish("j")
    return fake


def test_a_retried_job_shows_its_latest_attempt_and_says_there_are_others() -> None:
    assert messages(LogTail(retried_job()).read("j")) == ["<attempt 3/3 notice>", "third try"]
    assert messages(LogTail(finished_job(1)).read("j")) == ["line 0"]  # one attempt: no notice


def test_one_attempt_or_all_of_them_in_order() -> None:
    fake = retried_job()

    assert messages(LogTail(fake).read("j", attempt=1)) == ["<attempt 1/3>", "first try"]
    items = list(LogTail(fake).read("j", attempt="all", tail=1))
    assert messages(items) == [
        "<attempt 1/3>", "first try", "<attempt 2/3>", "second try", "<attempt 3/3>", "third try"
    ]  # fmt: skip
    assert items[2].attempt.status_reason == "Host EC2 (instance i-1) terminated."


def test_all_attempts_of_a_job_not_started_is_its_status() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.RUNNABLE))

    assert messages(LogTail(fake).read("j", attempt="all")) == ["<RUNNABLE>"]


def test_the_attempt_of_a_running_job_is_its_current_stream() -> None:
    fake = retried_job()
    fake.set("j", status=JobStatus.RUNNING, attempts=fake.jobs["j"].attempts[:1])

    [header, line] = LogTail(fake).read("j", attempt=2)

    assert (header.number, header.total, header.attempt) == (2, 2, None)
    assert line.event.message == "third try"


@pytest.mark.parametrize(
    ("job_id", "kwargs", "needle"),
    [
        ("j", {"attempt": 4}, "job j has 3 attempts, not 4"),
        ("j", {"attempt": 0}, "--attempt must be a number from 1"),
        ("j", {"attempt": 1, "follow": True}, "-s/--stream"),
        ("p", {"attempt": 1}, "p is an array or multi-node parent"),
    ],
)
def test_attempts_that_cannot_be_read(job_id: str, kwargs: dict, needle: str) -> None:
    fake = retried_job()
    fake.add(Job("p", "arr", JobStatus.SUCCEEDED, array_size=2))

    with pytest.raises(UsageError, match=needle) as caught:
        list(LogTail(fake).read(job_id, **kwargs))
    assert caught.value.hint


def test_follow_keeps_the_end_of_an_attempt_and_marks_the_next() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.SUBMITTED, retry_attempts=2))
    fake.start("j")
    fake.log("j", "a1")
    steps = iter(
        [
            # attempt 1 writes its last line and is retried between two polls
            lambda: (fake.log("j", "a1-last"), fake.retry("j", 1, "failed"), fake.log("j", "a2")),
            lambda: fake.finish("j"),
        ]
    )

    out = messages(LogTail(fake, sleep=lambda s: next(steps)()).read("j", follow=True))

    assert out == ["a1", "a1-last", "<attempt 2/2>", "a2"]


def test_following_a_parent_keeps_the_end_of_a_retried_child() -> None:
    fake = FakeProvider()
    fake.add(Job("p", "arr", JobStatus.RUNNING, array_size=2))
    fake.start("p:0")
    fake.log("p:0", "a1")

    def sleep(_seconds: float) -> None:
        if not fake.jobs["p:0"].attempts:
            fake.log("p:0", "a1-last")
            fake.retry("p:0", 1, "failed")
            fake.log("p:0", "a2")
        else:
            fake.set("p", status=JobStatus.SUCCEEDED)

    items = LogTail(fake, sleep=sleep).read("p", follow=True)

    assert [(i.source, i.event.message) for i in items] == [
        ("p:0", "a1"),
        ("p:0", "a1-last"),
        ("p:0", "a2"),
    ]


def test_each_page_is_yielded_before_the_next_is_asked_for() -> None:
    """`out` prints a page as it arrives (memory stays at a page, on AWS as locally)."""
    fake = finished_job(10)
    pages = LogTail(fake).read_batches("j")
    first = next(pages)
    assert isinstance(first, LogBatch)
    assert [e.message for e in first.events] == ["line 0", "line 1", "line 2"]
    asked = fake.calls.count("get_log_events")
    assert asked == 1
    rest = [e.message for item in pages if isinstance(item, LogBatch) for e in item.events]
    assert rest == [f"line {i}" for i in range(3, 10)]
    assert fake.calls.count("get_log_events") == 5  # 4 pages, then the repeated token


def nodes_job(streams: dict[str, list[tuple[int, str]]], nodes: int = 3) -> FakeProvider:
    """A finished multi-node job `p` whose nodes printed `streams` (node id → (time, message));
    a node not in `streams` never started, so it has no stream."""
    fake = FakeProvider(page_size=10)
    fake.add(Job("p", "mnp", JobStatus.SUCCEEDED, nodes=nodes))
    for node, events in streams.items():
        fake.start(node)
        fake.streams[f"stream/{node}"] = [LogEvent(stamp, text) for stamp, text in events]
    return fake


def node_lines(fake: FakeProvider, **kwargs: int) -> list[object]:
    """What `read_batches` yields for `p`: (node, message) per line, the job id of a `NoStream`."""
    shown: list[object] = []
    for item in LogTail(fake).read_batches("p", **kwargs):
        if isinstance(item, LogLine):
            shown.append((item.source, item.event.message))
        elif isinstance(item, NoStream):
            shown.append(item.job.job_id)
        else:
            raise AssertionError(f"a multi-node job's output comes a line at a time, not {item}")
    return shown


INTERLEAVED = {
    "p#0": [(1, "0-a"), (4, "0-b"), (5, "0-c"), (9, "0-d"), (12, "0-e")],
    "p#1": [(2, "1-a"), (6, "1-b"), (10, "1-c"), (11, "1-d")],
    "p#2": [(3, "2-a"), (7, "2-b"), (8, "2-c")],
}
EVERY = ["0-a", "1-a", "2-a", "0-b", "0-c", "1-b", "2-b", "2-c", "0-d", "1-c", "1-d", "0-e"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"head": 2}, ["0-a", "1-a", "2-a", "0-b", "1-b", "2-b"]),
        ({"head": 3}, ["0-a", "1-a", "2-a", "0-b", "0-c", "1-b", "2-b", "2-c", "1-c"]),
        ({"tail": 2}, ["2-b", "2-c", "0-d", "1-c", "1-d", "0-e"]),
        ({"tail": 3}, ["2-a", "0-c", "1-b", "2-b", "2-c", "0-d", "1-c", "1-d", "0-e"]),
        ({"head": 10}, EVERY),
        ({"tail": 10}, EVERY),
    ],
)
def test_head_and_tail_of_interleaved_nodes_are_each_nodes_merged_by_time(
    kwargs: dict[str, int], expected: list[str]
) -> None:
    fake = nodes_job(INTERLEAVED)
    asked: list[dict[str, object]] = []
    real = fake.get_log_events

    def recorded(stream, **kw):
        asked.append({"stream": stream, **kw})
        return real(stream, **kw)

    fake.get_log_events = recorded

    shown = node_lines(fake, **kwargs)

    assert [message for _, message in shown] == expected
    assert all(source == f"p#{message[0]}" for source, message in shown)
    # One read per node: the first N from the head, or the last N backward from the end.
    [(flag, count)] = kwargs.items()
    assert [(a["stream"], a["start_from_head"], a["limit"]) for a in asked] == [
        (f"stream/p#{n}", flag == "head", count) for n in range(3)
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["0-a", "1-a", "2-a", "1-b", "0-b", "0-c", "1-c", "2-b"]),
        ({"head": 2}, ["0-a", "1-a", "2-a", "1-b", "0-b", "2-b"]),
        ({"tail": 2}, ["2-a", "1-b", "0-b", "0-c", "1-c", "2-b"]),
    ],
)
def test_lines_of_several_nodes_at_the_same_time_come_in_node_order(
    kwargs: dict[str, int], expected: list[str]
) -> None:
    """Lines stamped the same millisecond keep each node's order, and the nodes' order between
    nodes (the merge is stable), under head and tail as without them."""
    fake = nodes_job(
        {
            "p#0": [(5, "0-a"), (7, "0-b"), (7, "0-c")],
            "p#1": [(5, "1-a"), (6, "1-b"), (7, "1-c")],
            "p#2": [(5, "2-a"), (8, "2-b")],
        }
    )

    assert [message for _, message in node_lines(fake, **kwargs)] == expected


@pytest.mark.parametrize("kwargs", [{}, {"head": 2}, {"tail": 2}])
def test_nodes_that_printed_nothing_come_after_the_lines_of_those_that_did(
    kwargs: dict[str, int],
) -> None:
    """A node without a stream (never started) is reported after every line, in node order; a
    node whose stream is empty shows nothing, and neither stops the others' lines."""
    fake = nodes_job({"p#1": [], "p#2": [(1, "2-a"), (2, "2-b")]}, nodes=4)

    assert node_lines(fake, **kwargs) == [("p#2", "2-a"), ("p#2", "2-b"), "p#0", "p#3"]


def test_a_multinode_job_is_read_a_page_per_node_at_a_time() -> None:
    """Without head or tail the nodes are merged lazily: the first line is yielded after one page
    of each node, and the rest are asked for as the merge needs them, a page at a time."""
    fake = nodes_job({f"p#{n}": [(10 * i + n, f"{n}-{i}") for i in range(7)] for n in range(3)})
    fake.page_size = 2

    lines = LogTail(fake).read_batches("p")
    first = next(lines)

    assert isinstance(first, LogLine) and first.event.message == "0-0"
    assert fake.calls.count("get_log_events") == 3
    rest = [item.event.message for item in lines if isinstance(item, LogLine)]
    assert rest == [f"{n}-{i}" for i in range(7) for n in range(3)][1:]
    assert fake.calls.count("get_log_events") == 3 * 5  # 4 pages of 2, then the repeated token


def test_following_a_multinode_job_from_its_tail_merges_the_nodes_then_their_new_lines() -> None:
    fake = nodes_job(
        {"p#0": [(1, "0-a"), (4, "0-b"), (6, "0-c")], "p#1": [(2, "1-a"), (3, "1-b"), (5, "1-c")]},
        nodes=2,
    )
    fake.set("p", status=JobStatus.RUNNING)

    def sleep(_seconds: float) -> None:
        fake.streams["stream/p#1"].append(LogEvent(7, "1-d"))
        fake.streams["stream/p#0"].append(LogEvent(8, "0-d"))
        fake.set("p", status=JobStatus.SUCCEEDED)

    items = LogTail(fake, sleep=sleep).read("p", tail=2, follow=True)

    assert [(i.source, i.event.message) for i in items] == [
        ("p#1", "1-b"),
        ("p#0", "0-b"),
        ("p#1", "1-c"),
        ("p#0", "0-c"),
        ("p#1", "1-d"),
        ("p#0", "0-d"),
    ]

"""Log streams: GetLogEvents paging (head, tail, forward and backward tokens, the forward token
that repeats once drained), escaping, and streams written by real jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.errors import UsageError
from batchkit.providers.local.logs import LogStore
from tests.fixtures.local_engine import Engine, FakeClock, sh


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path / "logs", clock=FakeClock())


def _fill(store: LogStore, stream: str, count: int) -> None:
    sink = store.sink(stream)
    for i in range(count):
        sink.append(f"line {i}", 1000 + i)


def _messages(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.message for e in page.events]


def test_stream_names_look_like_batchs_and_never_contain_a_colon() -> None:
    name = LogStore.new_stream_name("batchkit-local:1")
    prefix, default, unique = name.split("/")
    assert (prefix, default) == ("batchkit-local", "default")
    assert len(unique) == 32 and ":" not in name
    assert LogStore.new_stream_name("batchkit-local:1") != name


def test_head_page_and_forward_token_until_drained(store: LogStore) -> None:
    _fill(store, "s/default/a", 25)
    page = store.get_log_events("s/default/a", start_from_head=True, limit=10)
    assert _messages(page) == [f"line {i}" for i in range(10)]
    assert [e.timestamp for e in page.events] == list(range(1000, 1010))
    page = store.get_log_events("s/default/a", limit=10, next_token=page.next_forward_token)
    assert _messages(page) == [f"line {i}" for i in range(10, 20)]
    page = store.get_log_events("s/default/a", limit=10, next_token=page.next_forward_token)
    assert _messages(page) == [f"line {i}" for i in range(20, 25)]
    drained = store.get_log_events("s/default/a", limit=10, next_token=page.next_forward_token)
    assert drained.events == []
    assert drained.next_forward_token == page.next_forward_token
    # New events show up behind the repeated token (how `out --follow` sees them).
    store.sink("s/default/a").append("late", 5000)
    more = store.get_log_events("s/default/a", next_token=drained.next_forward_token)
    assert _messages(more) == ["late"]


def test_tail_page_then_backward_tokens(store: LogStore) -> None:
    _fill(store, "s/default/b", 25)
    page = store.get_log_events("s/default/b", start_from_head=False, limit=10)
    assert _messages(page) == [f"line {i}" for i in range(15, 25)]
    back = store.get_log_events("s/default/b", limit=10, next_token=page.next_backward_token)
    assert _messages(back) == [f"line {i}" for i in range(5, 15)]
    back = store.get_log_events("s/default/b", limit=10, next_token=back.next_backward_token)
    assert _messages(back) == [f"line {i}" for i in range(5)]
    forward = store.get_log_events("s/default/b", next_token=page.next_forward_token)
    assert forward.events == [] and forward.next_forward_token == page.next_forward_token


def test_default_limit_returns_everything_up_to_ten_thousand(store: LogStore) -> None:
    _fill(store, "s/default/c", 30)
    assert len(store.get_log_events("s/default/c").events) == 30
    with pytest.raises(UsageError):
        store.get_log_events("s/default/c", limit=0)
    with pytest.raises(UsageError):
        store.get_log_events("s/default/c", limit=10_001)


def test_a_missing_stream_is_an_empty_page(store: LogStore) -> None:
    page = store.get_log_events("s/default/none")
    assert page.events == []
    assert page.next_forward_token is not None


def test_bad_tokens_and_names_are_refused(store: LogStore) -> None:
    with pytest.raises(UsageError):
        store.get_log_events("s/default/a", next_token="x/1")
    with pytest.raises(UsageError):
        store.get_log_events("../escape")
    _fill(store, "s/default/a", 3)
    for token in ("f/3", "b/3"):  # a byte offset inside a line is no token this store gave out
        with pytest.raises(UsageError, match="invalid log token"):
            store.get_log_events("s/default/a", next_token=token)


def test_messages_keep_backslashes_newlines_and_unicode(store: LogStore) -> None:
    sink = store.sink("s/default/d")
    odd = ["a\\nb", "two\nlines", "tab\there", "ünïcødé ✓", "", "\\"]
    for message in odd:
        sink.append(message)
    assert _messages(store.get_log_events("s/default/d")) == odd


def test_job_output_lines_are_events_with_timestamps(engine: Engine) -> None:
    job = engine.submit(sh("for i in 1 2 3; do echo out $i; echo err $i >&2; done"))
    (done,) = engine.settle(job.job_id)
    assert done.log_stream is not None
    page = engine.provider.get_log_events(done.log_stream, start_from_head=False, limit=2)
    assert [e.message for e in page.events] == ["out 3", "err 3"]
    assert done.started_at is not None
    assert all(done.started_at <= e.timestamp <= engine.clock.now for e in page.events)
    head = engine.provider.get_log_events(done.log_stream, limit=2)
    assert [e.message for e in head.events] == ["out 1", "err 1"]
    other_group = engine.provider.get_log_events(done.log_stream, group="/other")
    assert other_group.events == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 40), limit=st.integers(1, 12))
def test_paging_forward_or_backward_visits_every_event_once(
    tmp_path_factory: pytest.TempPathFactory, count: int, limit: int
) -> None:
    store = LogStore(tmp_path_factory.mktemp("logs"))
    _fill(store, "s/default/p", count)
    everything = [f"line {i}" for i in range(count)]

    seen: list[str] = []
    token: str | None = None
    page = store.get_log_events("s/default/p", start_from_head=True, limit=limit)
    while page.events:
        seen += _messages(page)
        token = page.next_forward_token
        page = store.get_log_events("s/default/p", limit=limit, next_token=token)
    assert seen == everything
    if token is not None:
        assert page.next_forward_token == token, "the forward token repeats once drained"

    seen = []
    page = store.get_log_events("s/default/p", start_from_head=False, limit=limit)
    while page.events:
        seen = _messages(page) + seen
        page = store.get_log_events("s/default/p", limit=limit, next_token=page.next_backward_token)
    assert seen == everything

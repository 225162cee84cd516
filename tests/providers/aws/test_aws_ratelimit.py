from __future__ import annotations

import threading

import pytest

from batchkit.providers.aws.ratelimit import (
    DEFAULT_BUDGETS,
    Budget,
    RateLimiter,
    TokenBucket,
    process_rate_limiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_spaces_calls() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Budget(rate=10, burst=3), clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    clock.now += 1.0  # refills, but never above the burst
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]


def test_the_limiter_sleeps_what_the_budget_requires() -> None:
    clock, slept = FakeClock(), []
    limiter = RateLimiter({"batch": Budget(rate=50, burst=1)}, clock=clock, sleep=slept.append)
    for _ in range(5):
        limiter.acquire("batch", "DescribeJobs")
    assert slept == pytest.approx([0.02, 0.04, 0.06, 0.08])
    assert limiter.calls == 5


def test_operation_budgets_are_stricter_than_the_service() -> None:
    clock, slept = FakeClock(), []
    limiter = RateLimiter(
        {"logs": Budget(100, 100), "logs.FilterLogEvents": Budget(5, 1)},
        clock=clock,
        sleep=slept.append,
    )
    limiter.acquire("logs", "FilterLogEvents")
    limiter.acquire("logs", "FilterLogEvents")
    limiter.acquire("logs", "GetLogEvents")
    assert slept == pytest.approx([0.2])


def test_batch_stays_under_its_quota_across_threads() -> None:
    clock, slept = FakeClock(), []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slept.append(seconds)

    limiter = RateLimiter(DEFAULT_BUDGETS, clock=clock, sleep=sleep)
    threads = [
        threading.Thread(target=lambda: [limiter.acquire("batch", "X") for _ in range(50)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 calls at once: the last one waits until the bucket has paid them all back
    rate = DEFAULT_BUDGETS["batch"].rate
    assert rate <= 50
    assert max(slept) == pytest.approx((200 - DEFAULT_BUDGETS["batch"].burst) / rate)


def test_unlisted_services_get_a_budget() -> None:
    limiter = RateLimiter({}, clock=FakeClock(), sleep=lambda s: None)
    limiter.acquire("ecr", "ListImages")
    assert limiter.calls == 1


def test_one_limiter_per_process() -> None:
    assert process_rate_limiter() is process_rate_limiter()

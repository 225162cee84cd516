from __future__ import annotations

import pytest

from batchkit.errors import JobNotFoundError
from batchkit.jobs.waiting import Waiter, WaitTimeoutError
from batchkit.models import Job, JobStatus
from tests.jobs.fakes import FakeProvider


def test_watch_yields_each_change_until_final() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.SUBMITTED))
    statuses = iter([JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.FAILED])
    fake.on_describe = lambda f: f.set("j", status=next(statuses))
    sleeps: list[float] = []

    seen = [j.status for j in Waiter(fake, sleep=sleeps.append, interval=1).watch("j")]

    assert seen == [JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FAILED]
    assert sleeps == [1, 1.5, 2.25]


def test_wait_times_out_with_injected_clock() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.RUNNING))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(WaitTimeoutError, match="still RUNNING"):
        Waiter(fake, sleep=sleep, clock=lambda: now[0]).wait("j", timeout=30)
    assert now[0] >= 30


def test_unknown_job() -> None:
    with pytest.raises(JobNotFoundError):
        Waiter(FakeProvider()).wait("nope")

"""awsbstat's selection and ordering rules."""

from __future__ import annotations

from batchkit.jobs import query
from batchkit.models import Job, JobStatus
from tests.jobs.fakes import FakeProvider


def populated() -> FakeProvider:
    fake = FakeProvider()
    fake.add(Job("b-run", "r2", JobStatus.RUNNING, started_at=20))
    fake.add(Job("a-run", "r1", JobStatus.RUNNING, started_at=20))
    fake.add(Job("early", "r0", JobStatus.RUNNING, started_at=10))
    fake.add(Job("fail", "f", JobStatus.FAILED, started_at=1))
    fake.add(Job("sub", "s", JobStatus.SUBMITTED))
    fake.add(Job("arr", "array", JobStatus.PENDING, array_size=11))
    fake.add(Job("mnp", "mnp", JobStatus.RUNNING, nodes=2, started_at=30))
    return fake


def test_list_sorted_by_status_then_start_then_id() -> None:
    jobs = query.list_jobs(populated(), list(JobStatus))

    assert [j.job_id for j in jobs] == ["sub", "arr", "early", "a-run", "b-run", "mnp", "fail"]
    assert [j.display_id for j in jobs][1] == "arr [11]"
    assert jobs[5].display_id == "mnp *2"


def test_list_filters_statuses() -> None:
    jobs = query.list_jobs(populated(), [JobStatus.FAILED, JobStatus.SUBMITTED])

    assert [j.job_id for j in jobs] == ["sub", "fail"]


def test_expand_replaces_parents_by_children_in_index_order() -> None:
    jobs = query.list_jobs(populated(), [JobStatus.PENDING], expand=True)

    assert [j.job_id for j in jobs] == [f"arr:{i}" for i in range(11)]


def test_by_ids_follows_input_order_parent_first() -> None:
    result = query.jobs_by_ids(populated(), ["mnp", "fail", "nope", "arr:3", "mnp"])

    assert [j.job_id for j in result.jobs] == ["mnp", "mnp#0", "mnp#1", "fail", "arr:3"]
    assert result.missing == ["nope"]
    assert not result.single_simple


def test_single_simple_job_by_id() -> None:
    assert query.jobs_by_ids(populated(), ["fail"]).single_simple
    assert not query.jobs_by_ids(populated(), ["arr"]).single_simple


def test_tables_list_children_cheaply_and_details_describe_them() -> None:
    """A table needs only what ListJobs gives; `-d` needs every field (log streams)."""
    fake = populated()
    query.list_jobs(fake, [JobStatus.PENDING, JobStatus.RUNNING], expand=True)
    query.jobs_by_ids(fake, ["arr"])
    assert fake.calls.count("list_child_summaries_of") == 1  # both parents in one batch
    assert fake.calls.count("list_child_summaries") == 1
    assert "list_children" not in fake.calls

    fake.calls.clear()
    query.list_jobs(fake, [JobStatus.PENDING], expand=True, details=True)
    query.jobs_by_ids(fake, ["arr"], details=True)
    assert fake.calls.count("list_children") == 2
    assert "list_child_summaries" not in fake.calls

"""Array parents kept up to date child change by child change: after every pass the parent's
status, summary and times agree with a recount of its children, whatever order the children end
in, when they retry, when some are killed, and across a worker that crashed mid-array."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from batchkit.models import Job, JobStatus
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.scheduler import Scheduler, process_only_selector
from tests.fixtures.local_engine import Engine, sh

S = JobStatus

# Child i: waits for its gate file (so the test decides the order children end in); children
# whose index is 1 mod 3 fail their first attempt, those that are 2 mod 5 fail every attempt.
SCRIPT = (
    "i=$AWS_BATCH_JOB_ARRAY_INDEX; while [ ! -e {gates}/$i ]; do sleep 0.01; done; "
    "[ $((i % 5)) -eq 2 ] && exit 7; "
    '[ $((i % 3)) -eq 1 ] && [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ] && exit 3; exit 0'
)


def check_parent(engine: Engine, parent_id: str) -> tuple[Job, list[Job]]:
    """The parent and its children, after asserting the parent agrees with its children."""
    (parent,) = engine.provider.describe_jobs([parent_id])
    children = engine.provider.list_children(parent)
    counts = Counter(child.status for child in children)
    assert parent.status_summary == {s.value: counts[s] for s in JobStatus}
    done = counts[S.SUCCEEDED] + counts[S.FAILED]
    if done == len(children):
        assert parent.status is (S.FAILED if counts[S.FAILED] else S.SUCCEEDED)
        assert parent.stopped_at == max(c.stopped_at or 0 for c in children)
    else:
        assert not parent.status.is_final
        assert parent.status is (S.SUBMITTED if counts[S.SUBMITTED] == len(children) else S.PENDING)
    starts = [a.started_at for c in children for a in c.attempts if a.started_at is not None]
    starts += [c.started_at for c in children if c.started_at is not None]
    assert parent.started_at == (min(starts) if starts else None)
    return parent, children


def test_the_parent_follows_children_that_end_in_any_order_retry_and_are_killed(
    engine: Engine, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    size = 12
    job = engine.submit(sh(SCRIPT.format(gates=gates), array_size=size, retry_attempts=2))
    engine.scheduler.tick()
    check_parent(engine, job.job_id)
    # Open the gates out of order, one at a time, checking the parent after every pass; kill two
    # children on the way (one waiting for room, one running).
    order = [7, 0, 11, 2, 5, 1, 9, 3, 10, 4]
    engine.provider.terminate_job(f"{job.job_id}:8", "not needed")
    for step, index in enumerate(order):
        (gates / str(index)).touch()
        if step == 3:
            engine.provider.terminate_job(f"{job.job_id}:6", "stopped by hand")
        for _ in range(3):
            engine.clock.advance(0.001)
            engine.scheduler.tick()
            check_parent(engine, job.job_id)
    (gates / "6").touch()
    (gates / "8").touch()
    engine.settle(job.job_id, timeout=30)
    parent, children = check_parent(engine, job.job_id)
    by_index = {int(c.job_id.rsplit(":", 1)[1]): c for c in children}
    assert by_index[8].status_reason == "not needed"
    assert by_index[6].status_reason == "stopped by hand"
    for index, child in by_index.items():
        if index in (6, 8) or index % 5 == 2:
            assert child.status is S.FAILED, index
        else:
            assert child.status is S.SUCCEEDED, index
        if index % 3 == 1 and index not in (6, 8) and index % 5 != 2:
            assert [a.exit_code for a in child.attempts] == [3, 0], index
    assert parent.status is S.FAILED
    assert parent.status_reason == "4 of 12 child jobs failed"


def test_a_worker_that_crashes_mid_array_loses_no_child(engine: Engine, tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    size = 10
    script = f"while [ ! -e {gates}/$AWS_BATCH_JOB_ARRAY_INDEX ]; do sleep 0.01; done"
    job = engine.submit(sh(script, array_size=size, retry_attempts=2))
    for index in range(4):
        (gates / str(index)).touch()
    engine.run_until(
        lambda: check_parent(engine, job.job_id)[0].status_summary.get("SUCCEEDED", 0) >= 2,
        what="a few children to succeed",
    )
    running = [c for c in check_parent(engine, job.job_id)[1] if c.status is S.RUNNING]
    assert running, "the crash hits running children"
    # The worker dies: no shutdown; a new one recovers and carries on.
    engine.scheduler = Scheduler(
        engine.home, capacity=Capacity(2, 4096), clock=engine.clock, selector=process_only_selector
    )
    engine.scheduler.recover("the worker died")
    check_parent(engine, job.job_id)
    for index in range(size):
        (gates / str(index)).touch()
    engine.settle(job.job_id, timeout=30)
    parent, children = check_parent(engine, job.job_id)
    assert parent.status is S.SUCCEEDED
    assert len(children) == size and {c.status for c in children} == {S.SUCCEEDED}
    retried = [c for c in children if len(c.attempts) == 2]
    assert {c.job_id for c in running} <= {c.job_id for c in retried}
    assert all(c.attempts[0].status_reason == "the worker died" for c in retried)

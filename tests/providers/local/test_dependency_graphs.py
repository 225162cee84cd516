"""Random dependency graphs end as Batch would end them: a job succeeds exactly when its own
command succeeds and every job it depends on succeeded; otherwise it fails, with `Dependent Job
failed` when a dependency failed first. Real processes, so few and small examples."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.models import Dependency, JobStatus, Resources
from batchkit.providers.local.capacity import Capacity
from batchkit.providers.local.scheduler import DEPENDENCY_FAILED, ESSENTIAL_EXITED
from tests.fixtures.local_engine import Engine, sh


@st.composite
def graphs(draw: st.DrawFn) -> list[tuple[bool, list[int]]]:
    """Jobs in submission order: (command succeeds, indexes of earlier jobs it depends on)."""
    size = draw(st.integers(1, 6))
    jobs = []
    for i in range(size):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        jobs.append((draw(st.booleans()), deps))
    return jobs


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(graph=graphs())
def test_random_graphs_end_as_batch_would(
    tmp_path_factory: object, graph: list[tuple[bool, list[int]]]
) -> None:
    home: Path = tmp_path_factory.mktemp("home")  # type: ignore[attr-defined]
    engine = Engine(home, Capacity(vcpus=2, memory=1024))
    try:
        ids: list[str] = []
        for ok, deps in graph:
            job = engine.submit(
                sh(
                    "true" if ok else "false",
                    resources=Resources(1, 64),
                    depends_on=tuple(Dependency(ids[d]) for d in deps),
                )
            )
            ids.append(job.job_id)
        jobs = engine.settle(*ids, timeout=30)
        expected: list[JobStatus] = []
        for (ok, deps), job in zip(graph, jobs, strict=True):
            if any(expected[d] is JobStatus.FAILED for d in deps):
                assert (job.status, job.status_reason) == (JobStatus.FAILED, DEPENDENCY_FAILED)
                assert job.attempts == []
            else:
                assert job.status is (JobStatus.SUCCEEDED if ok else JobStatus.FAILED)
                assert job.status_reason == ESSENTIAL_EXITED
                assert job.exit_code == (0 if ok else 1)
                for d in deps:
                    parent = jobs[d]
                    assert job.started_at is not None and parent.stopped_at is not None
                    assert job.started_at >= parent.stopped_at
            expected.append(job.status)
    finally:
        engine.close()

"""The Python API on the local engine with a real background worker: scripts, argv lists and
functions submitted from Python, waited on, read back; map; cancel; children; job lists."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable

import cloudpickle
import pytest
from msgspec.structs import replace

import batchkit
from batchkit.api import Cluster
from batchkit.errors import UsageError
from batchkit.functions import payload, runner
from batchkit.functions.results import FunctionJobError
from batchkit.handles import Job, JobList
from batchkit.jobs.kill import KillOutcome
from batchkit.jobs.progress import TextProgress
from batchkit.jobs.waiting import WaitTimeoutError
from batchkit.jobspecs import SubmitOptions, plan_job
from batchkit.models import Job as JobInfo
from batchkit.models import JobSpec, JobStatus
from batchkit.providers.local.provider import LocalProvider
from tests.fixtures.local_engine import FakeClock
from tests.jobs.fakes import FakeProvider

TIMEOUT = 60


class Rejected(ValueError):
    pass


def cube(x: int) -> int:
    return x**3


def slow_identity(x: int) -> int:
    time.sleep(0.05 * (4 - x))  # later items finish first
    return x


def reject(x: int) -> int:
    if x == 2:
        raise Rejected(f"no {x}s allowed")
    return x


def array_index() -> str:
    import os

    return os.environ["AWS_BATCH_JOB_ARRAY_INDEX"]


@pytest.fixture
def cluster(background_provider: Callable[..., LocalProvider]) -> Cluster:
    return Cluster(background_provider())


def test_a_script_runs_with_its_arguments_and_environment(cluster: Cluster) -> None:
    job = cluster.submit('echo "$GREETING from $0:" "$@"', "a b", "c", env={"GREETING": "hi"})

    assert isinstance(job, Job)
    assert job.wait(progress=False, timeout=TIMEOUT) is job
    assert job.status is JobStatus.SUCCEEDED
    assert job.logs().text == "hi from ./script.sh: a b c\n"


def test_an_argv_list_runs_as_typed(cluster: Cluster) -> None:
    job = cluster.submit(["printf", "%s|", "it's", "$(x)", "two words"], name="argv")

    job.wait(progress=False, timeout=TIMEOUT)
    assert job.name == "argv"
    assert [e.message for e in job.logs()] == ["it's|$(x)|two words|"]


def test_a_function_returns_its_value(cluster: Cluster) -> None:
    offset = 5

    def shifted(x: int, *, by: int) -> int:
        return x + by + offset

    job = cluster.submit(shifted, 10, by=2)

    assert job.result(timeout=TIMEOUT) == 17
    assert job.info.status is JobStatus.SUCCEEDED


def test_map_returns_values_in_item_order(cluster: Cluster) -> None:
    job = cluster.map(slow_identity, [0, 1, 2, 3])

    assert job.info.array_size == 4
    assert job.results(timeout=TIMEOUT) == [0, 1, 2, 3]
    children = job.children()
    assert [c.job_id for c in children] == [f"{job.job_id}:{i}" for i in range(4)]
    assert children[3].result() == 3


def test_map_over_one_item_is_a_single_job(cluster: Cluster) -> None:
    job = cluster.map(cube, [3])

    assert job.info.array_size is None
    assert job.results(timeout=TIMEOUT) == [27]


def test_an_array_of_function_calls_sees_each_index(cluster: Cluster) -> None:
    job = cluster.submit(array_index, array=3)

    assert job.results(timeout=TIMEOUT) == ["0", "1", "2"]


def test_a_remote_exception_is_reraised_with_its_type_and_traceback(cluster: Cluster) -> None:
    job = cluster.map(reject, [1, 2, 3])

    with pytest.raises(Rejected, match="no 2s allowed") as caught:
        job.results(timeout=TIMEOUT)
    assert "in reject" in caught.value.remote_traceback  # type: ignore[attr-defined]
    assert job.info.status is JobStatus.FAILED
    statuses = [child.info.status for child in job.children()]
    assert statuses == [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.SUCCEEDED]
    assert any("Rejected: no 2s allowed" in e.message for e in job.children()[1].logs())


def test_cancel_stops_a_running_job(cluster: Cluster) -> None:
    job = cluster.submit("echo started; sleep 60")
    for event in job.logs(follow=True):
        if event.message == "started":
            break

    outcome = job.cancel("enough")

    assert outcome.outcome is KillOutcome.TERMINATION
    job.wait(progress=False, timeout=TIMEOUT)
    assert job.status is JobStatus.FAILED
    assert job.info.status_reason == "enough"


def test_depends_on_takes_a_handle(cluster: Cluster) -> None:
    first = cluster.submit("echo first")
    second = cluster.submit("echo second", depends_on=first)

    second.wait(progress=False, timeout=TIMEOUT)
    assert [d.job_id for d in second.info.depends_on] == [first.job_id]
    first_info = first.refresh()
    assert first_info.stopped_at is not None and second.info.started_at is not None
    assert second.info.started_at >= first_info.stopped_at


def test_follow_yields_lines_until_the_job_ends(cluster: Cluster) -> None:
    job = cluster.submit("for i in 1 2 3; do echo line $i; sleep 0.1; done")

    assert [e.message for e in job.logs(follow=True)] == ["line 1", "line 2", "line 3"]
    assert job.status is JobStatus.SUCCEEDED


def test_jobs_by_status_is_a_table(cluster: Cluster) -> None:
    done = cluster.submit("true", name="done-job")
    done.wait(progress=False, timeout=TIMEOUT)
    failed = cluster.submit("exit 3", name="failed-job")
    failed.wait(progress=False, timeout=TIMEOUT)

    succeeded = cluster.jobs(status="SUCCEEDED")
    both = cluster.jobs(status=[JobStatus.SUCCEEDED, "FAILED"])

    assert isinstance(succeeded, JobList)
    assert [j.job_id for j in succeeded] == [done.job_id]
    assert {j.job_id for j in both} == {done.job_id, failed.job_id}
    assert "failed-job" in both._repr_html_()
    assert "done-job" in repr(both)
    with pytest.raises(UsageError, match="unknown status"):
        cluster.jobs(status="DONE")


def test_wait_reports_progress_to_a_callback(cluster: Cluster) -> None:
    seen: list[JobInfo] = []
    job = cluster.map(cube, [1, 2])

    job.wait(progress=seen.append, timeout=TIMEOUT)

    assert seen[-1].status is JobStatus.SUCCEEDED
    assert seen[-1].status_summary.get("SUCCEEDED") == 2


def test_the_text_progress_line_ends_with_the_final_state(cluster: Cluster) -> None:
    stream = io.StringIO()
    job = cluster.map(cube, [1, 2, 3], name="cubes")

    job.wait(progress=TextProgress(stream), timeout=TIMEOUT)

    last = stream.getvalue().splitlines()[-1]
    assert last.startswith(f"cubes {job.job_id} [")
    assert "3/3 SUCCEEDED" in last


def test_a_jobspec_still_returns_the_snapshot_the_cli_uses(cluster: Cluster) -> None:
    info = cluster.submit(JobSpec(name="spec", command=("echo", "from a spec")))

    assert isinstance(info, JobInfo)
    handle = cluster.job(info.job_id)
    handle.wait(progress=False, timeout=TIMEOUT)
    assert handle.logs().text == "from a spec\n"


def test_a_python_version_mismatch_fails_the_job_early_with_a_clear_message(
    cluster: Cluster,
) -> None:
    planned = plan_job(cube, (2,), {}, SubmitOptions(name="old"), python=sys.executable)
    old = payload.pack_call(cube, (2,), {}, version=(3, 9))
    spec = replace(planned, staged_files={**planned.staged_files, payload.PAYLOAD_NAME: old})
    job = cluster.job(cluster.submit(spec))

    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    with pytest.raises(
        FunctionJobError, match=f"pickled by Python 3.9 but the job runs Python {mine}"
    ):
        job.result(timeout=TIMEOUT)
    assert job.info.status is JobStatus.FAILED
    assert job.info.exit_code == runner.EXIT_SETUP
    assert any("PythonVersionMismatch" in event.message for event in job.logs())


def test_a_job_that_cannot_store_its_result_explains_why(cluster: Cluster) -> None:
    def leave() -> None:
        import os

        os._exit(9)  # dies before the runner stores anything

    job = cluster.submit(leave)

    with pytest.raises(FunctionJobError, match="ended FAILED without storing a result"):
        job.result(timeout=TIMEOUT)
    assert job.info.exit_code == 9


# --- without an engine ---------------------------------------------------------------------------


def test_wait_gives_up_after_its_timeout_without_sleeping_for_real() -> None:
    clock = FakeClock(0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    cluster = Cluster(FakeProvider(), sleep=sleep, monotonic=lambda: clock() / 1000)
    job = cluster.submit("sleep 1000")

    with pytest.raises(WaitTimeoutError, match="still SUBMITTED after 5 seconds"):
        job.wait(progress=False, timeout=5)
    assert sleeps and max(sleeps) <= 3.0  # notebook-friendly polling


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.submit("echo", unknown=1), "unknown option unknown="),
        (lambda c: c.submit(["echo"], "extra"), "extra arguments"),
        (lambda c: c.submit([]), "the command list is empty"),
        (lambda c: c.submit(42), "cannot submit a int"),
        (lambda c: c.submit(cube, 1, nodes=2), "nodes= is for scripts"),
        (lambda c: c.map(cube, []), "no items"),
        (lambda c: c.map(cube, range(10_001)), "at most 10000"),
        (lambda c: c.submit("echo", memory=2), "-m/--memory must be between"),
        (lambda c: c.submit("echo", depends_on=3.5), "depends_on= cannot use a float"),
        (lambda c: c.submit(JobSpec(name="x", command=("a",)), vcpus=2), "carries its own"),
    ],
)
def test_bad_submissions_are_usage_errors_before_anything_is_sent(
    call: Callable[[Cluster], object], message: str
) -> None:
    fake = FakeProvider()

    with pytest.raises(UsageError, match=message):
        call(Cluster(fake))
    assert fake.requests == []


def test_connect_defaults_to_the_local_engine_without_starting_a_worker() -> None:
    cluster = batchkit.connect()

    assert cluster.name == "local"
    assert cluster.provider.kind == "local"
    assert isinstance(cluster.provider, LocalProvider)
    assert cluster.provider.spawned == []


def test_import_batchkit_loads_nothing_heavy() -> None:
    code = (
        "import sys, batchkit\n"
        "heavy = [m for m in ('batchkit.api', 'boto3', 'cloudpickle', 'IPython', 'typer', 'rich')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
        "print(batchkit.connect.__module__, batchkit.Job.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()

    assert out == ["[]", "batchkit.api batchkit.handles"]


@pytest.mark.docker
def test_in_an_image_without_cloudpickle_a_function_job_says_so(
    docker_host: str, debian_image: str, background_provider: Callable[..., LocalProvider]
) -> None:
    cluster = Cluster(background_provider())

    job = cluster.submit(cube, 2, image=debian_image, executor="docker")

    assert job.info.command[-2:] == ["python3", payload.RUNNER_NAME]  # the image's Python
    with pytest.raises(FunctionJobError, match="cloudpickle is not installed"):
        job.result(timeout=180)


def _finished_function_job(fake: FakeProvider, job_id: str, values: list[int], array: bool) -> Job:
    folder = f"jobs/{job_id}/"
    info = fake.add(
        JobInfo(
            job_id=job_id,
            name="f",
            status=JobStatus.SUCCEEDED,
            array_size=len(values) if array else None,
            s3_folder_url=fake.objects.url(folder),
        )
    )
    for index, value in enumerate(values):
        outcome = {"ok": True, "value": cloudpickle.dumps(value), "stage": runner.STAGE_CALL}
        fake.objects.put(payload.result_key(folder, index), runner.encode(outcome))
    return Cluster(fake).job(info)


@pytest.mark.parametrize(
    ("array", "read", "expected"),
    [
        (True, lambda job: job.result(progress=False), [1, 8, 27]),
        (True, lambda job: job.results(), [1, 8, 27]),
        (False, lambda job: job.result(progress=False), 64),
        (False, lambda job: job.results(), [64]),
    ],
)
def test_reading_results_of_a_finished_job_describes_it_once(
    array: bool, read: Callable[[Job], object], expected: object
) -> None:
    fake = FakeProvider()
    job = _finished_function_job(fake, "job-f", [1, 8, 27] if array else [64], array)

    assert read(job) == expected
    assert fake.calls.count("describe_jobs") == 1  # the wait; no second wait, no re-describe

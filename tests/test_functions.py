"""Function jobs without an engine: the payload, the runner (run in-process, as a job would run
it), result decoding, remote exceptions, version checks, and the S3 layout on moto."""

from __future__ import annotations

import pickle
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from batchkit.api import Cluster
from batchkit.errors import NotFoundError, UsageError
from batchkit.functions import payload, runner
from batchkit.functions.results import (
    FunctionJobError,
    RemoteError,
    RemoteTraceback,
    decode,
    unwrap,
)
from batchkit.models import JobStatus
from tests.fixtures.moto_server import SIMPLE_CONFIG, create_cluster
from tests.jobs.fakes import FakeObjects, FakeProvider


class Boom(Exception):
    """A user exception class, defined in the user's module."""


class Unpicklable(Exception):
    def __init__(self, lock: object) -> None:
        super().__init__("holds a lock")
        self.lock = lock

    def __reduce__(self) -> object:
        raise TypeError("no pickling for you")


def square(x: int) -> int:
    return x * x


def explode(x: int) -> int:
    raise Boom(f"exploded on {x}")


def scale(x: int, *, factor: int = 1) -> int:
    return x * factor


def run_job(stage: Path, payload_body: bytes, index: int | None = None) -> int:
    """Run the runner as the local engine would: in the job folder, with its stage dir."""
    stage.mkdir(parents=True, exist_ok=True)
    (stage / payload.PAYLOAD_NAME).write_bytes(payload_body)
    environ = {"BATCHKIT_JOB_STAGE_DIR": str(stage)}
    if index is not None:
        environ["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    return runner.main(environ, workdir=stage)


def stored(stage: Path, index: int = 0) -> bytes:
    """The result the runner stored beside the job folder `stage`."""
    return stage.with_name(stage.name + ".results").joinpath(f"{index}.pkl").read_bytes()


class Objects(FakeObjects):
    """The fake bucket, raising NotFoundError for a missing key as both real stores do."""

    def get(self, key: str) -> bytes:
        if key not in self.items:
            raise NotFoundError(f"object {key} not found")
        return super().get(key)


def fake_provider() -> FakeProvider:
    return FakeProvider(objects=Objects())


# --- the runner ----------------------------------------------------------------------------------


def test_a_call_returns_its_value_through_the_results_folder(tmp_path: Path) -> None:
    body = payload.pack_call(scale, (7,), {"factor": 3})

    assert run_job(tmp_path / "job", body) == runner.EXIT_OK
    assert unwrap(decode(stored(tmp_path / "job")), job_id="j") == 21


def test_a_map_child_calls_the_function_on_its_own_item(tmp_path: Path) -> None:
    body = payload.pack_map(square, [10, 11, 12])

    assert run_job(tmp_path / "job", body, index=2) == runner.EXIT_OK
    assert unwrap(decode(stored(tmp_path / "job", 2)), job_id="j:2") == 144
    assert not (tmp_path / "job.results" / "0.pkl").exists()


def test_a_raised_exception_comes_back_with_type_message_and_remote_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_job(tmp_path / "job", payload.pack_call(explode, (4,), {})) == runner.EXIT_RAISED
    assert "Boom: exploded on 4" in capsys.readouterr().err  # the job's log shows it too

    with pytest.raises(Boom, match="exploded on 4") as caught:
        unwrap(decode(stored(tmp_path / "job")), job_id="job-1")
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in explode" in cause.traceback  # cloudpickle names the file <dynamic-code>
    assert cause.traceback.rstrip().endswith("Boom: exploded on 4")
    assert caught.value.remote_traceback == cause.traceback  # type: ignore[attr-defined]
    assert any("job-1" in note for note in caught.value.__notes__)


def test_an_exception_that_does_not_pickle_comes_back_as_remote_error(tmp_path: Path) -> None:
    def fail() -> None:
        raise Unpicklable(threading.Lock())

    assert run_job(tmp_path / "job", payload.pack_call(fail, (), {})) == runner.EXIT_RAISED

    with pytest.raises(RemoteError, match="Unpicklable: holds a lock") as caught:
        unwrap(decode(stored(tmp_path / "job")), job_id="j")
    assert caught.value.type_name.endswith("Unpicklable")


def test_a_python_version_mismatch_fails_early_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = payload.pack_call(square, (3,), {}, version=(3, 9))

    assert run_job(tmp_path / "job", body) == runner.EXIT_SETUP

    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    expected = f"pickled by Python 3.9 but the job runs Python {mine}"
    assert expected in capsys.readouterr().err
    with pytest.raises(FunctionJobError, match=expected) as caught:
        unwrap(decode(stored(tmp_path / "job")), job_id="job-7")
    assert "job-7" in str(caught.value)
    assert "image with Python 3.9" in str(caught.value)


def test_a_missing_payload_is_a_setup_failure_not_a_crash(tmp_path: Path) -> None:
    stage = tmp_path / "job"
    stage.mkdir()
    status = runner.main({"BATCHKIT_JOB_STAGE_DIR": str(stage)}, workdir=stage)

    assert status == runner.EXIT_SETUP
    with pytest.raises(FunctionJobError, match=r"cannot read function\.pkl"):
        unwrap(decode(stored(tmp_path / "job")), job_id="j")


def test_the_payload_header_is_readable_without_cloudpickle() -> None:
    """The runner reads the version before unpickling anything version-specific."""
    header = pickle.loads(payload.pack_map(square, [1, 2]))

    assert header["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert header["kind"] == "map"
    assert header["count"] == 2
    assert isinstance(header["body"], bytes)


def test_the_staged_runner_is_the_runner_module_and_imports_no_batchkit() -> None:
    source = payload.runner_source().decode()

    assert source == Path(runner.__file__).read_text()
    imports = [
        line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))
    ]
    assert imports and not [name for name in imports if name.startswith("batchkit")]


# --- unpicklable arguments -----------------------------------------------------------------------


def test_an_unpicklable_positional_argument_is_named() -> None:
    with pytest.raises(UsageError, match=r"argument 2 \(lock\) of square cannot be pickled"):
        payload.pack_call(square, (1, threading.Lock()), {})


def test_an_unpicklable_keyword_argument_is_named() -> None:
    with pytest.raises(UsageError, match="keyword argument 'factor' of scale cannot be pickled"):
        payload.pack_call(scale, (1,), {"factor": threading.Lock()})


def test_an_unpicklable_map_item_is_named_by_index() -> None:
    with pytest.raises(UsageError, match=r"item 2 \(lock\) of square"):
        payload.pack_map(square, [1, 2, threading.Lock()])


def test_a_function_that_captures_something_unpicklable_is_reported() -> None:
    lock = threading.Lock()

    def locked() -> bool:
        return lock.locked()

    with pytest.raises(UsageError, match=r"the function .*locked cannot be pickled"):
        payload.pack_call(locked, (), {})


def test_submit_refuses_an_unpicklable_argument_before_uploading_anything() -> None:
    fake = fake_provider()
    cluster = Cluster(fake)

    with pytest.raises(UsageError, match="argument 1"):
        cluster.submit(square, threading.Lock())
    assert fake.requests == []
    assert fake.objects.items == {}


@pytest.mark.parametrize(
    ("image", "executor", "runs"),
    [
        (None, None, "this"),  # a local process
        ("python:3.11", "process", "this"),
        ("python:3.11", "docker", "python3"),  # the image's
        ("python:3.11", None, "this"),  # Docker only if an engine answers: here, none does
    ],
)
def test_a_local_function_job_runs_the_python_it_will_find(
    image: str | None, executor: str | None, runs: str, tmp_path: Path
) -> None:
    from batchkit.jobspecs import job_python

    argv = job_python(local=True, image=image, executor=executor)
    probe = [*argv, "-c", "import sys; print(sys.executable)"]

    if runs == "python3":
        assert argv == ("python3",)
    else:
        shown = subprocess.run(probe, capture_output=True, text=True, check=True, cwd=tmp_path)
        assert shown.stdout.strip() == sys.executable
        missing = [*argv[:-1], str(tmp_path / "no-such-python"), "-c", "print('fallback')"]
        if len(argv) > 1:  # where this Python's path does not exist (a container): python3
            assert subprocess.run(missing, capture_output=True, text=True).stdout == "fallback\n"
    assert job_python(local=False, image=image, executor=executor) == ("python3",)


# --- results through the cluster (fake provider) -------------------------------------------------


def test_a_function_job_stages_payload_and_runner_and_runs_them_inline() -> None:
    fake = fake_provider()
    job = Cluster(fake).submit(square, 5, memory=512, name="sq")

    (request,) = fake.requests
    assert request.command[-2:] == (sys.executable, payload.RUNNER_NAME)  # local: this Python
    folder = request.s3_folder_url
    assert folder is not None and folder.startswith("s3://fake-bucket/root/batch/job-sq-")
    key = folder[len("s3://fake-bucket/") :]
    assert pickle.loads(fake.objects.items[key + "function.pkl"])["kind"] == "call"
    assert fake.objects.items[key + "batchkit_runner.py"] == payload.runner_source()
    assert request.resources.memory == 512
    assert job.name == "sq"


def test_a_job_that_failed_before_storing_a_result_says_so() -> None:
    fake = fake_provider()
    job = Cluster(fake).submit(square, 5)
    fake.finish(job.job_id, JobStatus.FAILED, exit_code=137)
    fake.set(job.job_id, status_reason="OutOfMemoryError: Container killed due to memory usage")

    with pytest.raises(FunctionJobError, match="ended FAILED without storing a result") as caught:
        job.result()
    assert "OutOfMemoryError" in str(caught.value)


def test_result_of_a_script_job_is_a_usage_error() -> None:
    fake = fake_provider()
    job = Cluster(fake).submit("echo hi")
    fake.finish(job.job_id)

    with pytest.raises(UsageError, match="not a function job"):
        job.result()


# --- AWS (moto): staging in S3, the runner's upload, result retrieval ----------------------------


@pytest.fixture
def aws_cluster() -> Iterator[Cluster]:
    # Without AWS's managed IAM policies, which nothing here uses: loading them costs ~1 s a test.
    with mock_aws(config={**SIMPLE_CONFIG, "iam": {"load_aws_managed_policies": False}}):
        create_cluster("pc-test")
        from batchkit.providers.aws import open_provider

        yield Cluster(open_provider("pc-test"))


def download_folder(url: str, into: Path) -> None:
    """What the wrapper's fetch does in the container."""
    s3 = boto3.client("s3")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        relative = item["Key"][len(prefix) :]
        if relative:
            (into / relative).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(into / relative))


def test_on_aws_a_function_job_is_staged_in_s3_and_its_result_read_back(
    aws_cluster: Cluster, tmp_path: Path
) -> None:
    job = aws_cluster.submit(scale, 6, factor=7, vcpus=2)

    url = job.info.s3_folder_url
    assert url is not None and url.startswith("s3://")
    assert job.info.command[-2:] == ["python3", payload.RUNNER_NAME]  # the image's Python
    bucket, _, prefix = url[len("s3://") :].partition("/")
    keys = {
        item["Key"][len(prefix) :]
        for item in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    }
    assert {"function.pkl", "batchkit_runner.py"} <= keys

    download_folder(url, tmp_path)
    assert runner.main({"PCLUSTER_JOB_S3_URL": url}, workdir=tmp_path) == runner.EXIT_OK

    assert boto3.client("s3").head_object(Bucket=bucket, Key=prefix.rstrip("/") + ".results/0.pkl")
    assert job.result(timeout=5) == 42


def test_on_aws_map_results_come_back_in_order(aws_cluster: Cluster, tmp_path: Path) -> None:
    job = aws_cluster.map(square, [3, 1, 2])
    url = job.info.s3_folder_url
    assert url is not None
    assert job.info.array_size == 3

    download_folder(url, tmp_path)
    for index in (2, 0, 1):  # children finish in any order
        environ = {"PCLUSTER_JOB_S3_URL": url, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)}
        assert runner.main(environ, workdir=tmp_path) == runner.EXIT_OK

    assert job.results(timeout=5) == [9, 1, 4]


def test_on_aws_a_remote_exception_is_reraised(aws_cluster: Cluster, tmp_path: Path) -> None:
    job = aws_cluster.submit(explode, 9)
    url = job.info.s3_folder_url
    assert url is not None
    download_folder(url, tmp_path)
    assert runner.main({"PCLUSTER_JOB_S3_URL": url}, workdir=tmp_path) == runner.EXIT_RAISED

    with pytest.raises(Boom, match="exploded on 9") as caught:
        job.result(timeout=5)
    assert isinstance(caught.value.__cause__, RemoteTraceback)


def test_a_local_result_is_read_only_from_where_the_job_wrote_it(tmp_path: Path) -> None:
    """A results/0.pkl that is a link to a pickle elsewhere is refused, with a clear error rather
    than "ended without storing a result", and what it points at is never unpickled."""
    from batchkit.errors import EngineError
    from batchkit.providers.local.objects import LocalObjectStore

    objects = LocalObjectStore(tmp_path / "s3")
    fake = FakeProvider(objects=objects)
    job = Cluster(fake).submit(square, 5)
    folder = objects.host_dir(job.info.s3_folder_url or "")
    assert folder is not None
    assert runner.main({"BATCHKIT_JOB_STAGE_DIR": str(folder)}, workdir=folder) == runner.EXIT_OK
    fake.finish(job.job_id, JobStatus.SUCCEEDED, exit_code=0)
    assert job.result() == 25
    result = folder.with_name(folder.name + ".results") / "0.pkl"
    assert stat.S_IMODE(result.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.parent.stat().st_mode) == 0o700

    planted = tmp_path / "elsewhere.pkl"
    planted.write_bytes(result.read_bytes())
    result.unlink()
    result.symlink_to(planted)
    with pytest.raises(
        EngineError, match=r"refusing to read s3://batchkit-local/.*0\.pkl: it is a link"
    ):
        job.result()

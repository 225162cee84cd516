"""Submission through the Provider seam: what is uploaded, what is submitted, in which order."""

from __future__ import annotations

import pytest

from batchkit.errors import UsageError
from batchkit.jobs.submission import Submitter
from batchkit.models import Dependency, JobSpec, Resources
from tests.jobs.fakes import FakeProvider


def submitter(fake: FakeProvider) -> Submitter:
    tokens = iter(["t1", "t2"])
    return Submitter(fake, clock=lambda: 1700000000.123, new_token=lambda: next(tokens))


def test_script_job_is_staged_then_submitted(tmp_path) -> None:
    fake = FakeProvider()
    data = tmp_path / "in.csv"
    data.write_text("a,b")
    spec = JobSpec(
        name="run",
        script=b"#!/bin/sh\necho hi\n",
        arguments=("x",),
        input_files=(str(data),),
        env={"FOO": "bar"},
        resources=Resources(vcpus=2, memory=256, gpus=1),
        array_size=3,
        depends_on=(Dependency("j0"),),
        retry_attempts=2,
        timeout=120,
        image="img",
        tags={"batchkit:executor": "process"},
    )

    job = submitter(fake).submit(spec)

    folder = "root/batch/job-run-1700000000123/"
    assert sorted(fake.objects.items) == sorted(
        [folder + "in.csv", folder + "run.sh", folder + "run.env.sh"]
    )
    assert fake.objects.items[folder + "run.env.sh"] == b"export FOO=bar\n"
    [request] = fake.requests
    assert request.environment == {
        "PCLUSTER_JOB_S3_URL": f"s3://fake-bucket/{folder}",
        "BATCHKIT_JOB_SCRIPT": "#!/bin/sh\necho hi\n",  # the script travels in the request
        "BATCHKIT_JOB_IMAGE": "img",  # the input file needs the folder: for the wrapper's error
        "BATCHKIT_JOB_FETCH_REASON": "input file in.csv",
    }
    assert "FOO=bar" in request.command
    assert request.s3_folder_url == f"s3://fake-bucket/{folder}"
    assert request.client_token == "t1"
    assert request.tags == {"batchkit:executor": "process"}
    assert (request.array_size, request.retry_attempts, request.timeout) == (3, 2, 120)
    assert request.resources == Resources(vcpus=2, memory=256, gpus=1)
    assert request.depends_on == (Dependency("j0"),)
    assert request.command[-2:] == ("--", "x")
    assert job.job_id in fake.jobs


def test_default_executor_tag_is_auto() -> None:
    fake = FakeProvider()
    submitter(fake).submit(JobSpec(name="j", command=("true",)))

    assert fake.requests[0].tags == {"batchkit:executor": "auto"}


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(name="j", command=("true",), array_size=1),
        JobSpec(name="j", command=("true",), input_files=("/does/not/exist",)),
        JobSpec(name="j", command=("true",), tags={"batchkit:executor": "vm"}),
        JobSpec(name="j", command=("true",), staged_files={"../up": b"x"}),
        JobSpec(name="j", command=("true",), staged_files={"": b"x"}),
        JobSpec(name="j", script=b"true", staged_files={"j.sh": b"x"}),
        JobSpec(
            name="j",
            command=("true",),
            input_files=(__file__,),
            staged_files={__file__.rsplit("/", 1)[-1]: b"x"},
        ),
    ],
)
def test_invalid_spec_uploads_and_submits_nothing(spec: JobSpec) -> None:
    fake = FakeProvider()
    with pytest.raises(UsageError):
        submitter(fake).submit(spec)

    assert fake.objects.items == {}
    assert fake.requests == []


def test_files_staged_from_memory_land_in_the_job_folder_beside_the_inputs(tmp_path) -> None:
    (tmp_path / "in.csv").write_text("a,b")
    fake, spec = (
        FakeProvider(),
        JobSpec(
            name="fn",
            command=("python3", "runner.py"),
            input_files=(str(tmp_path / "in.csv"),),
            staged_files={"payload.pkl": b"\x80\x05data", "runner.py": b"print()"},
        ),
    )

    submitter(fake).submit(spec)

    folder = "root/batch/job-fn-1700000000123/"
    assert fake.objects.items == {
        folder + "in.csv": b"a,b",
        folder + "payload.pkl": b"\x80\x05data",
        folder + "runner.py": b"print()",
    }


def test_a_multinode_job_is_told_its_vcpus_per_node() -> None:
    fake = FakeProvider()
    spec = JobSpec(name="mpi", command=("true",), nodes=4, resources=Resources(vcpus=8))

    submitter(fake).submit(spec)

    assert fake.requests[0].environment["BATCHKIT_JOB_VCPUS"] == "8"

"""Real execution on an AWS cluster: a script staged to S3 runs in a container, and its output
comes back through `batchkit out`.

The installed `batchkit` command submits to the cluster `dk-test` on a moto server whose Batch
runs in Docker mode (fixture `docker_cluster`, `tests/fixtures/moto_docker.py`). moto starts each
job as a container of the test engine (host network) with the job definition's image and
SubmitJob's `containerOverrides.command` and environment; batchkit's one job wrapper writes the
script that travelled in the request, fetches the job folder from the server's S3 with python3 +
boto3 when the job has input files (the image has no aws CLI), and runs the script. A second
cluster, `bb-test`, runs busybox: everything but `-if` works there, and `-if` fails at once.
moto copies the container's stdout and stderr into `/aws/batch/job`, stream
`<jobDefinitionName>/default/<jobId>`, which is where `batchkit out` reads.

What moto (5.2.5) does not do, and how these tests live with it:
- DescribeJobs carries no `container.exitCode` for a container job (moto's `Job.describe` replaces
  the `container` block of its short description, which has it, with the definition's container
  details, which don't); ListJobs does. So a failed job's exit code is read from `batchkit stat
  -s FAILED` (the table, built from ListJobs), and `stat -d` is only checked for FAILED.
- A container gets the job definition's environment, the overrides, AWS_BATCH_JOB_ID and moto's
  MOTO_HOST/MOTO_PORT, nothing more: the endpoint and dummy credentials boto3 needs inside the
  container come with the job image (see `DockerCluster.image`). Array children get no
  AWS_BATCH_JOB_ARRAY_INDEX, and their AWS_BATCH_JOB_ID may name a sibling (moto's children share
  one overrides list and append their ids to it), so the array test prints neither.
- moto collects a container's output when it exits, so `sub --follow` prints it all at the end.
- An array parent's status is worked out from its children only when DescribeJobs is asked about
  it (ListJobs shows the last one worked out); `batchkit stat ID` asks DescribeJobs.

A third cluster, `df-test`, runs what stands in for a fresh cluster's default image (the al2023
preset, which CodeBuild builds on AWS and moto cannot): Debian with the aws CLI, python3, boto3
and cloudpickle (`default_job_image`). There a function job submitted through the Python API
returns its value, and an `-if` job fetches its folder with `aws s3 sync`, the path every image
with the aws CLI takes. The CLI there is v1 from PyPI, not the preset's v2 (not on PyPI): the
wrapper's command line is the same for both, v2's own code is not exercised, and the image needs
PyPI once when it is built (the tests skip with the reason when pip cannot download it).

`out <array parent>` once printed "No log stream found" for every child (its children came from
ListJobs summaries, which carry no log stream, on AWS too); the last test here keeps it fixed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit.api import Cluster
from batchkit.providers.aws import open_provider
from tests.e2e_aws.conftest import Result, Run
from tests.fixtures.docker_engine import Engine
from tests.fixtures.moto_docker import CLUSTER_NAME, DockerCluster, _remove_containers
from tests.fixtures.moto_server import create_cluster

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SUBMITTED = re.compile(r"Job ([0-9a-f-]{36}) \((.+)\) has been submitted\.")
FINAL = ("SUCCEEDED", "FAILED")
JOB_SECONDS = 120.0
POLL_SECONDS = 1.0


@pytest.fixture
def batchkit(docker_cluster: DockerCluster, tmp_path: Path) -> Run:
    """The installed console script, run in `tmp_path` against the Docker-mode cluster."""
    exe = Path(sys.executable).parent / "batchkit"
    if not exe.exists():
        pytest.skip(f"batchkit is not installed next to {sys.executable}")

    def run(*args: str) -> Result:
        done = subprocess.run(
            [str(exe), *args],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def submit(batchkit: Run, *args: str) -> str:
    return submit_to(batchkit, ("-c", CLUSTER_NAME), *args)


def submit_to(batchkit: Run, cluster: tuple[str, str], *args: str) -> str:
    sub = batchkit("sub", *cluster, *args)
    assert sub.code == 0, sub.out + sub.err
    return submitted_id(sub)


def submitted_id(sub: Result) -> str:
    match = SUBMITTED.search(sub.out)
    assert match, sub.out + sub.err
    return match[1]


def wait_for_end(batchkit: Run, job_id: str, *, cluster: str = CLUSTER_NAME) -> list[str]:
    """Poll `batchkit stat --json` until the job ends (bounded); the statuses seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + JOB_SECONDS
    while not seen or seen[-1] not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} did not end; statuses seen: {seen}"
        if seen:
            time.sleep(POLL_SECONDS)  # a real container is running: real time passes
        stat = batchkit("stat", "-c", cluster, "--json", job_id)
        assert stat.code == 0, stat.out + stat.err
        status = {job["jobId"]: str(job["status"]) for job in json.loads(stat.out)}[job_id]
        if not seen or seen[-1] != status:
            seen.append(status)
    return seen


def failed_exit_code(batchkit: Run, job_id: str, *, cluster: str = CLUSTER_NAME) -> str:
    """The exit code `batchkit stat -s FAILED` shows for the job (the table comes from ListJobs,
    which carries it on moto; DescribeJobs, behind `stat ID`, does not)."""
    table = batchkit("stat", "-c", cluster, "-s", "FAILED")
    assert table.code == 0, table.out + table.err
    lines = [line.split() for line in table.out.splitlines()]
    header = next(line for line in lines if line[:1] == ["jobId"])
    [row] = [line for line in lines if line[:1] == [job_id]]
    return row[header.index("exitCode")]


def test_a_staged_script_runs_in_a_container_and_its_output_comes_back(
    batchkit: Run, tmp_path: Path
) -> None:
    script = tmp_path / "greet.sh"
    script.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do printf \'arg=<%s>\\n\' "$arg"; done\n'
        "cat input.txt\n"
        'echo "in $(pwd)"\n'
    )
    (tmp_path / "input.txt").write_text("from the input file\n")
    job_id = submit(
        batchkit,
        "-jn",
        "greet",
        "-if",
        "input.txt",
        "-cf",
        "greet.sh",
        "arg1",
        "arg two",
        "it's $HOME *",
    )
    statuses = wait_for_end(batchkit, job_id)
    assert statuses[-1] == "SUCCEEDED", statuses
    out = batchkit("out", "-c", CLUSTER_NAME, "--raw", job_id)
    assert out.code == 0, out.out + out.err
    assert out.out.splitlines() == [
        "arg=<arg1>",
        "arg=<arg two>",
        "arg=<it's $HOME *>",
        "from the input file",
        f"in /job-{job_id}",
    ]


def test_a_failing_script_ends_failed_with_its_exit_code(batchkit: Run, tmp_path: Path) -> None:
    (tmp_path / "fail.sh").write_text("#!/bin/sh\necho about to fail >&2\nexit 7\n")
    wait = batchkit("sub", "-c", CLUSTER_NAME, "-jn", "fail", "--wait", "-cf", "fail.sh")
    assert wait.code == 1, wait.out + wait.err  # --wait: 1 when the job did not succeed
    job_id = submitted_id(wait)
    details = batchkit("stat", "-c", CLUSTER_NAME, "-d", job_id)
    assert details.code == 0, details.out + details.err
    assert re.search(r"^status\s+: FAILED$", details.out, re.MULTILINE), details.out
    assert failed_exit_code(batchkit, job_id) == "7"
    out = batchkit("out", "-c", CLUSTER_NAME, "--raw", job_id)
    assert out.out.splitlines() == ["about to fail"], out.out + out.err


def test_sub_follow_prints_the_output_of_the_container_with_exported_variables(
    batchkit: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hello.sh").write_text('#!/bin/sh\necho "$GREETING, $1"\n')
    monkeypatch.setenv("GREETING", "hello 'there' $USER")  # staged as hello.env.sh, sourced
    follow = batchkit(
        "sub", "-c", CLUSTER_NAME, "--follow", "-e", "GREETING", "-cf", "hello.sh", "x y"
    )
    assert follow.code == 0, follow.out + follow.err
    assert follow.out.splitlines()[-1].endswith(": hello 'there' $USER, x y"), follow.out


def test_a_dependent_job_starts_only_after_its_dependency_ended(
    batchkit: Run, tmp_path: Path
) -> None:
    (tmp_path / "first.sh").write_text("#!/bin/sh\nsleep 2\necho first\n")
    first = submit(batchkit, "-jn", "first", "-cf", "first.sh")
    second = submit(batchkit, "-jn", "second", "-d", f"jobId={first}", "--", "echo", "second")
    assert wait_for_end(batchkit, second)[-1] == "SUCCEEDED"
    stat = batchkit("stat", "-c", CLUSTER_NAME, "--json", first, second)
    jobs = {job["jobId"]: job for job in json.loads(stat.out)}
    assert jobs[first]["status"] == "SUCCEEDED", jobs
    assert jobs[second]["startedAt"] >= jobs[first]["stoppedAt"], jobs
    assert jobs[second]["dependsOn"] == [{"jobId": first}], jobs


BUSYBOX_CLUSTER = "bb-test"


@pytest.fixture
def busybox_cluster(
    docker_cluster: DockerCluster, busybox_image: str, _engine: Engine
) -> Iterator[str]:
    """A second cluster on the same server whose job image is busybox only: /bin/sh and its
    applets, no aws CLI, no python."""
    create_cluster(BUSYBOX_CLUSTER, endpoint_url=docker_cluster.endpoint, image=busybox_image)
    yield busybox_image
    _remove_containers(_engine.client, busybox_image)


def _sub_stdin(tmp_path: Path, script: str, *args: str) -> str:
    """`batchkit sub` with a script on stdin (the Run helper gives no stdin)."""
    exe = Path(sys.executable).parent / "batchkit"
    done = subprocess.run(
        [str(exe), "sub", "-c", BUSYBOX_CLUSTER, "-jn", "stdin", *args],
        cwd=tmp_path,
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return submitted_id(Result(done.returncode, done.stdout, done.stderr))


def _out(batchkit: Run, job_id: str) -> list[str]:
    out = batchkit("out", "-c", BUSYBOX_CLUSTER, "--raw", job_id)
    assert out.code == 0, out.out + out.err
    return out.out.splitlines()


def test_a_busybox_image_runs_inline_cf_stdin_and_env_jobs(
    batchkit: Run, tmp_path: Path, busybox_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing in the image but /bin/sh: the script, the -e variables and the arguments travel
    in the SubmitJob request, so no job fetches its folder."""
    hostile = ["it's", 'say "hi"', "$(touch pwned)", "`id`", "a\nb", "  two  spaces "]
    (tmp_path / "args.sh").write_text(
        '#!/bin/sh\nfor a in "$@"; do printf \'<%s>\\n\' "$a"; done\n'
    )
    monkeypatch.setenv("GREETING", "hello 'there' $(whoami)\nsecond line")
    bb = ("-c", BUSYBOX_CLUSTER)
    jobs = {
        "inline": submit_to(batchkit, bb, "-jn", "inline", "--", "echo", "inline $(not run)"),
        "cf": submit_to(batchkit, bb, "-jn", "cf", "-cf", "args.sh", *hostile),
        "stdin": _sub_stdin(tmp_path, 'echo "stdin says $(echo it\\\'s)"\n'),
        "env": submit_to(
            batchkit, bb, "-jn", "env", "-e", "GREETING", "--", "sh", "-c", 'echo "$GREETING"'
        ),
    }
    for job_id in jobs.values():
        statuses = wait_for_end(batchkit, job_id, cluster=BUSYBOX_CLUSTER)
        assert statuses[-1] == "SUCCEEDED", (statuses, _out(batchkit, job_id))
    assert _out(batchkit, jobs["inline"]) == ["inline $(not run)"]
    assert _out(batchkit, jobs["cf"]) == [
        "<it's>",
        '<say "hi">',
        "<$(touch pwned)>",
        "<`id`>",
        "<a",
        "b>",
        "<  two  spaces >",
    ]
    assert _out(batchkit, jobs["stdin"]) == ["stdin says it's"]
    assert _out(batchkit, jobs["env"]) == ["hello 'there' $(whoami)", "second line"]


def test_an_input_file_on_busybox_fails_at_once_naming_the_image_and_the_fix(
    batchkit: Run, tmp_path: Path, busybox_cluster: str
) -> None:
    (tmp_path / "never.sh").write_text("#!/bin/sh\necho never\n")
    (tmp_path / "data.txt").write_text("x\n")
    wait = batchkit(
        "sub", "-c", BUSYBOX_CLUSTER, "--wait", "-jn", "nofetch", "-if", "data.txt",
        "-cf", "never.sh",
    )  # fmt: skip
    assert wait.code == 1, wait.out + wait.err
    job_id = submitted_id(wait)
    assert failed_exit_code(batchkit, job_id, cluster=BUSYBOX_CLUSTER) == "127"
    [line] = _out(batchkit, job_id)
    assert line.startswith("batchkit-job: cannot download s3://"), line
    assert f"the image {busybox_cluster} has neither the aws CLI nor python3 with boto3" in line
    assert "(input file data.txt)" in line
    assert "batchkit image build --preset al2023" in line


def scale(x: int, *, factor: int) -> dict[str, object]:
    """Runs in the job's container (pickled by value: this module is not in the image)."""
    return {
        "value": x * factor,
        "in a container": os.path.exists("/.dockerenv"),
        "aws CLI": shutil.which("aws"),
    }


def test_a_function_job_returns_its_value_from_the_default_image_stand_in(
    default_cluster: str,
) -> None:
    """`Cluster.submit(fn)`: the payload and the runner staged in S3, fetched by the wrapper with
    `aws s3 sync`, the function called by the image's python3, its result put back with boto3
    and read by `result()`."""
    cluster = Cluster(open_provider(default_cluster))
    job = cluster.submit(scale, 6, factor=7, name="scale")
    assert job.result(timeout=JOB_SECONDS) == {
        "value": 42,
        "in a container": True,
        "aws CLI": "/usr/local/bin/aws",
    }


def test_an_input_file_job_fetches_its_folder_with_the_aws_cli(
    batchkit: Run, tmp_path: Path, default_cluster: str
) -> None:
    (tmp_path / "two words.txt").write_text("from the input file\n")
    (tmp_path / "show.sh").write_text(
        '#!/bin/sh\ncat "two words.txt"\ncommand -v aws\naws --version | cut -d/ -f1\nls\n'
    )
    job_id = submit_to(
        batchkit, ("-c", default_cluster), "-jn", "fetch", "-if", "two words.txt", "-cf", "show.sh"
    )
    statuses = wait_for_end(batchkit, job_id, cluster=default_cluster)
    out = batchkit("out", "-c", default_cluster, "--raw", job_id)
    assert statuses[-1] == "SUCCEEDED", (statuses, out.out, out.err)
    # the wrapper takes the aws CLI whenever the image has one; the folder is all there
    assert out.out.splitlines() == [
        "from the input file",
        "/usr/local/bin/aws",
        "aws-cli",
        "fetch.sh",  # the job's script, under the job's name
        "two words.txt",
    ]


@pytest.fixture
def array_job(batchkit: Run, tmp_path: Path) -> str:
    """A finished 3-child array job whose children each print one line."""
    (tmp_path / "child.sh").write_text('#!/bin/sh\necho "child of $1 ran"\n')
    job_id = submit(batchkit, "-jn", "fan", "-a", "3", "-cf", "child.sh", "fan")
    assert wait_for_end(batchkit, job_id)[-1] == "SUCCEEDED"
    return job_id


def test_every_child_of_an_array_job_runs_in_its_own_container(
    batchkit: Run, array_job: str
) -> None:
    for index in range(3):
        out = batchkit("out", "-c", CLUSTER_NAME, "--raw", f"{array_job}:{index}")
        assert out.out.splitlines() == ["child of fan ran"], out.out + out.err


def test_out_of_an_array_parent_prints_every_child(batchkit: Run, array_job: str) -> None:
    out = batchkit("out", "-c", CLUSTER_NAME, "--raw", array_job)
    assert out.out.splitlines() == [f"[{array_job}:{i}] child of fan ran" for i in range(3)], (
        out.out + out.err
    )

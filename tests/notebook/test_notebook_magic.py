"""`%%batchkit`: the flags of `batchkit sub` on a cell, through a fake provider."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest

from batchkit.api import Cluster
from batchkit.handles import Job
from batchkit.models import JobStatus
from batchkit.notebook import load_ipython_extension
from batchkit.notebook.magic import CellMagic
from tests.jobs.fakes import FakeProvider


@dataclass
class Magic:
    fake: FakeProvider = field(default_factory=FakeProvider)
    out: io.StringIO = field(default_factory=io.StringIO)
    err: io.StringIO = field(default_factory=io.StringIO)
    clusters: list[str | None] = field(default_factory=list)

    def run(self, line: str, cell: str) -> Job | None:
        def connect(name: str | None) -> Cluster:
            self.clusters.append(name)
            return Cluster(self.fake, sleep=lambda _s: None, monotonic=lambda: 0.0)

        magic = CellMagic(connect=connect, environ={"TOKEN_A": "1", "MINE": "v"})
        magic.out, magic.err = self.out, self.err
        return magic(line, cell)


@pytest.fixture
def magic() -> Magic:
    return Magic()


def test_the_cell_becomes_the_job_script_with_the_sub_flags(magic: Magic) -> None:
    handle = magic.run(
        "-jn prep -c research -p 2 -m 2048 --gpus 1 -a 3 -r 2 -t 120 -e MINE -- 'one arg' two",
        "echo $1\n",
    )

    assert isinstance(handle, Job)
    assert magic.clusters == ["research"]
    (request,) = magic.fake.requests
    assert request.name == "prep"
    assert (request.resources.vcpus, request.resources.memory, request.resources.gpus) == (
        2,
        2048,
        1,
    )
    assert (request.array_size, request.retry_attempts, request.timeout) == (3, 2, 120)
    assert request.command[-2:] == ("one arg", "two")
    folder = (request.s3_folder_url or "")[len("s3://fake-bucket/") :]
    assert magic.fake.objects.items[folder + "prep.sh"] == b"echo $1\n"
    assert magic.fake.objects.items[folder + "prep.env.sh"] == b"export MINE=v\n"
    assert magic.out.getvalue() == ""


def test_wait_prints_the_output_and_the_failure(magic: Magic) -> None:
    def run_to_failure(fake: FakeProvider) -> None:
        (job_id,) = [j for j in fake.jobs if fake.jobs[j].status is JobStatus.SUBMITTED] or [None]
        if job_id is not None:
            fake.start(job_id)
            fake.log(job_id, "working", "giving up")
            fake.finish(job_id, JobStatus.FAILED, exit_code=3)
            fake.set(job_id, status_reason="Essential container in task exited")

    magic.fake.on_describe = run_to_failure

    handle = magic.run("--wait", "echo working; exit 3")

    assert handle is not None and handle.info.status is JobStatus.FAILED
    assert magic.out.getvalue() == "working\ngiving up\n"
    err = magic.err.getvalue()
    assert f"Job {handle.job_id} (cell) has been submitted." in err
    assert f"job {handle.job_id} FAILED: Essential container in task exited" in err
    assert f"cell {handle.job_id} [" in err  # the progress line


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--vcpus lots", "echo", "argument -p/--vcpus: invalid float value: 'lots'"),
        ("--bogus", "echo", "unrecognized arguments: --bogus"),
        ("-w a -pw b", "echo", "cannot be used together"),
        ("-eb HOME", "echo", "-eb/--env-blacklist is only allowed with -e all"),
        ("-jn 'unclosed", "echo", "No closing quotation"),
        ("", "   \n", "the cell is empty"),
        ("-d 'jobId=a,type=BOGUS'", "echo", "unknown dependency type"),
    ],
)
def test_mistakes_print_error_and_hint_and_submit_nothing(
    magic: Magic, line: str, cell: str, message: str
) -> None:
    assert magic.run(line, cell) is None

    err = magic.err.getvalue()
    assert err.startswith("error: ")
    assert message in err
    assert "\nhint: " in err
    assert magic.fake.requests == []


def test_help_lists_the_flags(magic: Magic) -> None:
    assert magic.run("--help", "") is None

    help_text = magic.err.getvalue()
    for flag in ("-jn", "--vcpus", "--array-size", "--depends-on", "--wait", "--image"):
        assert flag in help_text


def test_load_ext_registers_the_cell_magic() -> None:
    registered: list[tuple[object, str, str]] = []

    class Shell:
        def register_magic_function(self, func: object, magic_kind: str, magic_name: str) -> None:
            registered.append((func, magic_kind, magic_name))

    load_ipython_extension(Shell())

    ((func, kind, name),) = registered
    assert (kind, name) == ("cell", "batchkit")
    assert isinstance(func, CellMagic)


def test_spot_retry_and_the_configured_env_blacklist(magic: Magic, isolated_environment) -> None:
    isolated_environment.mkdir(parents=True, exist_ok=True)
    (isolated_environment / "config.yaml").write_text("env_blacklist: [MINE]\n")

    magic.run("--spot-retry -e all", "echo")

    (request,) = magic.fake.requests
    assert request.tags["batchkit:spot-retry"] == "true"
    folder = (request.s3_folder_url or "")[len("s3://fake-bucket/") :]
    assert folder + "cell.env.sh" not in magic.fake.objects.items  # MINE left out, TOKEN_A too


def test_share_and_priority_reach_the_submission(magic: Magic) -> None:
    magic.fake.fair_share_queues = frozenset({"shared"})
    magic.run("-q shared --share genomics --priority 40", "echo hi\n")
    (request,) = magic.fake.requests
    assert (request.queue, request.share, request.priority) == ("shared", "genomics", 40)

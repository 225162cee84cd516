"""The one wrapper, run for real with /bin/sh: every mode by -w/-pw/-e/-if, and hostile arguments
that must reach the job byte-exact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchkit.jobs.staging import StagingPlan, plan_staging
from batchkit.jobs.wrapper import WRAPPER_SH, user_command
from batchkit.models import JobSpec

# A job that records where it ran, what it received and the variable FOO.
RECORDER = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[1:], 'cwd': os.getcwd(), 'foo': os.environ.get('FOO'), "
    "'files': sorted(os.listdir('.'))}, open(os.environ['RECORD'], 'w'))"
)
SCRIPT = b"""#!/bin/sh
exec "$PYTHON" -c "$RECORDER" "$@"
"""

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch pwned)",
    "`touch pwned2`",
    "a\nb",
    "  spaced  ",
    "",
    "-e",
    "--",
    "ünïcødé ✓ 日本",
    "*",
    "$HOME",
    "\\",
    ";rm -rf /;",
]


def stage(plan: StagingPlan, root: Path) -> Path:
    """Lay the planned objects out the way the local engine's object store does."""
    for item in plan.objects:
        target = root / item.key
        if item.key.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.body)
    return root / plan.folder_key


@dataclass(frozen=True)
class Shell:
    """A POSIX shell to run the wrapper with, and the PATH its tools come from."""

    argv: tuple[str, ...]
    path: str


def shells(tmp_root: Path) -> dict[str, Shell]:
    found = {"dash": Shell(("/bin/sh",), os.environ["PATH"])}
    if shutil.which("bash"):
        found["bash"] = Shell((shutil.which("bash"), "--posix"), os.environ["PATH"])
    busybox = shutil.which("busybox")
    if busybox:  # as in a busybox image: the shell and every tool are busybox applets
        applets = tmp_root / "busybox-bin"
        applets.mkdir(exist_ok=True)
        for tool in ("mkdir", "cp", "chmod", "mv", "printf"):
            (applets / tool).symlink_to(busybox)
        found["busybox"] = Shell((busybox, "sh"), str(applets))
    return found


@pytest.fixture(params=["dash", "bash", "busybox"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Shell:
    available = shells(tmp_path)
    if request.param not in available:
        pytest.skip(f"{request.param} is not installed here")
    return available[request.param]


def run(
    plan: StagingPlan,
    tmp_path: Path,
    *,
    job_id: str = "abc-1",
    shell: Shell = Shell(("/bin/sh",), os.environ["PATH"]),
) -> tuple[subprocess.CompletedProcess[str], dict]:
    start = tmp_path / "start"
    start.mkdir(exist_ok=True)
    record = tmp_path / "record.json"
    env = {
        "PATH": shell.path,
        "AWS_BATCH_JOB_ID": job_id,
        "PCLUSTER_JOB_S3_URL": "s3://fake/" + plan.folder_key,
        "BATCHKIT_JOB_STAGE_DIR": str(stage(plan, tmp_path / "s3")),
        "RECORD": str(record),
        "PYTHON": sys.executable,
        "RECORDER": RECORDER,
        **plan.environment,
    }
    assert plan.command[0] == "/bin/sh"
    argv = [*shell.argv, *plan.command[1:]]
    proc = subprocess.run(argv, cwd=start, env=env, capture_output=True, text=True)
    data = json.loads(record.read_text()) if record.exists() else {}
    return proc, data


def inline(**kw: object) -> JobSpec:
    return JobSpec(name="job", command=(sys.executable, "-c", RECORDER, *kw.pop("args", ())), **kw)  # type: ignore[arg-type]


def script(**kw: object) -> JobSpec:
    return JobSpec(name="job", script=SCRIPT, arguments=tuple(kw.pop("args", ())), **kw)  # type: ignore[arg-type]


def plan(spec: JobSpec, inputs: dict[str, bytes] | None = None) -> StagingPlan:
    return plan_staging(spec, artifact_root="root", epoch_ms=1, input_files=inputs)


@pytest.mark.parametrize("make", [inline, script], ids=["inline", "script"])
@pytest.mark.parametrize(
    ("dirs", "expected"),
    [
        ({}, "start/job-abc-1"),
        ({"working_dir": "wd"}, "start/wd"),
        ({"parent_working_dir": "p q"}, "start/p q/job-abc-1"),
    ],
    ids=["default", "-w", "-pw"],
)
def test_every_mode_runs_in_its_working_directory_with_env_and_inputs(
    tmp_path: Path, make, dirs: dict[str, str], expected: str, shell: Shell
) -> None:
    spec = make(env={"FOO": "it's $(bar)"}, input_files=("data.txt",), args=["x y"], **dirs)
    proc, data = run(plan(spec, {"data.txt": b"payload"}), tmp_path, shell=shell)

    assert proc.returncode == 0, proc.stderr
    assert data["cwd"] == str(tmp_path / expected)
    assert data["argv"] == ["x y"]
    assert data["foo"] == "it's $(bar)"
    assert "data.txt" in data["files"]
    assert (tmp_path / expected / "data.txt").read_bytes() == b"payload"


@pytest.mark.parametrize("make", [inline, script], ids=["inline", "script"])
def test_hostile_arguments_arrive_byte_exact(tmp_path: Path, make, shell: Shell) -> None:
    proc, data = run(plan(make(args=HOSTILE)), tmp_path, shell=shell)

    assert proc.returncode == 0, proc.stderr
    assert data["argv"] == HOSTILE
    assert not list(tmp_path.rglob("pwned*"))


@pytest.mark.parametrize("make", [inline, script], ids=["inline", "script"])
def test_hundred_kilobytes_of_arguments_travel_in_the_job_folder(
    tmp_path: Path, make, shell: Shell
) -> None:
    big = [f"arg {i} 'quoted' $(x) \n" + "z" * 100 for i in range(1000)]
    staged = plan(make(args=big))

    assert len(json.dumps(staged.command)) < 30 * 1024
    assert "job.args" in staged.files
    proc, data = run(staged, tmp_path, shell=shell)
    assert proc.returncode == 0, proc.stderr
    assert data["argv"] == big


def test_hostile_working_directory_is_not_interpreted(tmp_path: Path) -> None:
    weird = "dir $(touch pwned) 'q' `x`"
    proc, data = run(plan(inline(working_dir=weird)), tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert data["cwd"] == str(tmp_path / "start" / weird)
    assert not list(tmp_path.rglob("pwned"))


def test_env_file_cannot_hijack_the_wrapper(tmp_path: Path) -> None:
    spec = inline(env={"_batchkit_mode": "script"})
    proc, _ = run(plan(spec), tmp_path)

    assert proc.returncode != 0  # the readonly guard stops it rather than running something else


def test_a_script_without_shebang_runs_with_sh(tmp_path: Path) -> None:
    spec = JobSpec(name="STDIN", script=b'echo "$1" > "$RECORD.txt"\n', arguments=("hello",))
    proc, _ = run(plan(spec), tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "record.json.txt").read_text() == "hello\n"


def test_inline_job_with_nothing_staged_does_not_fetch(tmp_path: Path) -> None:
    staged = plan(JobSpec(name="job", command=("true",)))

    assert not staged.needs_fetch
    proc = subprocess.run(staged.command, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0


def _bare_bin(tmp_path: Path) -> Path:
    """A PATH with the wrapper's tools only: no aws CLI, no python3."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "cp", "chmod", "mv"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    return bin_dir


def test_no_way_to_fetch_is_a_clear_error_127_naming_the_image_and_the_fix(
    tmp_path: Path,
) -> None:
    staged = plan(script(input_files=("data.txt",)), {"data.txt": b"x"})
    assert staged.needs_fetch and staged.fetch_reason == "input file data.txt"
    env = {
        "PATH": str(_bare_bin(tmp_path)),
        "PCLUSTER_JOB_S3_URL": "s3://b/k/",
        "AWS_BATCH_JOB_ID": "j",
        "BATCHKIT_JOB_IMAGE": "busybox:latest",
        "BATCHKIT_JOB_FETCH_REASON": staged.fetch_reason,
        **staged.environment,
    }
    proc = subprocess.run(staged.command, cwd=tmp_path, env=env, capture_output=True, text=True)

    assert proc.returncode == 127
    assert proc.stderr.startswith("batchkit-job: cannot download s3://b/k/")
    assert "the image busybox:latest has neither the aws CLI nor python3 with boto3" in proc.stderr
    assert "(input file data.txt)" in proc.stderr
    assert "batchkit image build --preset al2023" in proc.stderr


@pytest.mark.parametrize("make", [inline, script], ids=["inline", "script"])
def test_script_env_and_arguments_travel_in_the_request_not_the_folder(
    tmp_path: Path, make, shell: Shell
) -> None:
    spec = make(env={"FOO": "it's $(bar)\nline 2"}, args=[a for a in HOSTILE if a])
    staged = plan(spec)
    assert not staged.needs_fetch
    assert [o.key.rsplit("/", 1)[-1] for o in staged.objects] == (
        ["job.sh", "job.env.sh"] if spec.script else ["job.env.sh"]
    )  # still written in awsbsub's layout, for awsbatch-cli and the record
    env = {
        "PATH": f"{_bare_bin(tmp_path)}:{shell.path}" if shell.argv[0] == "/bin/sh" else shell.path,
        "AWS_BATCH_JOB_ID": "abc-1",
        "RECORD": str(tmp_path / "record.json"),
        "PYTHON": sys.executable,
        "RECORDER": RECORDER,
        **staged.environment,
    }
    argv = [*shell.argv, *staged.command[1:]]
    (tmp_path / "start").mkdir()
    proc = subprocess.run(argv, cwd=tmp_path / "start", env=env, capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "record.json").read_text())
    assert data["argv"] == [a for a in HOSTILE if a]
    assert data["foo"] == "it's $(bar)\nline 2"
    assert not list(tmp_path.rglob("pwned*"))


def test_content_too_large_for_the_request_moves_to_the_folder() -> None:
    big_script = b"#!/bin/sh\n" + b"# padding\n" * 4000
    staged = plan(JobSpec(name="job", script=big_script, env={"FOO": "1"}))
    assert staged.needs_fetch
    assert staged.fetch_reason == "the script, too large for the SubmitJob request"
    assert "BATCHKIT_JOB_SCRIPT" not in staged.environment
    assert "FOO=1" in staged.command  # the small part still travels inline
    binary = plan(JobSpec(name="job", script=b"\xff\xfe"))
    assert binary.needs_fetch and "BATCHKIT_JOB_SCRIPT" not in binary.environment
    empty_arg = plan(inline(args=["a", ""]))
    assert empty_arg.fetch_reason.startswith("the arguments, which cannot travel")
    assert "" not in empty_arg.command  # AWS Batch refuses an empty string in a command


def test_wrapper_text_is_a_constant() -> None:
    a = plan(inline(args=["$(one)"]))
    b = plan(script(args=["two"], working_dir="/x"))

    assert a.command[2] == b.command[2] == WRAPPER_SH
    assert "$(one)" not in WRAPPER_SH


def test_user_command_recovers_what_was_typed() -> None:
    assert user_command(plan(JobSpec(name="j", command=("ls", "-la"))).command) == ["ls", "-la"]
    assert user_command(plan(script(args=["a"])).command) == ["./job.sh", "a"]
    assert user_command(["echo", "raw"]) == ["echo", "raw"]


def test_nodes_sharing_a_working_directory_each_run_the_script(tmp_path: Path) -> None:
    """The nodes of a multi-node job with one `-w` directory (a shared file system on AWS, the
    same folder locally) all write `NAME.sh` there and run it at once: none may ever find it not
    yet executable (exit 126, as the 4-node MPI bench did before the wrapper renamed an
    executable file into place)."""
    from batchkit.jobs.wrapper import WorkdirKind, WrapperMode, WrapperOptions, wrapper_argv

    shared = tmp_path / "shared"
    options = WrapperOptions(
        WrapperMode.SCRIPT, "run", workdir_kind=WorkdirKind.DIR, workdir=str(shared)
    )
    argv = wrapper_argv(options, ["node"])
    env = {**os.environ, "BATCHKIT_JOB_SCRIPT": '#!/bin/sh\necho "$1 $AWS_BATCH_JOB_ID"\n'}
    failed: list[str] = []
    for round_ in range(8):
        nodes = [
            subprocess.Popen(
                argv,
                env={**env, "AWS_BATCH_JOB_ID": f"job{round_}#{i}"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(12)
        ]
        for node in nodes:
            out, err = node.communicate(timeout=60)
            if node.returncode != 0 or not out.startswith("node job"):
                failed.append(f"exit {node.returncode}: {err.strip()}")

    assert not failed, failed[:3]

"""The Docker executor: pure container options and log parsing, then real containers."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound

from batchkit.errors import EngineError
from batchkit.models import Resources
from batchkit.providers.local.docker_executor import DockerExecutor
from batchkit.providers.local.docker_run import OOM_REASON, DockerRun, LogPump, split_log_timestamp
from batchkit.providers.local.docker_spec import (
    LABEL_HOME,
    LABEL_JOB_ID,
    container_environment,
    container_name,
    container_options,
    results_dir,
)
from batchkit.providers.local.executor import RunSpec
from batchkit.providers.local.objects import LocalObjectStore

HOSTILE = 'it\'s "quoted" $(touch /tmp/pwned) `id` \\ ; && | \n second line ünïcødé ☃'


class Lines:
    """A LogSink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []
        self._lock = threading.Lock()

    def append(self, message: str, timestamp: int | None = None) -> None:
        with self._lock:
            self.events.append((message, timestamp))

    def extend(self, messages: Sequence[str], timestamp: int | None = None) -> None:
        with self._lock:
            self.events.extend((message, timestamp) for message in messages)

    @property
    def messages(self) -> list[str]:
        with self._lock:
            return [message for message, _ in self.events]


def make_spec(tmp_path: Path, argv: tuple[str, ...], **overrides: Any) -> RunSpec:
    values: dict[str, Any] = {
        "job_id": "0f5c1f9e-job",
        "attempt": 1,
        "argv": argv,
        "env": {"AWS_BATCH_JOB_ID": "0f5c1f9e-job"},
        "workdir": tmp_path / "work" / "attempt-1",
        "resources": Resources(vcpus=1, memory=64),
        "image": "batchkit-base/busybox:latest",
    }
    values.update(overrides)
    return RunSpec(**values)


# --- pure parts ---------------------------------------------------------------------------------


def test_options_use_host_network_limits_and_same_path_mounts(tmp_path: Path) -> None:
    stage = tmp_path / "s3" / "batchkit-local" / "job-x"
    spec = make_spec(
        tmp_path,
        ("/bin/sh", "-c", "echo hi"),
        resources=Resources(vcpus=1.5, memory=256),
        stage_dir=stage,
    )

    options = container_options(spec, name="n", home=tmp_path / "home", user=None)

    assert options["network_mode"] == "host"
    assert options["nano_cpus"] == 1_500_000_000
    assert options["mem_limit"] == 256 * 1024 * 1024
    assert options["memswap_limit"] == 256 * 1024 * 1024
    assert options["working_dir"] == str(spec.workdir)
    mounts = {m["Target"]: m for m in options["mounts"]}
    assert mounts[str(spec.workdir)]["Source"] == str(spec.workdir)
    assert mounts[str(spec.workdir)]["ReadOnly"] is False
    assert mounts[str(stage)]["Source"] == str(stage)
    assert mounts[str(stage)]["ReadOnly"] is True
    assert options["labels"][LABEL_JOB_ID] == "0f5c1f9e-job"
    assert options["labels"][LABEL_HOME] == str(tmp_path / "home")
    assert "user" not in options
    assert "device_requests" not in options


def test_options_cap_cpus_at_host_count_and_request_gpus(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ("true",), resources=Resources(vcpus=8, memory=64, gpus=2))

    options = container_options(spec, name="n", home=tmp_path, user="1000:1000", host_cpus=2)

    assert options["nano_cpus"] == 2_000_000_000
    assert options["user"] == "1000:1000"
    [request] = options["device_requests"]
    assert request["Count"] == 2
    assert request["Capabilities"] == [["gpu"]]


def test_options_pass_argv_and_job_variables_unchanged_but_drop_host_ones(tmp_path: Path) -> None:
    env = {
        "PATH": "/home/me/.venv/bin:/usr/bin",
        "HOME": "/home/me",
        "TMPDIR": "/tmp/me",
        "SHELL": "/bin/zsh",
        "USER": "me",
        "LC_ALL": "en_GB.UTF-8",
        "MY_VAR": HOSTILE,
        "AWS_BATCH_JOB_NODE_INDEX": "1",
    }
    spec = make_spec(tmp_path, ("/bin/sh", "-c", 'printf %s "$1"', "x", HOSTILE), env=env)

    options = container_options(spec, name="n", home=tmp_path, user=None)

    assert options["command"] == ["/bin/sh", "-c", 'printf %s "$1"', "x", HOSTILE]
    assert options["environment"] == {"MY_VAR": HOSTILE, "AWS_BATCH_JOB_NODE_INDEX": "1"}


def test_options_refuse_a_spec_without_image(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no image"):
        container_options(
            make_spec(tmp_path, ("true",), image=None), name="n", home=tmp_path, user=None
        )


def test_container_environment_keeps_everything_but_the_dropped_names() -> None:
    assert container_environment({"A": "1", "HOME": "/h"}, drop=("A",)) == {"HOME": "/h"}


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("abc", "batchkit-abc-2-s"),
        ("abc:3", "batchkit-abc-3-2-s"),
        ("abc#1", "batchkit-abc-1-2-s"),
        ("#$%", "batchkit-job-2-s"),
    ],
)
def test_container_names_are_valid_docker_names(job_id: str, expected: str) -> None:
    assert container_name(job_id, 2, "s") == expected


def test_log_timestamps_are_split_off_as_epoch_milliseconds() -> None:
    assert split_log_timestamp("2026-11-25T12:00:01.234567891Z hello world\n") == (
        1795608001234,
        "hello world\n",
    )
    assert split_log_timestamp("2026-11-25T12:00:01Z x") == (1795608001000, "x")
    assert split_log_timestamp("no stamp here") == (None, "no stamp here")


class FakeLogs:
    """A container whose follow stream ends early, as Docker 20.10's can for short-lived ones."""

    short_id = "c0ffee"

    def __init__(self, followed: list[bytes], full: list[bytes]) -> None:
        self._followed = followed
        self._full = full

    def logs(self, stream: bool, follow: bool, timestamps: bool) -> Iterator[bytes]:
        assert stream and timestamps
        return iter(self._followed if follow else self._full)


def test_log_pump_copies_each_message_once_and_catches_up_what_follow_missed() -> None:
    full = [
        b"2026-11-25T12:00:01.000000000Z first\n",
        b"2026-11-25T12:00:01.500000000Z second\n",
        b"2026-11-25T12:00:02.000000000Z a line split by Docker at 16 KiB, part 1 ",
        b"2026-11-25T12:00:02.000000000Z part 2\n",
    ]
    lines = Lines()
    pump = LogPump(FakeLogs(full[:2], full), lines)

    pump.start()
    pump.join(timeout=5)

    assert lines.events == [
        ("first", 1795608001000),
        ("second", 1795608001500),
        ("a line split by Docker at 16 KiB, part 1 ", 1795608002000),
        ("part 2", 1795608002000),
    ]


class FakeContainer:
    """Just enough of docker's Container for DockerRun: a scripted reload()."""

    id = "c0ffee" * 10
    name = "batchkit-test"

    def __init__(self, states: list[dict[str, Any] | Exception]) -> None:
        self._states = states
        self.attrs: dict[str, Any] = {}
        self.removed = 0
        self.client = self
        self.api = self

    def reload(self) -> None:
        state = self._states.pop(0) if len(self._states) > 1 else self._states[0]
        if isinstance(state, Exception):
            raise state
        self.attrs = {"State": state}

    def remove_container(self, container_id: str, v: bool, force: bool) -> None:
        assert container_id == self.id and force
        self.removed += 1


class FakePump:
    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_poll_waits_for_the_last_log_lines_but_not_forever() -> None:
    container = FakeContainer([{"Status": "exited", "ExitCode": 3, "OOMKilled": False}])
    pump = FakePump(alive=True)
    clock = Clock()
    run = DockerRun(container, pump, job_id="j", attempt=1, clock=clock, log_grace=10)

    assert run.poll() is None
    clock.now = 5
    assert run.poll() is None
    clock.now = 10
    assert run.poll() == 3
    assert container.removed == 1
    assert run.poll() == 3
    assert container.removed == 1


def test_poll_reports_out_of_memory_as_batch_does() -> None:
    container = FakeContainer([{"Status": "exited", "ExitCode": 137, "OOMKilled": True}])
    run = DockerRun(container, FakePump(alive=False), job_id="j", attempt=1)

    assert run.poll() == 137
    assert run.reason == OOM_REASON


def test_poll_gives_up_on_an_engine_that_stays_unreachable() -> None:
    container = FakeContainer([ConnectionError("connection refused")])
    clock = Clock()
    run = DockerRun(
        container, FakePump(alive=False), job_id="j", attempt=1, clock=clock, engine_grace=60
    )

    assert run.poll() is None
    clock.now = 59
    assert run.poll() is None
    clock.now = 61
    assert run.poll() == 255
    assert run.reason is not None and "unreachable" in run.reason


def test_poll_treats_a_vanished_container_as_killed() -> None:
    run = DockerRun(FakeContainer([NotFound("gone")]), FakePump(alive=False), job_id="j", attempt=1)

    assert run.poll() == 137
    assert run.reason is not None and "disappeared" in run.reason


# --- real containers ----------------------------------------------------------------------------


def labelled(client: Any, home: Path) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_HOME}={home}"}))


@pytest.fixture
def executor(docker_engine: Any, busybox_image: str, tmp_path: Path) -> Iterator[DockerExecutor]:
    """A Docker executor with a home of its own; asserts it leaves no container behind."""
    home = tmp_path / "batchkit-home"
    yield DockerExecutor(docker_engine, home=home)
    leftovers = labelled(docker_engine, home)
    for container in leftovers:
        container.remove(force=True)
    assert leftovers == []


def wait(run: Any, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (code := run.poll()) is None:
        assert time.monotonic() < deadline, "the container did not end in time"
        time.sleep(0.05)
    return int(code)


@pytest.mark.docker
def test_a_job_runs_in_a_container_with_its_workdir_stage_dir_and_environment(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    stage = tmp_path / "s3" / "job-1"
    stage.mkdir(parents=True)
    (stage / "hello.sh").write_text("staged\n")
    script = (
        'test -f /.dockerenv && echo container; pwd; echo "$PATH"; printf "%s\\n" "$MY_VAR"; '
        'cat "$BATCHKIT_JOB_STAGE_DIR/hello.sh"; echo to-stderr >&2; '
        'touch "$BATCHKIT_JOB_STAGE_DIR/new" 2>/dev/null || echo stage-read-only; '
        'mkdir "job-$AWS_BATCH_JOB_ID" && echo out > "job-$AWS_BATCH_JOB_ID/result"; exit 7'
    )
    spec = make_spec(
        tmp_path,
        ("/bin/sh", "-c", script),
        env={
            "AWS_BATCH_JOB_ID": "j1",
            "BATCHKIT_JOB_STAGE_DIR": str(stage),
            "MY_VAR": HOSTILE,
            "PATH": "/nonexistent/host/bin",
        },
        stage_dir=stage,
    )
    lines = Lines()
    before_ms = int(time.time() * 1000)

    run = executor.start(spec, lines)

    assert wait(run) == 7
    # Docker copies stdout and stderr separately: each keeps its order, not their interleaving.
    stdout = [message for message in lines.messages if message != "to-stderr"]
    assert stdout == [
        "container",
        str(spec.workdir),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        *HOSTILE.split("\n"),
        "staged",
        "stage-read-only",
    ]
    assert lines.messages.count("to-stderr") == 1
    assert all(
        ts is not None and before_ms - 5000 <= ts <= before_ms + 60_000 for _, ts in lines.events
    )
    assert (spec.workdir / "job-j1" / "result").read_text() == "out\n"
    assert run.identity()["container_id"] == run.container_id


@pytest.mark.docker
def test_memory_and_cpu_limits_are_applied_inside(executor: DockerExecutor, tmp_path: Path) -> None:
    script = (  # cgroup v1 files first, then v2
        "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes 2>/dev/null || cat memory.max;"
        " if [ -f cpu/cpu.cfs_quota_us ]; then"
        " echo $(cat cpu/cpu.cfs_quota_us) $(cat cpu/cpu.cfs_period_us); else cat cpu.max; fi"
    )
    spec = make_spec(tmp_path, ("/bin/sh", "-c", script), resources=Resources(vcpus=0.5, memory=96))
    lines = Lines()

    assert wait(executor.start(spec, lines)) == 0

    memory, cpu = lines.messages
    assert int(memory) == 96 * 1024 * 1024
    quota, period = (int(x) for x in cpu.split())
    assert quota / period == pytest.approx(0.5)


@pytest.mark.docker
def test_a_job_over_its_memory_is_killed_with_batch_reason(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    spec = make_spec(
        tmp_path,
        ("/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1"),
        resources=Resources(memory=32),
    )

    run = executor.start(spec, Lines())

    assert wait(run) == 137
    assert run.reason == OOM_REASON


@pytest.mark.docker
def test_kill_stops_and_removes_the_container(
    executor: DockerExecutor, docker_engine: Any, tmp_path: Path
) -> None:
    lines = Lines()
    run = executor.start(make_spec(tmp_path, ("/bin/sh", "-c", "echo up; sleep 300")), lines)
    deadline = time.monotonic() + 30
    while "up" not in lines.messages:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(labelled(docker_engine, executor.home)) == 1

    started = time.monotonic()
    run.kill()
    run.kill()

    assert time.monotonic() - started < 15
    assert labelled(docker_engine, executor.home) == []
    assert run.poll() == 137


@pytest.mark.docker
def test_an_orphan_left_by_a_dead_worker_is_reaped(
    executor: DockerExecutor, docker_engine: Any, tmp_path: Path
) -> None:
    run = executor.start(make_spec(tmp_path, ("sleep", "300")), Lines())
    identity = run.identity()
    del run  # the worker died: nobody polls or kills this run any more

    DockerExecutor(docker_engine, home=executor.home).reap_orphan(identity)
    DockerExecutor(docker_engine, home=executor.home).reap_orphan(identity)  # gone: no error

    assert labelled(docker_engine, executor.home) == []


@pytest.mark.docker
def test_leftovers_are_found_and_removed_by_home_label(
    executor: DockerExecutor, docker_engine: Any, tmp_path: Path
) -> None:
    other = DockerExecutor(docker_engine, home=tmp_path / "another-home")
    mine = executor.start(make_spec(tmp_path, ("sleep", "300")), Lines())
    theirs = other.start(make_spec(tmp_path, ("sleep", "300"), job_id="theirs"), Lines())
    try:
        assert executor.leftover_containers() == [mine.container_id]
        assert executor.remove_leftovers() == 1
        assert other.leftover_containers() == [theirs.container_id]
    finally:
        theirs.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.docker
def test_two_mnp_nodes_rendezvous_over_the_loopback(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    port = str(free_port())
    env = {"AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1", "PORT": port}
    main = make_spec(
        tmp_path,
        # stdin held open (a FIFO opened read-write): with /dev/null, busybox nc half-closes the
        # connection at once and the other node may quit before sending its line
        ("/bin/sh", "-c", 'mkfifo /tmp/hold && nc -l -p "$PORT" 0<>/tmp/hold'),
        job_id="mnp#0",
        env={**env, "AWS_BATCH_JOB_NODE_INDEX": "0"},
        workdir=tmp_path / "work" / "node-0",
    )
    child = make_spec(
        tmp_path,
        (
            "/bin/sh",
            "-c",
            'for i in $(seq 100); do echo "hello from node $AWS_BATCH_JOB_NODE_INDEX" |'
            ' nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" "$PORT" && exit 0;'
            " sleep 0.1; done; exit 1",
        ),
        job_id="mnp#1",
        env={**env, "AWS_BATCH_JOB_NODE_INDEX": "1"},
        workdir=tmp_path / "work" / "node-1",
    )
    main_lines = Lines()

    main_run = executor.start(main, main_lines)
    child_run = executor.start(child, Lines())

    assert wait(child_run) == 0
    assert wait(main_run) == 0
    assert main_lines.messages == ["hello from node 1"]


@pytest.mark.docker
def test_a_missing_image_is_a_clear_error_and_is_never_pulled(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, ("true",), image="example.invalid/not-here:1.0")

    with pytest.raises(EngineError) as raised:
        executor.start(spec, Lines())

    assert "example.invalid/not-here:1.0" in raised.value.message
    assert "no registry" in raised.value.message
    assert raised.value.hint is not None and "docker build" in raised.value.hint


@pytest.mark.docker
def test_a_short_name_runs_the_image_batchkit_built_locally(
    executor: DockerExecutor, docker_engine: Any, busybox_image: str, tmp_path: Path
) -> None:
    """`--image tools` on the local engine is `batchkit image build --local --name tools`'s
    `batchkit/tools:latest` when the engine has no image called `tools` itself."""
    name = f"bk-short-{tmp_path.name[-8:].lower().replace('_', '-')}"
    docker_engine.images.get(busybox_image).tag(f"batchkit/{name}", "latest")
    try:
        lines = Lines()
        run = executor.start(make_spec(tmp_path, ("echo", "short"), image=name), lines)
        assert wait(run) == 0
        assert lines.messages == ["short"]
        with pytest.raises(EngineError, match="not-built-here"):
            executor.start(make_spec(tmp_path, ("true",), image="not-built-here"), Lines())
    finally:
        docker_engine.images.remove(f"batchkit/{name}:latest")


@pytest.mark.docker
def test_python_jobs_run_on_the_debian_base_image(
    executor: DockerExecutor, debian_image: str, tmp_path: Path
) -> None:
    spec = make_spec(
        tmp_path,
        ("/bin/bash", "-c", 'python3 -c "import sys; print(sys.version_info[0])"'),
        image=debian_image,
    )
    lines = Lines()

    assert wait(executor.start(spec, lines)) == 0
    assert lines.messages == ["3"]


@pytest.mark.docker
def test_arguments_reach_the_container_byte_exact(executor: DockerExecutor, tmp_path: Path) -> None:
    arguments = (HOSTILE, "", "-n", "*", "$HOME", "a\tb")
    spec = make_spec(
        tmp_path,
        ("/bin/sh", "-c", 'for a in "$@"; do printf "[%s]\\n" "$a"; done', "sh", *arguments),
    )
    lines = Lines()

    assert wait(executor.start(spec, lines)) == 0
    assert "\n".join(lines.messages) == "\n".join(f"[{a}]" for a in arguments)


@pytest.mark.docker
def test_a_non_root_user_owns_what_the_job_writes(
    docker_engine: Any, executor: DockerExecutor, tmp_path: Path
) -> None:
    as_nobody = DockerExecutor(docker_engine, home=executor.home, user="65534:65534")
    spec = make_spec(tmp_path, ("/bin/sh", "-c", "id -u; echo data > out"))
    spec.workdir.mkdir(parents=True)
    spec.workdir.chmod(0o777)
    lines = Lines()

    assert wait(as_nobody.start(spec, lines)) == 0
    assert lines.messages == ["65534"]
    assert (spec.workdir / "out").stat().st_uid == 65534


@pytest.mark.docker
@pytest.mark.skipif(os.geteuid() != 0, reason="the image's user is kept only when batchkit is root")
def test_as_root_a_container_job_writes_its_results_into_a_0700_folder_of_the_images_user(
    docker_engine: Any, busybox_image: str, tmp_path: Path
) -> None:
    """No world-writable folder: results/ is 0700 and belongs to the image's USER (1000), the
    result the job wrote there is that user's, and root reads it back through the local bucket."""
    dockerfile = f"FROM {busybox_image}\nUSER 1000:1000\n".encode()
    image, _ = docker_engine.images.build(
        fileobj=io.BytesIO(dockerfile), tag="batchkit-test/user1000:latest", rm=True
    )
    home = tmp_path / "batchkit-home"
    objects = LocalObjectStore(home / "s3")
    objects.put("local/batch/job-u/function.pkl", b"payload")
    stage = objects.bucket_dir / "local" / "batch" / "job-u"
    executor = DockerExecutor(docker_engine, home=home, user=None)
    script = 'id -u; printf r > "$BATCHKIT_JOB_STAGE_DIR.results/0.pkl"'
    spec = make_spec(
        tmp_path,
        ("/bin/sh", "-c", script),
        env={"AWS_BATCH_JOB_ID": "j1", "BATCHKIT_JOB_STAGE_DIR": str(stage)},
        stage_dir=stage,
        image="batchkit-test/user1000:latest",
    )
    lines = Lines()
    try:
        assert wait(executor.start(spec, lines)) == 0
    finally:
        for container in labelled(docker_engine, home):
            container.remove(force=True)
        docker_engine.images.remove(image.id, force=True)
    assert lines.messages[0] == "1000"
    results = results_dir(stage)
    for folder in (results, stage, spec.workdir):
        info = folder.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o700, 1000, 1000)
    assert (results / "0.pkl").stat().st_uid == 1000
    assert objects.get("local/batch/job-u.results/0.pkl") == b"r"

"""Executor selection: Docker for image jobs when an engine answers, else a local process."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from docker.errors import DockerException

from batchkit.errors import EngineError, UsageError
from batchkit.models import JobStatus, SubmitRequest
from batchkit.providers.local.docker_executor import DockerExecutor
from batchkit.providers.local.docker_spec import LABEL_HOME
from batchkit.providers.local.executor import Executor
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.scheduler import Scheduler
from batchkit.providers.local.selection import (
    DEFAULT_SOCKET,
    EngineProbe,
    ExecutorSelection,
    engine_endpoints,
    selector_for,
)


class FakeImage:
    def __init__(self, tags: list[str]) -> None:
        self.tags = tags


class FakeImages:
    def __init__(self, tags: list[str]) -> None:
        self._tags = tags
        self.filters: list[Mapping[str, str]] = []

    def list(self, filters: Mapping[str, str]) -> list[FakeImage]:
        self.filters.append(filters)
        return [FakeImage([tag]) for tag in self._tags]


class FakeClient:
    def __init__(self, base_images: list[str]) -> None:
        self.images = FakeImages(base_images)

    def version(self) -> dict[str, str]:
        return {"Version": "20.10.24", "ApiVersion": "1.41"}

    def close(self) -> None:
        pass


class FakeEngines:
    """A `Connect` that answers only at the given endpoints, counting every attempt."""

    def __init__(self, *answering: str, base_images: tuple[str, ...] = ()) -> None:
        self.answering = set(answering)
        self.base_images = list(base_images)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, endpoint: str, environ: Mapping[str, str], timeout: int) -> FakeClient:
        self.calls.append((endpoint, timeout))
        if endpoint not in self.answering:
            raise DockerException(f"Error while fetching server API version: {endpoint} refused")
        return FakeClient(self.base_images)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class NamedExecutor:
    def __init__(self, name: str) -> None:
        self.name = name


def selection(engines: FakeEngines, environ: Mapping[str, str], clock: Clock | None = None) -> Any:
    probe = EngineProbe(environ=environ, connect=engines, clock=clock or Clock())
    process: Any = NamedExecutor("process")
    made: list[Any] = []

    def docker_executor(client: Any, endpoint: str) -> Executor:
        executor: Any = NamedExecutor("docker")
        executor.endpoint = endpoint
        made.append(executor)
        return executor

    chosen = ExecutorSelection(probe, process_executor=process, docker_executor=docker_executor)
    chosen.made = made
    return chosen


def test_an_image_job_runs_in_docker_when_an_engine_answers() -> None:
    engines = FakeEngines("unix:///run/engine.sock")
    select = selection(engines, {"DOCKER_HOST": "unix:///run/engine.sock"})

    executor, notice = select("batchkit-base/busybox:latest", "auto")

    assert executor.name == "docker"
    assert executor.endpoint == "unix:///run/engine.sock"
    assert notice is None


def test_an_image_job_falls_back_to_a_process_with_a_notice_naming_the_endpoint() -> None:
    select = selection(FakeEngines(), {"DOCKER_HOST": "tcp://127.0.0.1:2375"})

    executor, notice = select("my-image:1", "auto")

    assert executor.name == "process"
    assert notice == (
        "no Docker engine answers at tcp://127.0.0.1:2375; "
        "running the job (image my-image:1) as a local process"
    )


def test_a_job_without_image_is_a_process_and_never_probes() -> None:
    engines = FakeEngines(DEFAULT_SOCKET)
    select = selection(engines, {})

    assert select(None, "auto") == (select._process, None)
    assert engines.calls == []


def test_preference_process_wins_over_an_answering_engine() -> None:
    select = selection(FakeEngines(DEFAULT_SOCKET), {})

    executor, notice = select("img", "process")

    assert executor.name == "process"
    assert notice is None


def test_preference_docker_without_engine_is_an_engine_error_with_a_hint() -> None:
    select = selection(FakeEngines(), {})

    with pytest.raises(EngineError) as raised:
        select("img", "docker")

    assert DEFAULT_SOCKET in raised.value.message
    assert raised.value.hint is not None and "DOCKER_HOST" in raised.value.hint


def test_preference_docker_without_image_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs a job image"):
        selection(FakeEngines(DEFAULT_SOCKET), {})(None, "docker")


def test_an_unknown_preference_is_a_usage_error_listing_the_choices() -> None:
    with pytest.raises(UsageError) as raised:
        selection(FakeEngines(DEFAULT_SOCKET), {})("img", "podman")

    assert raised.value.hint == "use one of: auto, process, docker"


def test_the_probe_is_cached_briefly_and_the_executor_reused() -> None:
    engines = FakeEngines(DEFAULT_SOCKET)
    clock = Clock()
    select = selection(engines, {}, clock)

    first, _ = select("img", "auto")
    clock.now += 5
    second, _ = select("img", "auto")
    probes_before = sum(1 for _, timeout in engines.calls if timeout < 10)
    clock.now += 10
    select("img", "auto")
    probes_after = sum(1 for _, timeout in engines.calls if timeout < 10)

    assert first is second
    assert len(select.made) == 1
    assert (probes_before, probes_after) == (1, 2)


def test_an_engine_that_comes_up_is_noticed_after_the_cache_expires() -> None:
    engines = FakeEngines()
    clock = Clock()
    select = selection(engines, {}, clock)
    assert select("img", "auto")[0].name == "process"

    engines.answering.add(DEFAULT_SOCKET)
    clock.now += 11

    assert select("img", "auto")[0].name == "docker"


def test_endpoints_are_docker_host_alone_or_default_then_rootless(tmp_path: Path) -> None:
    (tmp_path / "docker.sock").touch()

    assert engine_endpoints({"DOCKER_HOST": "unix:///x.sock"}) == ("unix:///x.sock",)
    assert engine_endpoints({}) == (DEFAULT_SOCKET,)
    assert engine_endpoints({"XDG_RUNTIME_DIR": str(tmp_path)}) == (
        DEFAULT_SOCKET,
        f"unix://{tmp_path}/docker.sock",
    )


def test_doctor_reports_a_reachable_engine_and_its_base_images() -> None:
    engines = FakeEngines(DEFAULT_SOCKET, base_images=("batchkit-base/busybox:latest",))

    report = selection(engines, {}).doctor()

    assert report.engine_reachable
    assert report.endpoint == DEFAULT_SOCKET
    assert report.engine_version == "20.10.24"
    assert report.api_version == "1.41"
    assert (report.image_job_executor, report.plain_job_executor) == ("docker", "process")
    assert report.base_images == ("batchkit-base/busybox:latest",)
    assert "answers at" in report.reason
    assert report.to_dict()["base_images"] == ["batchkit-base/busybox:latest"]


def test_doctor_reports_no_engine_and_why() -> None:
    report = selection(FakeEngines(), {"DOCKER_HOST": "unix:///nowhere.sock"}).doctor()

    assert not report.engine_reachable
    assert report.endpoints_tried == ("unix:///nowhere.sock",)
    assert (report.image_job_executor, report.plain_job_executor) == ("process", "process")
    assert "no Docker engine answers at unix:///nowhere.sock" in report.reason
    assert report.error is not None and "refused" in report.error


def test_the_real_process_executor_is_the_default_one() -> None:
    chosen = ExecutorSelection(EngineProbe(environ={}, connect=FakeEngines()))

    executor, _ = chosen(None, "auto")

    assert isinstance(executor, ProcessExecutor)


# --- against a real engine ----------------------------------------------------------------------


@pytest.mark.docker
def test_a_real_engine_is_found_at_docker_host_and_runs_image_jobs(docker_host: str) -> None:
    chosen = ExecutorSelection()

    executor, notice = chosen("batchkit-base/busybox:latest", "auto")
    report = chosen.doctor()

    assert isinstance(executor, DockerExecutor)
    assert notice is None
    assert report.engine_reachable and report.endpoint == docker_host
    assert report.engine_version


@pytest.mark.docker
def test_the_selection_for_a_home_labels_containers_with_that_home(
    docker_host: str, tmp_path: Path
) -> None:
    first = selector_for(tmp_path / "one")
    executor, _ = first("batchkit-base/busybox:latest", "auto")

    assert selector_for(tmp_path / "one") is first
    assert isinstance(executor, DockerExecutor)
    assert executor.home == (tmp_path / "one").resolve()


class MsClock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


class Engine:
    """A local engine home whose image jobs run in the test's Docker engine, driven by hand."""

    def __init__(self, docker: Any, home: Path) -> None:
        self.docker = docker
        self.home = home
        self.clock = MsClock()
        self.selection = ExecutorSelection(home=home)
        self.provider = LocalProvider(
            home, start_worker=False, selector=self.selection, clock=self.clock
        )

    def scheduler(self) -> Scheduler:
        return Scheduler(self.home, selector=self.selection, clock=self.clock)

    def containers(self) -> list[Any]:
        label = f"{LABEL_HOME}={self.home}"
        return list(self.docker.containers.list(all=True, filters={"label": label}))

    def start_container(self, scheduler: Scheduler) -> None:
        deadline = time.monotonic() + 30
        while not self.containers():
            assert time.monotonic() < deadline, "the job never started a container"
            scheduler.tick()
            time.sleep(0.05)


@pytest.fixture
def engine(
    docker_engine: Any, docker_host: str, busybox_image: str, tmp_path: Path
) -> Iterator[Engine]:
    """The engine; whatever containers a failed test left behind are removed afterwards."""
    built = Engine(docker_engine, tmp_path / "engine-home")
    yield built
    for container in built.containers():
        container.remove(force=True)


@pytest.mark.docker
def test_the_engine_times_out_a_container_job_and_removes_its_container(
    engine: Engine, busybox_image: str
) -> None:
    job = engine.provider.submit(
        SubmitRequest(name="sleepy", command=("sleep", "300"), image=busybox_image, timeout=60)
    )
    scheduler = engine.scheduler()
    engine.start_container(scheduler)
    assert engine.provider.describe_jobs([job.job_id])[0].status is JobStatus.RUNNING

    engine.clock.now += 61_000
    scheduler.tick()

    [ended] = engine.provider.describe_jobs([job.job_id])
    assert ended.status is JobStatus.FAILED
    assert ended.status_reason is not None and "timeout" in ended.status_reason
    assert engine.containers() == []


@pytest.mark.docker
def test_a_container_left_by_a_crashed_worker_is_removed_by_the_next_one(
    engine: Engine, busybox_image: str
) -> None:
    job = engine.provider.submit(
        SubmitRequest(name="orphan", command=("sleep", "300"), image=busybox_image)
    )
    crashed = engine.scheduler()
    engine.start_container(crashed)
    del crashed  # killed with -9: it never stops what it started

    Scheduler(engine.home, selector=ExecutorSelection(home=engine.home)).recover("worker crashed")

    assert engine.containers() == []
    [ended] = engine.provider.describe_jobs([job.job_id])
    assert ended.status is JobStatus.FAILED
    assert ended.status_reason == "worker crashed"


@pytest.mark.docker
def test_an_mnp_job_runs_one_container_per_node_meeting_on_the_loopback(
    engine: Engine, busybox_image: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The main node holds its stdin open (see test_two_mnp_nodes_rendezvous_over_the_loopback).
    script = (
        'if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then'
        f" mkfifo /tmp/hold && nc -l -p {port} 0<>/tmp/hold; else for i in $(seq 100); do"
        ' echo "node $AWS_BATCH_JOB_NODE_INDEX of $AWS_BATCH_JOB_NUM_NODES" |'
        f' nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" {port} && exit 0; sleep 0.1;'
        " done; exit 1; fi"
    )
    job = engine.provider.submit(
        SubmitRequest(name="pair", command=("/bin/sh", "-c", script), image=busybox_image, nodes=2)
    )
    scheduler = engine.scheduler()

    deadline = time.monotonic() + 60
    while scheduler.tick():
        assert time.monotonic() < deadline, "the MNP job did not end"
        time.sleep(0.05)

    ids = [job.job_id, f"{job.job_id}#0", f"{job.job_id}#1"]
    parent, main, other = engine.provider.describe_jobs(ids)
    assert [parent.status, main.status, other.status] == [JobStatus.SUCCEEDED] * 3
    assert main.log_stream is not None
    page = engine.provider.get_log_events(main.log_stream)
    assert [event.message for event in page.events] == ["node 1 of 2"]
    assert engine.containers() == []


@pytest.mark.docker
def test_hosts_show_the_executor_and_the_docker_engine_version(
    docker_host: str, tmp_path: Path
) -> None:
    """`batchkit hosts` on the local engine: image jobs go to Docker, which it names."""
    from batchkit.cli.queueprint import host_table
    from batchkit.providers.local.provider import LocalProvider

    (host,) = LocalProvider(tmp_path / "home", start_worker=False).hosts()
    version = selector_for(tmp_path / "home").doctor().engine_version

    assert host.executor == "docker (jobs with an image), process (others)"
    assert host.engine_version == f"batchkit-local 0.1.0, Docker {version}"
    assert f"Docker {version}" in host_table([host])

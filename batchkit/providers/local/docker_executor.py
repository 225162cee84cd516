"""Run a local job attempt in a Docker container, the way an AWS Batch compute node would.

Each attempt (each MNP node) gets one container: host networking only (so an MNP main node is
reachable on 127.0.0.1 and nothing crosses a Docker bridge), the job's vCPU and memory as cgroup
limits, GPUs as a device request, the attempt's working directory bind-mounted at the same host
path and used as the container's working directory, and the job's staged folder mounted read-only
at the same path (so `BATCHKIT_JOB_STAGE_DIR` means the same thing inside and outside).

Images are never pulled: no registry is reachable from a local engine, so an image must already be
in the engine (built on a `batchkit-base/*` image, loaded or imported).

Containers are labelled `batchkit.job-id`, `batchkit.attempt` and `batchkit.home`, and removed once
their exit code and last log line have been collected, or when the attempt is killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig, Mount

from batchkit.config import batchkit_home
from batchkit.errors import EngineError
from batchkit.providers.local.executor import (
    REASON_FILE_VARIABLE,
    LogSink,
    RunSpec,
    is_multinode,
    read_reason,
    reason_file,
)
from batchkit.providers.local.imageuser import hand_over, image_owner
from batchkit.providers.local.private import private_dir

# Variables of the host's base environment that describe the host, not the image: the image's own
# PATH must win, the host's HOME and TMPDIR do not exist in the container, USER/LOGNAME/SHELL name
# a host account and shell, and a host locale may be missing from the image (bash and python warn).
# AWS Batch containers see only the image's environment plus the job's, so dropping them is also the
# honest emulation. Everything else in `RunSpec.env` (the request's variables, AWS_BATCH_*,
# PCLUSTER_JOB_S3_URL, BATCHKIT_JOB_STAGE_DIR) passes unchanged.
HOST_ONLY_VARIABLES = frozenset(
    {"HOME", "PATH", "TMPDIR", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL"}
)

LABEL_JOB_ID = "batchkit.job-id"
LABEL_ATTEMPT = "batchkit.attempt"
LABEL_HOME = "batchkit.home"

INVOKING_USER = "<invoking user>"

# What AWS Batch reports for a container the kernel killed for exceeding its memory.
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"

_KILLED_EXIT_CODE = 137  # 128 + SIGKILL, what a killed container reports
_ENGINE_LOST_EXIT_CODE = 255
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z ")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def default_user() -> str | None:
    """Who the container runs as: the image's user when batchkit runs as root, else the invoking
    uid:gid, so the files a job writes into its bind-mounted working directory belong to the user
    who can then read and delete them."""
    uid = os.getuid()
    return None if uid == 0 else f"{uid}:{os.getgid()}"


def container_environment(
    env: Mapping[str, str], drop: Iterable[str] = HOST_ONLY_VARIABLES
) -> dict[str, str]:
    """The job's environment as the container sees it: `env` without the host-only variables."""
    dropped = frozenset(drop)
    return {name: value for name, value in env.items() if name not in dropped}


def container_name(job_id: str, attempt: int, suffix: str) -> str:
    """A valid, recognisable container name: `batchkit-<job id>-<attempt>-<suffix>`.

    Job ids of array children and MNP nodes contain `:` and `#`, which Docker names forbid.
    """
    safe_id = _NAME_UNSAFE.sub("-", job_id).strip("-.") or "job"
    return f"batchkit-{safe_id}-{attempt}-{suffix}"


def results_dir(stage_dir: Path) -> Path:
    """Where function jobs store results: beside the job folder (`<folder>.results`), so array
    children fetching the folder never copy each other's results."""
    return stage_dir.with_name(stage_dir.name + ".results")


def container_options(
    spec: RunSpec,
    *,
    name: str,
    home: Path,
    user: str | None,
    host_cpus: float | None = None,
    drop_env: Iterable[str] = HOST_ONLY_VARIABLES,
) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for one attempt: a pure function of the spec.

    `host_cpus` caps the vCPU limit, because Docker refuses a CPU limit above the host's count
    (the local scheduler may be configured with more vCPUs than the machine has).
    """
    if spec.image is None:
        raise EngineError(
            f"job {spec.job_id} names no image, so it cannot run in a container",
            hint="submit it with an image, or let it run as a local process (executor auto)",
        )
    vcpus = spec.resources.vcpus
    if host_cpus is not None:
        vcpus = min(vcpus, host_cpus)
    memory_bytes = spec.resources.memory * 1024 * 1024
    mounts = [Mount(str(spec.workdir), str(spec.workdir), type="bind", read_only=False)]
    if spec.stage_dir is not None:
        mounts.append(Mount(str(spec.stage_dir), str(spec.stage_dir), type="bind", read_only=True))
        results = results_dir(spec.stage_dir)
        mounts.append(Mount(str(results), str(results), type="bind", read_only=False))
    options: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.argv),
        "name": name,
        "environment": _node_environment(spec, container_environment(spec.env, drop_env)),
        "working_dir": str(spec.workdir),
        "mounts": mounts,
        "network_mode": "host",
        "nano_cpus": max(round(vcpus * 1e9), 10_000_000),
        "mem_limit": memory_bytes,
        "memswap_limit": memory_bytes,  # no swap beyond the limit, like a Batch container
        "labels": {
            LABEL_JOB_ID: spec.job_id,
            LABEL_ATTEMPT: str(spec.attempt),
            LABEL_HOME: str(home),
        },
        "log_config": LogConfig(type=LogConfig.types.JSON),
        "detach": True,
    }
    if user is not None:
        options["user"] = user
    if spec.resources.gpus > 0:
        options["device_requests"] = [
            DeviceRequest(count=spec.resources.gpus, capabilities=[["gpu"]])
        ]
    return options


def split_log_timestamp(line: str) -> tuple[int | None, str]:
    """Split Docker's `2026-11-25T12:00:00.123456789Z ` prefix off a log line: (epoch ms, text)."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None, line
    seconds = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    millis = int((match.group(2) or "0")[:3].ljust(3, "0"))
    return int(seconds.timestamp()) * 1000 + millis, line[match.end() :]


def remove_container(api: Any, container_id: str, description: str) -> None:
    """Kill (when running) and remove a container with its anonymous volumes; a container that is
    already gone is fine. `api` is a `docker.APIClient`."""
    try:
        api.remove_container(container_id, v=True, force=True)
    except NotFound:
        return
    except (DockerException, OSError) as err:
        raise EngineError(
            f"could not remove {description} ({container_id[:12]}): {err}",
            hint=f"remove it by hand: docker rm -f {container_id}",
        ) from err


class LogPump:
    """Copies a container's stdout and stderr into a LogSink, line by line, as they come.

    Reads `logs(stream=True, follow=True, timestamps=True)` on a daemon thread; the stream ends when
    the container stops (or is removed). One Docker log message is one event with Docker's own
    timestamp; a line over 16 KiB arrives as several messages, as it reaches CloudWatch from a Batch
    container (and as the process executor splits it).
    """

    def __init__(self, container: Container, sink: LogSink) -> None:
        self._container = container
        self._sink = sink
        self._thread = threading.Thread(
            target=self._run, name=f"batchkit-logs-{container.short_id}", daemon=True
        )
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        copied = 0
        try:
            for chunk in self._container.logs(stream=True, follow=True, timestamps=True):
                self._emit(chunk)
                copied += 1
            # A follow stream can also end early (a dropped connection, an engine restart):
            # read the whole log once more and copy only the messages not seen yet.
            for index, chunk in enumerate(
                self._container.logs(stream=True, follow=False, timestamps=True)
            ):
                if index >= copied:
                    self._emit(chunk)
        except (DockerException, OSError) as err:  # the container was removed mid-stream
            self.error = err

    def _emit(self, chunk: bytes) -> None:
        for piece in _LINE.findall(chunk.decode("utf-8", errors="replace")):
            timestamp, body = split_log_timestamp(piece)
            self._sink.append(body.removesuffix("\n"), timestamp)


def _node_environment(spec: RunSpec, env: dict[str, str]) -> dict[str, str]:
    if is_multinode(env):
        env[REASON_FILE_VARIABLE] = str(reason_file(spec.workdir))
    return env


class DockerRun:
    """One started container. `reason` says why it ended when Docker knows more than the exit code
    (out of memory, removed behind batchkit's back, engine gone); the engine may use it as the
    attempt's status reason."""

    def __init__(
        self,
        container: Container,
        pump: LogPump,
        *,
        job_id: str,
        attempt: int,
        clock: Callable[[], float] = time.monotonic,
        log_grace: float = 10.0,
        engine_grace: float = 120.0,
        workdir: Path | None = None,
    ) -> None:
        self._workdir = workdir
        self._container = container
        self._pump = pump
        self._job_id = job_id
        self._attempt = attempt
        self._clock = clock
        self._log_grace = log_grace
        self._engine_grace = engine_grace
        self._lock = threading.Lock()
        self._exit_code: int | None = None
        self._exited_at: float | None = None
        self._unreachable_since: float | None = None
        self._removed = False
        self.reason: str | None = None

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    def poll(self) -> int | None:
        """The exit code once the container stopped and its output was read, else None.

        Makes one quick engine call. An engine that stays unreachable for `engine_grace` seconds
        ends the attempt with exit code 255 rather than leaving the job RUNNING forever.
        """
        with self._lock:
            if self._exit_code is not None:
                return self._exit_code
            try:
                self._container.reload()
            except NotFound:
                self._finish(_KILLED_EXIT_CODE, f"container {self.container_id} disappeared")
                return self._exit_code
            except (DockerException, OSError) as err:
                now = self._clock()
                if self._unreachable_since is None:
                    self._unreachable_since = now
                elif now - self._unreachable_since >= self._engine_grace:
                    self._finish(_ENGINE_LOST_EXIT_CODE, f"Docker engine unreachable: {err}")
                    return self._exit_code
                return None
            self._unreachable_since = None
            state: dict[str, Any] = self._container.attrs.get("State", {})
            if state.get("Status") not in ("exited", "dead"):
                return None
            # Wait (without blocking) for the log pump to read the last lines before removal.
            now = self._clock()
            if self._exited_at is None:
                self._exited_at = now
            if self._pump.is_alive() and now - self._exited_at < self._log_grace:
                return None
            reason = OOM_REASON if state.get("OOMKilled") else None
            self._finish(int(state.get("ExitCode", _ENGINE_LOST_EXIT_CODE)), reason)
            return self._exit_code

    def kill(self) -> None:
        """Kill the container (SIGKILL) and remove it. Safe to call twice; raises EngineError when
        the engine cannot be reached (the container id stays in `identity()` for a later reap)."""
        with self._lock:
            if self._exit_code is None:
                self._exit_code = _KILLED_EXIT_CODE
                self.reason = "killed"
            self._remove()
        self._pump.join(timeout=5.0)

    def identity(self) -> dict[str, Any]:
        return {
            "executor": "docker",
            "container_id": self.container_id,
            "container_name": self._container.name,
            "job_id": self._job_id,
            "attempt": self._attempt,
        }

    def _finish(self, exit_code: int, reason: str | None) -> None:
        self._exit_code = exit_code
        if reason is None and self._workdir is not None:
            reason = read_reason(self._workdir)  # what the node said, when it said something
        self.reason = reason
        # The exit code is known; a container that cannot be removed now is reaped by label later.
        with contextlib.suppress(EngineError):
            self._remove()

    def _remove(self) -> None:
        if self._removed:
            return
        remove_container(
            self._container.client.api, self.container_id, f"the container of job {self._job_id}"
        )
        self._removed = True


class DockerExecutor:
    """Runs attempts as containers of a local Docker engine (see the module docstring).

    `client` is a connected `docker.DockerClient`; `endpoint` is how to name that engine in
    messages. `user` is a Docker user spec (`uid:gid`), None for the image's own user, or
    INVOKING_USER for `default_user()`; `home` (the `batchkit.home` label) defaults to
    `batchkit_home()` ($BATCHKIT_HOME or ~/.batchkit).
    """

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        endpoint: str = "the local Docker engine",
        home: Path | None = None,
        user: str | None = INVOKING_USER,
        drop_env: Iterable[str] = HOST_ONLY_VARIABLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._home = home if home is not None else batchkit_home()
        self._user = default_user() if user == INVOKING_USER else user
        self._drop_env = frozenset(drop_env)
        self._clock = clock
        self._host_cpus: float | None = None
        self._owners: dict[str, tuple[int, int]] = {}

    @property
    def home(self) -> Path:
        return self._home

    def _image_owner(self, image: str) -> tuple[int, int]:
        """The uid and gid an image's processes run as (its `USER`, names looked up in its own
        /etc/passwd and /etc/group), asked once per image."""
        if image not in self._owners:
            try:
                self._owners[image] = image_owner(self._client, image)
            except (DockerException, OSError, KeyError, ValueError) as err:
                raise EngineError(
                    f"cannot tell which user image {image} runs as: {err}",
                    hint="give the image a numeric USER (uid:gid), or run batchkit as that user",
                ) from err
        return self._owners[image]

    def start(self, spec: RunSpec, log: LogSink) -> DockerRun:
        if spec.image is not None:
            spec = dataclasses.replace(spec, image=self._local_image(spec.image, spec.job_id))
        private_dir(spec.workdir)
        owned = [spec.workdir]
        if spec.stage_dir is not None:
            # A job with nothing staged still gets its (empty) folder, as `aws s3 sync` would;
            # function jobs store their results beside it.
            private_dir(spec.stage_dir)
            results = private_dir(results_dir(spec.stage_dir))
            owned += [spec.stage_dir, results]
        if self._user is None:
            # batchkit runs as root, the container as the image's own user (uid 1000 in the
            # presets): that user, not the world, gets the job's private directories.
            uid, gid = self._image_owner(str(spec.image))
            for path in owned:
                hand_over(path, uid, gid)
        name = container_name(spec.job_id, spec.attempt, uuid.uuid4().hex[:8])
        options = container_options(
            spec,
            name=name,
            home=self._home,
            user=self._user,
            host_cpus=self._cpu_count(),
            drop_env=self._drop_env,
        )
        try:
            container: Container = self._client.containers.create(**options)
        except ImageNotFound as err:
            raise self._missing_image(str(spec.image), spec.job_id) from err
        except (DockerException, OSError) as err:
            raise EngineError(
                f"Docker could not create a container for job {spec.job_id}: {err}",
                hint=f"check the engine at {self._endpoint} with `batchkit local doctor`",
            ) from err
        try:
            container.start()
        except (DockerException, OSError) as err:
            with contextlib.suppress(DockerException, OSError):
                container.remove(force=True)
            raise EngineError(
                f"Docker could not start the container of job {spec.job_id} "
                f"(image {spec.image}): {err}",
                hint="check that the command exists in the image, e.g. "
                f"`docker run --rm {spec.image} {spec.argv[0] if spec.argv else '/bin/sh'}`",
            ) from err
        pump = LogPump(container, log)
        pump.start()
        return DockerRun(
            container,
            pump,
            job_id=spec.job_id,
            attempt=spec.attempt,
            clock=self._clock,
            workdir=spec.workdir,
        )

    def reap_orphan(self, identity: Mapping[str, Any]) -> None:
        """Remove the container a dead worker left behind, running or not; a missing one is fine."""
        container_id = identity.get("container_id")
        if not container_id:
            return
        remove_container(self._client.api, str(container_id), "a leftover container")

    def leftover_containers(self) -> list[str]:
        """Ids of every container (running or not) labelled with this engine home."""
        try:
            found = self._client.containers.list(
                all=True, filters={"label": f"{LABEL_HOME}={self._home}"}
            )
        except (DockerException, OSError) as err:
            raise EngineError(
                f"could not list containers at {self._endpoint}: {err}",
                hint="check the engine with `batchkit local doctor`",
            ) from err
        return [str(container.id) for container in found]

    def remove_leftovers(self) -> int:
        """Remove every container labelled with this engine home (for a worker that starts after a
        crash, or `batchkit local reset`). Returns how many were removed."""
        ids = self.leftover_containers()
        for container_id in ids:
            self.reap_orphan({"container_id": container_id})
        return len(ids)

    def _cpu_count(self) -> float | None:
        if self._host_cpus is None:
            try:
                self._host_cpus = float(self._client.info().get("NCPU") or 0) or None
            except (DockerException, OSError):
                return None
        return self._host_cpus

    def _local_image(self, image: str, job_id: str) -> str:
        """The engine's image for `image`: itself, or for a short name the image
        `batchkit image build --local --name NAME` made (`batchkit/NAME:latest`, or `:TAG`)."""
        if self._has_image(image):
            return image
        from batchkit.errors import UsageError
        from batchkit.providers.images import is_full_reference, resolve_image

        if not is_full_reference(image):
            try:
                built = resolve_image(image)
            except UsageError:
                built = image
            if built != image and self._has_image(built):
                return built
        raise self._missing_image(image, job_id)

    def _has_image(self, image: str) -> bool:
        try:
            self._client.images.get(image)
        except ImageNotFound:
            return False
        except (DockerException, OSError) as err:
            raise EngineError(
                f"could not look up image {image} at {self._endpoint}: {err}",
                hint="check the engine with `batchkit local doctor`",
            ) from err
        return True

    def _missing_image(self, image: str, job_id: str) -> EngineError:
        return EngineError(
            f"image {image} (job {job_id}) is not in the Docker engine at {self._endpoint}, and "
            "batchkit never pulls: no registry is reachable from the local engine",
            hint=(
                f"build it locally (`docker build -t {image} .` FROM batchkit-base/busybox:latest "
                "or batchkit-base/debian:bookworm, made by scripts/base-images.sh), or bring it in "
                f"with `docker load -i image.tar`; check with `docker image inspect {image}`"
            ),
        )

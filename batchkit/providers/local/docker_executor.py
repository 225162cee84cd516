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

The container's options are `docker_spec`'s; a started container is a `docker_run.DockerRun`.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound
from docker.models.containers import Container
from msgspec.structs import replace

from batchkit.config import batchkit_home
from batchkit.errors import EngineError
from batchkit.providers.local.docker_run import DockerRun, LogPump, remove_container
from batchkit.providers.local.docker_spec import (
    HOST_ONLY_VARIABLES,
    LABEL_HOME,
    container_name,
    container_options,
    results_dir,
)
from batchkit.providers.local.executor import LogSink, RunSpec
from batchkit.providers.local.imageuser import hand_over, image_owner
from batchkit.providers.local.private import private_dir

INVOKING_USER = "<invoking user>"


def default_user() -> str | None:
    """Who the container runs as: the image's user when batchkit runs as root, else the invoking
    uid:gid, so the files a job writes into its bind-mounted working directory belong to the user
    who can then read and delete them."""
    uid = os.getuid()
    return None if uid == 0 else f"{uid}:{os.getgid()}"


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
            spec = replace(spec, image=self._local_image(spec.image, spec.job_id))
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

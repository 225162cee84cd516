"""Which executor runs a local job: a Docker container or a local process.

A job that names an image runs in a container when a Docker engine answers (at `$DOCKER_HOST`, else
the default socket, else the rootless socket); otherwise it runs as a local process and the caller
gets a one-line notice to show. The executor preference (`auto`, `process`, `docker`) travels with
the job as the tag `batchkit:executor`. The engine probe is cached for a few seconds, because the
scheduler asks once per attempt.

`select_executor` is the local engine's `ExecutorSelector`; `doctor()` is what
`batchkit local doctor` and `batchkit hosts` show about it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound
from msgspec import Struct
from msgspec.structs import asdict

from batchkit.errors import EngineError, UsageError
from batchkit.providers.local.docker_executor import DockerExecutor
from batchkit.providers.local.executor import Executor
from batchkit.providers.local.process_executor import ProcessExecutor

PREFERENCES = ("auto", "process", "docker")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
BASE_IMAGE_REFERENCE = "batchkit-base/*"
PROBE_TTL_S = 10.0
"""How long one answer of the engine (yes or no) is trusted."""
PROBE_TIMEOUT_S = 3
WORK_TIMEOUT_S = 300
"""Timeout of the executor's engine calls: creating a container on the vfs driver copies the
whole image, which takes a while for a large one."""

ENGINE_HINT = (
    "start a Docker engine (e.g. `sudo systemctl start docker`; in a batchkit checkout "
    "`source scripts/dockerd.sh && docker_engine_up`), or point DOCKER_HOST at one"
)

Connect = Callable[[str, Mapping[str, str], int], Any]
"""Opens a `docker.DockerClient` to an endpoint (using the TLS settings in the environment for
`$DOCKER_HOST`) with a call timeout in seconds; raises DockerException or OSError when nothing
answers."""


def connect(endpoint: str, environ: Mapping[str, str], timeout: int) -> Any:
    """The real `Connect`: a client that has already negotiated the API version (one round trip)."""
    if environ.get("DOCKER_HOST") == endpoint:
        return docker.DockerClient.from_env(
            environment=dict(environ), timeout=timeout, max_pool_size=64, use_context=False
        )
    return docker.DockerClient(base_url=endpoint, timeout=timeout, max_pool_size=64)


def engine_endpoints(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Where to look for an engine: `$DOCKER_HOST` alone when set, else the default socket and the
    rootless one (`$XDG_RUNTIME_DIR/docker.sock`) when it exists."""
    configured = environ.get("DOCKER_HOST")
    if configured:
        return (configured,)
    endpoints = [DEFAULT_SOCKET]
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and (Path(runtime_dir) / "docker.sock").exists():
        endpoints.append(f"unix://{Path(runtime_dir) / 'docker.sock'}")
    return tuple(endpoints)


class EngineStatus(Struct, frozen=True):
    """One probe's answer. `endpoint` is the engine that answered, else the first one tried."""

    reachable: bool
    endpoint: str
    tried: tuple[str, ...]
    version: str | None = None
    api_version: str | None = None
    error: str | None = None


class EngineProbe:
    """Finds a Docker engine that answers and keeps the answer for `ttl` seconds."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        connect: Connect = connect,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = PROBE_TTL_S,
    ) -> None:
        self._environ = environ
        self._connect = connect
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._status: EngineStatus | None = None
        self._checked_at = 0.0
        self._client: Any = None
        self._client_endpoint: str | None = None

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def status(self) -> EngineStatus:
        with self._lock:
            now = self._clock()
            if self._status is None or now - self._checked_at >= self._ttl:
                self._status = self._probe()
                self._checked_at = now
            return self._status

    def client(self) -> Any:
        """A client for calls that do real work (long timeout), to the engine that answered.

        Raises EngineError when none did."""
        status = self.status()
        if not status.reachable:
            raise EngineError(
                f"no Docker engine answers at {', '.join(status.tried)}"
                + (f" ({status.error})" if status.error else ""),
                hint=ENGINE_HINT,
            )
        with self._lock:
            if self._client is None or self._client_endpoint != status.endpoint:
                try:
                    self._client = self._connect(status.endpoint, self.environ, WORK_TIMEOUT_S)
                except (DockerException, OSError) as err:
                    raise EngineError(
                        f"the Docker engine at {status.endpoint} stopped answering: {err}",
                        hint=ENGINE_HINT,
                    ) from err
                self._client_endpoint = status.endpoint
            return self._client

    def _probe(self) -> EngineStatus:
        tried = engine_endpoints(self.environ)
        error: str | None = None
        for endpoint in tried:
            try:
                client = self._connect(endpoint, self.environ, PROBE_TIMEOUT_S)
                try:
                    version: Mapping[str, Any] = client.version()
                finally:
                    client.close()
            except (DockerException, OSError) as err:
                error = _first_line(str(err))
                continue
            return EngineStatus(
                reachable=True,
                endpoint=endpoint,
                tried=tried,
                version=str(version.get("Version") or "") or None,
                api_version=str(version.get("ApiVersion") or "") or None,
            )
        return EngineStatus(reachable=False, endpoint=tried[0], tried=tried, error=error)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


class DoctorReport(Struct, frozen=True):
    """What the local engine will do about containers, for `batchkit local doctor` and `hosts`.

    `image_job_executor` / `plain_job_executor` are the executor (`docker` or `process`) a job with
    / without an image gets under the default preference `auto`; `reason` says why in one sentence.
    `base_images` lists the `batchkit-base/*` images present in the engine.
    """

    engine_reachable: bool
    endpoint: str
    endpoints_tried: tuple[str, ...]
    engine_version: str | None
    api_version: str | None
    image_job_executor: str
    plain_job_executor: str
    reason: str
    base_images: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoints_tried"] = list(self.endpoints_tried)
        data["base_images"] = list(self.base_images)
        return data


class ExecutorSelection:
    """The local engine's `ExecutorSelector` (call it with image and preference) and its doctor.

    Executors are made once and reused: the process executor from `process_executor`, the Docker
    executor by `docker_executor(client, endpoint)` the first time an engine answers (by default
    a `DockerExecutor` labelling its containers with `home`, else with `$BATCHKIT_HOME`).
    """

    def __init__(
        self,
        probe: EngineProbe | None = None,
        *,
        home: Path | None = None,
        process_executor: Executor | None = None,
        docker_executor: Callable[[Any, str], Executor] | None = None,
    ) -> None:
        self._probe = probe if probe is not None else EngineProbe()
        self._process = process_executor if process_executor is not None else ProcessExecutor()
        self._home = home
        self._make_docker = docker_executor or self._default_docker_executor
        self._docker: Executor | None = None
        self._docker_client: Any = None
        self._lock = threading.Lock()

    def __call__(self, image: str | None, preference: str) -> tuple[Executor, str | None]:
        choice = (preference or "auto").strip().lower()
        if choice not in PREFERENCES:
            raise UsageError(
                f"unknown executor {preference!r}",
                hint="use one of: " + ", ".join(PREFERENCES),
            )
        if choice == "process":
            return self._process, None
        if choice == "docker":
            if not image:
                raise UsageError(
                    "executor docker needs a job image",
                    hint="submit the job with an image, or use executor auto or process",
                )
            return self._docker_executor(), None
        if not image:
            return self._process, None
        status = self._probe.status()
        if not status.reachable:
            return self._process, (
                f"no Docker engine answers at {status.endpoint}; "
                f"running the job (image {image}) as a local process"
            )
        return self._docker_executor(), None

    def doctor(self) -> DoctorReport:
        status = self._probe.status()
        base_images: tuple[str, ...] = ()
        error = status.error
        if status.reachable:
            image_executor = "docker"
            reason = (
                f"Docker {status.version or '?'} answers at {status.endpoint}: jobs with an image "
                "run in containers, jobs without one as local processes"
            )
            try:
                base_images = self._base_images()
            except EngineError as err:
                error = _first_line(str(err))
        else:
            image_executor = "process"
            reason = (
                f"no Docker engine answers at {', '.join(status.tried)}: every job runs as a "
                "local process (executor docker fails)"
            )
        return DoctorReport(
            engine_reachable=status.reachable,
            endpoint=status.endpoint,
            endpoints_tried=status.tried,
            engine_version=status.version,
            api_version=status.api_version,
            image_job_executor=image_executor,
            plain_job_executor="process",
            reason=reason,
            base_images=base_images,
            error=error,
        )

    def has_image(self, image: str) -> bool | None:
        """Whether the Docker engine holds `image` (None: no engine answers, or it failed)."""
        if not self._probe.status().reachable:
            return None
        try:
            self._probe.client().images.get(image)
        except ImageNotFound:
            return False
        except (DockerException, OSError, EngineError):
            return None
        return True

    def _default_docker_executor(self, client: Any, endpoint: str) -> Executor:
        return DockerExecutor(client, endpoint=endpoint, home=self._home)

    def _docker_executor(self) -> Executor:
        client = self._probe.client()
        with self._lock:
            if self._docker is None or client is not self._docker_client:
                self._docker = self._make_docker(client, self._probe.status().endpoint)
                self._docker_client = client
            return self._docker

    def _base_images(self) -> tuple[str, ...]:
        client = self._probe.client()
        try:
            images = client.images.list(filters={"reference": BASE_IMAGE_REFERENCE})
        except (DockerException, OSError) as err:
            raise EngineError(f"could not list images: {err}") from err
        return tuple(sorted(tag for image in images for tag in image.tags))


_default: ExecutorSelection | None = None
_per_home: dict[Path, ExecutorSelection] = {}
_default_lock = threading.Lock()


def default_selection() -> ExecutorSelection:
    """The process-wide selection (one engine probe cache, one executor of each kind), made on
    first use so that importing this module connects to nothing."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ExecutorSelection()
        return _default


def selector_for(home: Path) -> ExecutorSelection:
    """The selection of the engine serving `home`: its containers carry `batchkit.home=<home>`
    whatever `$BATCHKIT_HOME` says (one per home per process, so the probe cache is shared)."""
    key = home.expanduser().resolve()
    with _default_lock:
        if key not in _per_home:
            _per_home[key] = ExecutorSelection(home=key)
        return _per_home[key]


def select_executor(image: str | None, preference: str) -> tuple[Executor, str | None]:
    """The local engine's default `ExecutorSelector` (contract C1)."""
    return default_selection()(image, preference)


def doctor() -> DoctorReport:
    """What `batchkit local doctor` and `batchkit hosts` report about containers."""
    return default_selection().doctor()

"""`LocalDoctorFacts`: what `batchkit doctor -c local` reads about the local engine
(`doctor.sources.LocalFacts`): capacity and usage (as `hosts` reports them), the worker and its
log, the Docker engine and whether it holds the job's image."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from batchkit.computemodel import LocalScene
from batchkit.models import Job, Resources
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import worker_pid

LOG_TAIL_BYTES = 8192

ImageCheck = Callable[[str], "bool | None"]
EngineCheck = Callable[[], "tuple[bool, str, str | None]"]
"""(reachable, endpoint, error)."""


def _tail(path: Path, lines: int = 20) -> tuple[str, ...]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ()
    return tuple(text.splitlines()[-lines:])


class LocalDoctorFacts:
    def __init__(
        self,
        provider: LocalProvider,
        *,
        engine: EngineCheck | None = None,
        has_image: ImageCheck | None = None,
    ) -> None:
        self._provider = provider
        self._engine = engine
        self._has_image = has_image

    def _default_docker(self) -> None:
        if importlib.util.find_spec("batchkit.providers.local.selection") is None:
            self._engine = self._engine or (lambda: (False, "", "no Docker support installed"))
            self._has_image = self._has_image or (lambda image: None)
            return
        from batchkit.providers.local.selection import selector_for

        selection = selector_for(self._provider.home)

        def engine() -> tuple[bool, str, str | None]:
            report = selection.doctor()
            return report.engine_reachable, report.endpoint, report.error

        self._engine = self._engine or engine
        self._has_image = self._has_image or selection.has_image

    def scene(self, job: Job | None) -> LocalScene:
        """The engine's state; the Docker engine is asked (and its support loaded) only for the
        whole engine or a job with an image."""
        (host,) = self._provider.hosts()
        image = job.image if job is not None else None
        reachable, endpoint, error = False, "", None
        if job is None or image:
            if self._engine is None or self._has_image is None:
                self._default_docker()
            assert self._engine is not None and self._has_image is not None
            reachable, endpoint, error = self._engine()
        return LocalScene(
            total=Resources(host.registered_vcpus, host.registered_memory, host.registered_gpus),
            free=Resources(host.available_vcpus, host.available_memory, host.available_gpus),
            running_jobs=host.running_jobs,
            waiting_jobs=host.pending_jobs,
            worker_pid=worker_pid(self._provider.home),
            worker_log_tail=_tail(self._provider.home / "worker.log"),
            docker_reachable=reachable,
            docker_endpoint=endpoint,
            docker_error=error,
            image_present=self._has_image(image)
            if image and reachable and self._has_image
            else None,
        )

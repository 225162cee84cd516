"""Which executor runs a job (a local process, or a Docker container when Docker support is
installed), and the scheduler's cache of that choice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from batchkit.errors import EngineError
from batchkit.providers.local.executor import Executor
from batchkit.providers.local.process_executor import ProcessExecutor
from batchkit.providers.local.rows import Spec

log = logging.getLogger("batchkit.local.scheduler")

ExecutorSelector = Callable[[str | None, str], tuple[Executor, str | None]]

SELECTOR_TTL_S = 30.0
"""How long a choice is kept (Docker may come or go meanwhile)."""


def process_only_selector(image: str | None, preference: str) -> tuple[Executor, str | None]:
    """The executor choice when no Docker support is installed: always a local process."""
    if preference == "docker":
        raise EngineError(
            "this job asks for the Docker executor, but the local engine has none",
            hint="submit with the process executor (tag batchkit:executor=process)",
        )
    notice = None
    if image is not None:
        notice = f"image {image} is not used: the job runs as a local process"
    return ProcessExecutor(), notice


def default_selector(home: Path | None = None) -> ExecutorSelector:
    """The Docker-aware selection when its module exists (for `home`, its containers carry that
    home's label), else process only."""
    try:
        from batchkit.providers.local import selection  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return process_only_selector
    chosen: ExecutorSelector = (
        selection.select_executor if home is None else selection.selector_for(home)
    )
    return chosen


class Executors:
    """The executors of one scheduler: `select` asks the selector (cached for a while), and every
    process attempt runs on the one shared `process` executor."""

    def __init__(self, selector: ExecutorSelector, process: ProcessExecutor) -> None:
        self._selector = selector
        self.process = process
        self._selected: dict[tuple[str | None, str], tuple[Executor, str | None, float]] = {}

    def select(self, spec: Spec) -> tuple[Executor, str | None]:
        """The executor for `spec` and a notice for its status reason (raises `BatchkitError`
        when none can run it)."""
        key = (spec.image, spec.executor)
        cached = self._selected.get(key)
        if cached is not None and time.monotonic() < cached[2]:
            return cached[0], cached[1]
        executor, notice = self._selector(spec.image, spec.executor)
        if executor.name == "process":
            executor = self.process
        self._selected[key] = (executor, notice, time.monotonic() + SELECTOR_TTL_S)
        return executor, notice

    def reap(self, name: str, spec: Spec, identity: Mapping[str, object]) -> None:
        """Kill what is left of an attempt a dead worker started with executor `name`."""
        try:
            if name == "process":
                self.process.reap_orphan(identity)
                return
            executor, _ = self._selector(spec.image, name)
            if executor.name == name:
                executor.reap_orphan(identity)
        except Exception:  # a lost engine must not stop the recovery of everything else
            log.exception("could not reap a %s attempt left behind (%s)", name, identity)

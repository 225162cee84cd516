"""`LocalProvider`: the embedded local engine behind `--cluster local`.

It speaks the same Batch data model as the AWS provider. `submit()` records the job in the home's
SQLite store and makes sure a background worker is running (spawning one when no process holds the
worker lock), then returns at once; the worker does the scheduling. Every other call reads the
store, the log streams and the object directory of the home.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from batchkit.config import batchkit_home
from batchkit.errors import EngineError, JobNotFoundError
from batchkit.models import (
    Job,
    JobStatus,
    SubmitRequest,
)
from batchkit.providers.local.admission import QUEUE_ARN, admit
from batchkit.providers.local.capacity import COMPUTE_ENVIRONMENT, QUEUE, Capacity
from batchkit.providers.local.objects import LocalObjectStore
from batchkit.providers.local.rows import JobRow, NewRow, Spec, to_job
from batchkit.providers.local.shares import SharePolicy, policy_from_env
from batchkit.providers.local.store import Store
from batchkit.providers.local.worker import DEFAULT_IDLE_EXIT_S, spawn_worker, worker_pid

if TYPE_CHECKING:
    from batchkit.clustermodel import Host, Queue
    from batchkit.logmodel import LogPage
    from batchkit.providers.local.executors import ExecutorSelector
    from batchkit.providers.local.logs import LogStore

LOG_GROUP = "/aws/batch/job"
ARTIFACT_ROOT = "local"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_SELECTION = "batchkit.providers.local.selection"


class LocalProvider:
    """The local engine as a `Provider` (cluster `local`)."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        clock: Callable[[], int] = _now_ms,
        start_worker: bool = True,
        idle_exit: float = DEFAULT_IDLE_EXIT_S,
        capacity: Capacity | None = None,
        selector: ExecutorSelector | None = None,
        shares: SharePolicy | None = None,
    ) -> None:
        # Absolute, so that the worker (which runs in the home) serves this very directory.
        self.home = (home or batchkit_home()).expanduser().absolute()
        self._clock = clock
        self._start_worker = start_worker
        self._idle_exit = idle_exit
        self._capacity = capacity
        self._selector = selector
        self._shares = shares
        self._stores = threading.local()
        self._objects = LocalObjectStore(self.home / "s3")
        self._logs: LogStore | None = None  # made by the first log read (submitters read none)
        self.spawned: list[subprocess.Popen[bytes]] = []
        """Workers this provider started (so that a test can stop and reap them)."""

    # --- identity -------------------------------------------------------------------------------

    @property
    def cluster_name(self) -> str:
        return "local"

    @property
    def kind(self) -> str:
        return "local"

    @property
    def objects(self) -> LocalObjectStore:
        return self._objects

    @property
    def artifact_root(self) -> str:
        return ARTIFACT_ROOT

    def share_policy(self) -> SharePolicy | None:
        """The local queue's fair-share policy: the one given, else `BATCHKIT_LOCAL_SHARES`."""
        return self._shares if self._shares is not None else policy_from_env()

    def queue_capacity(self, queue: str | None) -> str | None:
        """The local engine's one queue runs every kind of job, multi-node ones included."""
        return "EC2" if queue in (None, QUEUE, QUEUE_ARN) else None

    def fair_share(self, queue: str | None) -> bool | None:
        if queue not in (None, QUEUE, QUEUE_ARN):
            return None  # an unknown queue: `submit` says so
        return self.share_policy() is not None

    @property
    def store(self) -> Store:
        """This thread's connection to the home's store (SQLite connections stay in a thread)."""
        store: Store | None = getattr(self._stores, "store", None)
        if store is None:
            path = self.home / "engine.db"
            try:
                store = Store(path)
            except (sqlite3.Error, OSError) as err:
                raise EngineError(
                    f"cannot open the local engine's store {path}: {err}",
                    hint="make sure BATCHKIT_HOME (default ~/.batchkit) is a writable directory",
                ) from err
            self._stores.store = store
        return store

    # --- jobs -----------------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> Job:
        spec = admit(request, self.store, self.share_policy())
        if self._start_worker and self._capacity is None:
            Capacity.of_this_machine()  # a bad BATCHKIT_LOCAL_* fails before anything is recorded
        job_id = str(uuid.uuid4())
        rows = [
            NewRow(
                job_id,
                None,
                None,
                runs=spec.array_size is None and spec.nodes == 1,
                resources=spec.resources,
            )
        ]
        if spec.array_size is not None:
            rows += [
                NewRow(f"{job_id}:{i}", job_id, i, True, spec.resources)
                for i in range(spec.array_size)
            ]
        elif spec.nodes > 1:
            rows += [
                NewRow(f"{job_id}#{i}", job_id, i, True, spec.resources) for i in range(spec.nodes)
            ]
        job_id = self.store.insert_job(
            spec, rows, created_at=self._clock(), client_token=request.client_token
        )
        self.ensure_worker()
        return self._describe_one(job_id)

    def describe_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        store = self.store
        with store.read():
            rows = store.rows(job_ids)
            specs = self._specs_for(rows)
            attempts = store.attempts(row.id for row in rows)
        if self._start_worker and any(not row.status.is_final for row in rows):
            self.ensure_worker()
        position = {job_id: i for i, job_id in reversed(list(enumerate(job_ids)))}
        rows = sorted(rows, key=lambda row: position[row.id])  # as asked, though none is promised
        return [
            to_job(row, specs[row.parent_id or row.id], attempts.get(row.id, []), LOG_GROUP)
            for row in rows
        ]

    def list_jobs(self, statuses: Sequence[JobStatus], queue: str | None = None) -> list[Job]:
        if queue not in (None, QUEUE, QUEUE_ARN):
            return []
        store = self.store
        with store.read():
            rows = store.top_level(statuses)
            attempts = store.attempts(row.id for row in rows)
        if self._start_worker and any(not row.status.is_final for row in rows):
            self.ensure_worker()
        return [
            to_job(row, row.spec, attempts.get(row.id, []), LOG_GROUP)
            for row in rows
            if row.spec is not None
        ]

    def list_child_summaries_of(self, parents: Sequence[Job]) -> dict[str, list[Job]]:
        return {parent.job_id: self.list_children(parent) for parent in parents}

    def list_child_summaries(self, parent: Job) -> list[Job]:
        """The local store has every field at no extra cost: the same as `list_children`."""
        return self.list_children(parent)

    def list_children(self, parent: Job) -> list[Job]:
        store = self.store
        with store.read():
            parents = store.rows([parent.job_id])
            if not parents or parents[0].spec is None:
                return []
            spec = parents[0].spec
            rows = store.children(parent.job_id)
            attempts = store.attempts(row.id for row in rows)
        return [to_job(row, spec, attempts.get(row.id, []), LOG_GROUP) for row in rows]

    def terminate_job(self, job_id: str, reason: str) -> None:
        rows = self.store.rows([job_id])
        if not rows:
            raise JobNotFoundError(job_id)
        if rows[0].status.is_final:
            return  # as TerminateJob: nothing to do, no error
        self.store.request_termination(job_id, reason, self._clock())
        self.ensure_worker()

    # --- logs -----------------------------------------------------------------------------------

    def get_log_events(
        self,
        stream: str,
        *,
        group: str | None = None,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> LogPage:
        from batchkit.logmodel import LogPage

        if group not in (None, LOG_GROUP):
            return LogPage(events=[], next_forward_token=next_token, next_backward_token=None)
        if self._logs is None:
            from batchkit.providers.local.logs import LogStore

            self._logs = LogStore(self.home / "logs", clock=self._clock)
        return self._logs.get_log_events(
            stream, start_from_head=start_from_head, limit=limit, next_token=next_token
        )

    # --- queues and hosts -----------------------------------------------------------------------

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        from batchkit.clustermodel import Queue

        queue = Queue(
            name=QUEUE,
            arn=QUEUE_ARN,
            priority=1,
            state="ENABLED",
            status="VALID",
            status_reason="JobQueue Healthy",
            compute_environments=(COMPUTE_ENVIRONMENT,),
        )
        if names and not any(name in (QUEUE, QUEUE_ARN) for name in names):
            return []
        return [queue]

    def hosts(self) -> list[Host]:
        capacity = self.capacity()
        vcpus, memory, gpus, running = self.store.usage()
        waiting = self.store.count_waiting()
        pid = worker_pid(self.home)
        import socket

        from batchkit.clustermodel import Host
        from batchkit.version import __version__

        hostname = socket.gethostname()
        executor, docker = self._executor_summary()
        return [
            Host(
                instance_id=hostname,
                instance_type="local",
                status="ACTIVE",
                private_ip="127.0.0.1",
                private_dns=hostname,
                container_instance_arn=None if pid is None else f"worker pid {pid}",
                running_jobs=running,
                pending_jobs=waiting,
                registered_vcpus=capacity.vcpus,
                registered_memory=capacity.memory,
                available_vcpus=max(0.0, capacity.vcpus - vcpus),
                available_memory=max(0, capacity.memory - memory),
                registered_gpus=capacity.gpus,
                available_gpus=max(0, capacity.gpus - gpus),
                executor=executor,
                engine_version=f"batchkit-local {__version__}"
                + (f", Docker {docker}" if docker else ""),
            )
        ]

    def capacity(self) -> Capacity:
        """The compute environment's capacity: the running worker's, else this provider's."""
        if self._capacity is not None:
            return self._capacity
        recorded = self.store.get_meta("capacity") if worker_pid(self.home) else None
        if recorded:
            return Capacity.from_dict(json.loads(recorded))
        return Capacity.of_this_machine()

    # --- the worker -----------------------------------------------------------------------------

    def ensure_worker(self) -> None:
        """Spawn a background worker unless one holds the home's lock (or workers are off)."""
        if not self._start_worker or worker_pid(self.home) is not None:
            return
        if any(process.poll() is None for process in self.spawned):
            return  # ours is still starting up (or about to find another worker and leave)
        env = dict(os.environ)
        capacity = self._capacity or Capacity.of_this_machine(env)  # a bad variable fails here
        env["BATCHKIT_LOCAL_VCPUS"] = str(capacity.vcpus)
        env["BATCHKIT_LOCAL_MEMORY"] = str(capacity.memory)
        env["BATCHKIT_LOCAL_GPUS"] = str(capacity.gpus)
        try:
            process = spawn_worker(self.home, idle_exit=self._idle_exit, environment=env)
        except OSError as err:
            raise EngineError(
                f"cannot start the local engine's worker: {err}",
                hint="run it in the foreground with `batchkit local worker` to see why",
            ) from err
        self.spawned.append(process)

    # --- helpers --------------------------------------------------------------------------------

    def _describe_one(self, job_id: str) -> Job:
        found = self.describe_jobs([job_id])
        if not found:
            raise JobNotFoundError(job_id)
        return found[0]

    def _specs_for(self, rows: Sequence[JobRow]) -> dict[str, Spec]:
        specs = {row.id: row.spec for row in rows if row.spec is not None}
        missing = {row.parent_id for row in rows if row.parent_id and row.parent_id not in specs}
        for parent in self.store.rows(p for p in missing if p):
            if parent.spec is not None:
                specs[parent.id] = parent.spec
        return specs

    def _executor_summary(self) -> tuple[str, str | None]:
        """What jobs get here (from the injected selector, else the Docker support's report),
        and the version of the Docker engine that answers, if one does."""
        docker: str | None = None
        try:
            if self._selector is not None:
                plain = self._selector(None, "auto")[0].name
                with_image = self._selector("batchkit-base/busybox:latest", "auto")[0].name
            elif importlib.util.find_spec(_SELECTION) is None:
                return "process", None
            else:
                from batchkit.providers.local.selection import selector_for

                report = selector_for(self.home).doctor()
                plain, with_image = report.plain_job_executor, report.image_job_executor
                docker = report.engine_version if report.engine_reachable else None
        except Exception:  # a broken engine must not break `hosts`
            return "process", None
        if plain == with_image:
            return plain, docker
        return f"{with_image} (jobs with an image), {plain} (others)", docker
